// What the client knows about the room it is in: its name, how many are in it, who they are
// (in order of arrival) and which messages it has already shown. Pure state, no DOM.
import { messageKey } from "./format";
import type { ChatMessage, JoinAck, Participant } from "./protocol";

export class RoomState {
  readonly name: string;
  unlisted: boolean;
  count: number;
  self: Participant;
  private people: Participant[];
  private seen = new Set<string>();
  /** Every id this client has had in this room (it changes when the connection is renewed). */
  private ownIds = new Set<string>();

  constructor(ack: JoinAck) {
    this.name = ack.room.name;
    this.unlisted = ack.room.unlisted;
    this.count = ack.room.count;
    this.self = { ...ack.self };
    this.people = ack.participants.map((p) => ({ ...p }));
    this.ownIds.add(ack.self.id);
  }

  /** Takes in a fresh join answer for the same room (after a reconnection). */
  refresh(ack: JoinAck): void {
    this.unlisted = ack.room.unlisted;
    this.count = ack.room.count;
    this.self = { ...ack.self };
    this.people = ack.participants.map((p) => ({ ...p }));
    this.ownIds.add(ack.self.id);
  }

  get participants(): readonly Participant[] {
    return this.people;
  }

  isSelf(id: string): boolean {
    return id === this.self.id;
  }

  /** Whether a message was sent by this client (under any of its connections). */
  isOwn(message: ChatMessage): boolean {
    return this.ownIds.has(message.sender.id);
  }

  find(id: string): Participant | undefined {
    return this.people.find((p) => p.id === id);
  }

  /** Someone arrived. Returns false if they were already listed (their entry is updated). */
  joined(p: Participant, count: number): boolean {
    this.count = count;
    const known = this.find(p.id);
    if (known) {
      known.nickname = p.nickname;
      return false;
    }
    this.people.push({ ...p });
    return true;
  }

  /** Someone left. Returns whom the list had, or null if it did not list them (nothing to say). */
  left(p: Participant, count: number): Participant | null {
    this.count = count;
    const i = this.people.findIndex((x) => x.id === p.id);
    if (i < 0) return null;
    return this.people.splice(i, 1)[0] ?? null;
  }

  /** Someone renamed. Returns the name they had, or null if nothing changed. */
  renamed(p: Participant): string | null {
    const known = this.find(p.id);
    if (!known) {
      this.people.push({ ...p });
      return null;
    }
    if (known.nickname === p.nickname) return null;
    const old = known.nickname;
    known.nickname = p.nickname;
    if (this.isSelf(p.id)) this.self.nickname = p.nickname;
    return old;
  }

  /** This client renamed itself. Returns the old name. */
  renameSelf(nickname: string): string {
    const old = this.self.nickname;
    this.self.nickname = nickname;
    const me = this.find(this.self.id);
    if (me) me.nickname = nickname;
    return old;
  }

  /** Records a message as shown. Returns false if it was shown already. */
  remember(message: ChatMessage): boolean {
    const key = messageKey(message);
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}
