// What the client knows about the room it is in: its name, how many are in it, who they are
// (in order of arrival, with their call state) and which messages it has already shown. Pure
// state, no DOM.
import { messageKey } from "./format";
import { tellApart } from "./names";
import type { ChatMessage, JoinAck, Media, Participant } from "./protocol";

/** The call size limit the protocol documents, for a server whose join answer does not say. */
export const DEFAULT_CALL_LIMIT = 6;

/** How many departures a page remembers. Media still on its way comes within seconds of the
 * departure; a page in a busy room all day must not hold every id it saw leave. */
export const DEPARTED_KEPT = 256;

/** How an update changed someone's place in the call. */
export type CallChange = "joined" | "left" | "media" | null;

export function sameMedia(a: Media | null | undefined, b: Media | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.audio === b.audio && a.video === b.video && a.screen === b.screen;
}

export function callChange(before: Media | null | undefined, after: Media | null | undefined): CallChange {
  if (!before && after) return "joined";
  if (before && !after) return "left";
  if (before && after && !sameMedia(before, after)) return "media";
  return null;
}

/** How an update changed someone's role, hand or mute (each null when it did not). */
export type MeetingChange = {
  host: "gained" | "lost" | null;
  hand: "raised" | "lowered" | null;
  muted: "muted" | "unmuted" | null;
};

/** A copy that keeps `call`, `host`, `hand` and `muted` only when they are there. */
function copy(p: Participant): Participant {
  const c: Participant = { id: p.id, nickname: p.nickname };
  if (p.call) c.call = { ...p.call };
  setMeeting(c, p);
  return c;
}

/** Takes in `from`'s role, hand and mute; says what changed. */
function setMeeting(p: Participant, from: Participant): MeetingChange {
  const change: MeetingChange = {
    host: !!p.host === !!from.host ? null : from.host ? "gained" : "lost",
    hand: (typeof p.hand === "number") === (typeof from.hand === "number") ? null : typeof from.hand === "number" ? "raised" : "lowered",
    muted: !!p.muted === !!from.muted ? null : from.muted ? "muted" : "unmuted",
  };
  if (from.host) p.host = true;
  else delete p.host;
  if (typeof from.hand === "number") p.hand = from.hand;
  else delete p.hand;
  if (from.muted) p.muted = true;
  else delete p.muted;
  return change;
}

export class RoomState {
  readonly name: string;
  unlisted: boolean;
  /** How many are in the room, as the server counts them, less this client's former selves. */
  count: number;
  callLimit: number;
  /** Nobody new may enter. */
  locked: boolean;
  /** Newcomers wait until a host lets them in. */
  waitingRoom: boolean;
  /** Newcomers give a password. */
  password: boolean;
  self: Participant;
  /** When the room's call began (this client's clock), while one is going. */
  private since: number | null;
  private people: Participant[];
  private seen = new Set<string>();
  /** Every id this client has had in this room (it changes when the connection is renewed). */
  private ownIds = new Set<string>();
  /** Former selves the server still lists, until it says they left. */
  private formerSelvesHere = new Set<string>();
  /** Those who left while this client was here, until they come back (on the same connection);
   * the latest `DEPARTED_KEPT` of them, oldest first. */
  private departed = new Set<string>();

  constructor(ack: JoinAck) {
    this.name = ack.room.name;
    this.unlisted = ack.room.unlisted;
    this.count = ack.room.count;
    this.callLimit = ack.callLimit ?? DEFAULT_CALL_LIMIT;
    this.locked = !!ack.room.locked;
    this.waitingRoom = !!ack.room.waitingRoom;
    this.password = !!ack.room.password;
    this.self = copy(ack.self);
    this.people = ack.participants.map(copy);
    this.ownIds.add(ack.self.id);
    this.since = ack.callSince ?? null;
  }

  /**
   * Whether `id` is this client as it was on an earlier connection. A page that comes back on
   * another node (its own went away) is in the room twice until that node is judged quiet: it is
   * never shown its old self.
   */
  isFormerSelf(id: string): boolean {
    return id !== this.self.id && this.ownIds.has(id);
  }

  /**
   * Whether `id` left the room while this client was in it. Media of theirs still on its way (the
   * media server or another node not yet told) is theirs no more, and makes no tile.
   */
  hasLeft(id: string): boolean {
    return this.departed.has(id);
  }

  /** The server's count less the former selves it still counts. */
  private counted(count: number): number {
    return Math.max(0, count - this.formerSelvesHere.size);
  }

  /** Whether this client hosts the room. */
  get isHost(): boolean {
    return !!this.self.host;
  }

  /** Those with a hand up, in the order raised. */
  hands(): Participant[] {
    return this.people.filter((p) => typeof p.hand === "number").sort((a, b) => (a.hand ?? 0) - (b.hand ?? 0));
  }

  /** Takes in a fresh join answer for the same room (after a reconnection). */
  refresh(ack: JoinAck): void {
    this.unlisted = ack.room.unlisted;
    this.count = ack.room.count;
    this.callLimit = ack.callLimit ?? DEFAULT_CALL_LIMIT;
    this.locked = !!ack.room.locked;
    this.waitingRoom = !!ack.room.waitingRoom;
    this.password = !!ack.room.password;
    this.self = copy(ack.self);
    this.ownIds.add(ack.self.id);
    this.formerSelvesHere = new Set(ack.participants.filter((p) => this.isFormerSelf(p.id)).map((p) => p.id));
    this.people = ack.participants.filter((p) => !this.formerSelvesHere.has(p.id)).map(copy);
    for (const p of this.people) this.departed.delete(p.id);
    this.count = this.counted(ack.room.count);
    this.since = ack.callSince ?? null;
  }

  /**
   * When the room's call began, while one is going (null when none is): as the join answer said,
   * or else when this client first saw someone in it (`now`, when asked).
   */
  callSince(now: number): number | null {
    if (!this.people.some((p) => p.call)) this.since = null;
    else this.since ??= now;
    return this.since;
  }

  /** Takes in the room's list as a call:join answer gives it (everyone, with their call state). */
  replacePeople(people: readonly Participant[]): void {
    this.people = people.filter((p) => !this.isFormerSelf(p.id)).map(copy);
    for (const p of this.people) this.departed.delete(p.id);
    const me = this.find(this.self.id);
    if (me) this.self = copy(me);
  }

  get participants(): readonly Participant[] {
    return this.people;
  }

  isSelf(id: string): boolean {
    return id === this.self.id;
  }

  /** What to call someone here: their nickname, told apart from anyone present whose name reads the same. */
  label(id: string, nickname: string): string {
    return tellApart(this.people).get(id) ?? nickname;
  }

  /** Whether a message was sent by this client (under any of its connections). */
  isOwn(message: ChatMessage): boolean {
    return this.ownIds.has(message.sender.id);
  }

  find(id: string): Participant | undefined {
    return this.people.find((p) => p.id === id);
  }

  /** Those in the call, in order of arrival in the room. */
  inCall(): Participant[] {
    return this.people.filter((p) => p.call);
  }

  /** Someone arrived. Returns false if they were already listed (their entry is updated). */
  joined(p: Participant, count: number): boolean {
    const formerSelf = this.isFormerSelf(p.id);
    if (formerSelf) this.formerSelvesHere.add(p.id);
    this.count = this.counted(count);
    if (formerSelf) return false;
    this.departed.delete(p.id);
    const known = this.find(p.id);
    if (known) {
      known.nickname = p.nickname;
      setCall(known, p.call);
      return false;
    }
    this.people.push(copy(p));
    return true;
  }

  /** Someone left. Returns whom the list had, or null if it did not list them (nothing to say). */
  left(p: Participant, count: number): Participant | null {
    this.departed.delete(p.id);
    this.departed.add(p.id);
    for (const oldest of this.departed) {
      if (this.departed.size <= DEPARTED_KEPT) break;
      this.departed.delete(oldest);
    }
    this.formerSelvesHere.delete(p.id);
    this.count = this.counted(count);
    const i = this.people.findIndex((x) => x.id === p.id);
    if (i < 0) return null;
    return this.people.splice(i, 1)[0] ?? null;
  }

  /**
   * Someone renamed, or joined or left the call, or changed their media, role, hand or mute.
   * Returns the name they had if it changed (else null), how their call state changed and how
   * their role, hand and mute did.
   */
  updated(p: Participant): { oldName: string | null; call: CallChange; meeting: MeetingChange } {
    if (this.isFormerSelf(p.id)) return { oldName: null, call: null, meeting: { host: null, hand: null, muted: null } };
    const known = this.find(p.id);
    if (!known) {
      this.departed.delete(p.id);
      const added = copy(p);
      this.people.push(added);
      const meeting = setMeeting({ id: p.id, nickname: p.nickname }, p);
      return { oldName: null, call: p.call ? "joined" : null, meeting };
    }
    const change = callChange(known.call, p.call);
    setCall(known, p.call);
    const meeting = setMeeting(known, p);
    if (this.isSelf(p.id)) {
      setCall(this.self, p.call);
      setMeeting(this.self, p);
    }
    if (known.nickname === p.nickname) return { oldName: null, call: change, meeting };
    const old = known.nickname;
    known.nickname = p.nickname;
    if (this.isSelf(p.id)) this.self.nickname = p.nickname;
    return { oldName: old, call: change, meeting };
  }

  /** This client's own call state, as it last told the server (null: not in the call). */
  setSelfCall(call: Media | null): void {
    setCall(this.self, call);
    const me = this.find(this.self.id);
    if (me) setCall(me, call);
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

function setCall(p: Participant, call: Media | null | undefined): void {
  if (call) p.call = { ...call };
  else delete p.call;
}
