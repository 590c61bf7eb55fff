// Noom rooms and participants: room:join, room:leave, user:rename, the participant:* pushes,
// unlisted rooms and the lobby's directory.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ack,
  connect,
  connectNoom,
  disconnect,
  disconnectAll,
  expectError,
  mark,
  noomClient,
  participant,
  hosting,
  received,
  roomName,
  seedClient,
  syncedLobby,
  waitFor,
  waitForDirectory,
  useServer,
} from "../support/clients.mjs";

const server = useServer({ args: ["--directory-interval-ms", "100"] });

function assertDirectoryShape(dir) {
  assert.deepEqual(Object.keys(dir).sort(), ["rooms", "total"]);
  assert.ok(Array.isArray(dir.rooms));
  assert.equal(typeof dir.total, "number");
  for (const room of dir.rooms) {
    assert.deepEqual(Object.keys(room).sort(), ["count", "name"]);
    assert.equal(typeof room.name, "string");
    assert.equal(typeof room.count, "number");
  }
}

describe("flavour and lobby", () => {
  test("a Noom socket gets the directory as soon as it connects", async () => {
    const socket = await connectNoom(server.url);
    const [dir] = await waitFor(socket, "directory");
    assertDirectoryShape(dir);
  });

  test("a socket becomes Noom-flavoured with its first Noom event and then gets the directory", async () => {
    const socket = await connect(server.url);
    const dir = await ack(socket, "directory:get", {});
    assertDirectoryShape(dir);
    const [pushed] = await waitFor(socket, "directory");
    assertDirectoryShape(pushed);
  });

  test("directory:get answers with {} and with no argument", async () => {
    const { watcher, base } = await syncedLobby(server.url);
    const want = { rooms: [{ name: base, count: 1, inCall: 0 }], total: 1 };
    assert.deepEqual(await ack(watcher, "directory:get", {}), want);
    assert.deepEqual(await ack(watcher, "directory:get"), want);
  });

  test("every socket starts as Anon", async () => {
    const { joined } = await noomClient(server.url, undefined, roomName());
    assert.equal(joined.self.nickname, "Anon");
  });
});

describe("room:join", () => {
  test("answers room, self, participants in arrival order and history", async () => {
    const room = roomName();
    const { socket: alice, joined: a } = await noomClient(server.url, "Alice", room);
    assert.deepEqual(a, {
      room: { name: room, unlisted: false, count: 1, locked: false, waitingRoom: false, password: false },
      self: hosting(participant(alice, "Alice")),
      participants: [hosting(participant(alice, "Alice"))],
      history: [],
      callLimit: 100,
    });

    const { socket: bob, joined: b } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(b, {
      room: { name: room, unlisted: false, count: 2, locked: false, waitingRoom: false, password: false },
      self: participant(bob, "Bob"),
      participants: [hosting(participant(alice, "Alice")), participant(bob, "Bob")],
      history: [],
      callLimit: 100,
    });

    const carol = await seedClient(server.url, "Carol", room);
    const { socket: dave, joined: d } = await noomClient(server.url, "Dave", room);
    assert.deepEqual(d.participants, [
      hosting(participant(alice, "Alice")),
      participant(bob, "Bob"),
      participant(carol, "Carol"),
      participant(dave, "Dave"),
    ]);
    assert.equal(d.room.count, 4);
  });

  test("the others get participant:joined with the count, the joiner does not", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(await waitFor(alice, "participant:joined"), [{ room, participant: participant(bob, "Bob"), count: 2 }]);

    const carol = await seedClient(server.url, "Carol", room);
    const joined = { room, participant: participant(carol, "Carol"), count: 3 };
    assert.deepEqual(await waitFor(alice, "participant:joined"), [joined]);
    assert.deepEqual(await waitFor(bob, "participant:joined"), [joined]);

    await ack(alice, "chat:send", { room, text: "sentinel" });
    await waitFor(bob, "chat:message");
    assert.equal(received(bob, "participant:joined").length, 1, "the joiner is not told of its own arrival");
  });

  test("the name is trimmed and the nickname applied first", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const bob = await connectNoom(server.url);
    const b = await ack(bob, "room:join", { room: `  ${room}\t`, nickname: "  Bob  " });
    assert.equal(b.room.name, room);
    assert.equal(b.room.count, 2);
    assert.deepEqual(b.self, participant(bob, "Bob"));
    assert.deepEqual(await waitFor(alice, "participant:joined"), [{ room, participant: participant(bob, "Bob"), count: 2 }]);
  });

  test("works without an acknowledgement callback", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const bob = await connectNoom(server.url);
    bob.emit("room:join", { room, nickname: "Bob" });
    assert.deepEqual(await waitFor(alice, "participant:joined"), [{ room, participant: participant(bob, "Bob"), count: 2 }]);
    bob.emit("user:rename", { nickname: "Robert" });
    assert.deepEqual(await waitFor(alice, "participant:updated"), [{ room, participant: participant(bob, "Robert") }]);
    bob.emit("room:leave", { room });
    assert.deepEqual(await waitFor(alice, "participant:left"), [{ room, participant: participant(bob, "Robert"), count: 1 }]);
  });

  test("joining the room one is in answers the same and tells nobody", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob, joined: first } = await noomClient(server.url, "Bob", room);
    await waitFor(alice, "participant:joined");
    const again = await ack(bob, "room:join", { room });
    assert.deepEqual(again, first);

    await ack(bob, "chat:send", { room, text: "sentinel" });
    await waitFor(alice, "chat:message");
    assert.equal(received(alice, "participant:joined").length, 1);
    assert.equal(received(alice, "participant:left").length, 0);
  });

  test("joining another room leaves the previous one first", async () => {
    const r1 = roomName();
    const r2 = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", r1);
    const seedBob = await seedClient(server.url, "Bob", r1);
    const { socket: carol } = await noomClient(server.url, "Carol", r1);
    await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === carol.person });

    const beforeMove = mark(carol);
    const moved = await ack(carol, "room:join", { room: r2 });
    assert.deepEqual(carol.inbox.names().slice(beforeMove), [], "moving between rooms does not pass through the lobby");
    assert.deepEqual(moved.room, { name: r2, unlisted: false, count: 1, locked: false, waitingRoom: false, password: false });
    assert.deepEqual(moved.participants, [hosting(participant(carol, "Carol"))]);
    assert.deepEqual(await waitFor(alice, "participant:left"), [{ room: r1, participant: participant(carol, "Carol"), count: 2 }]);
    assert.deepEqual(await waitFor(seedBob, "bye"), ["Carol", 2]);

    assert.deepEqual(await ack(carol, "room:leave", {}), { left: [r2] });
  });
});

describe("room:leave", () => {
  test("with a room: the others get participant:left or bye, the leaver is back in the lobby", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const seedBob = await seedClient(server.url, "Bob", room);
    const { socket: carol } = await noomClient(server.url, "Carol", room);
    await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === carol.person });
    const before = mark(carol);

    assert.deepEqual(await ack(carol, "room:leave", { room }), { left: [room] });
    assert.deepEqual(await waitFor(alice, "participant:left"), [{ room, participant: participant(carol, "Carol"), count: 2 }]);
    assert.deepEqual(await waitFor(seedBob, "bye"), ["Carol", 2]);
    const [dir] = await waitFor(carol, "directory", { after: before });
    assert.ok(dir.rooms.some((r) => r.name === room && r.count === 2), `directory after leaving: ${JSON.stringify(dir)}`);
  });

  test("without a room: leaves every room", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(await ack(bob, "room:leave", {}), { left: [room] });
    assert.deepEqual(await waitFor(alice, "participant:left"), [{ room, participant: participant(bob, "Bob"), count: 1 }]);
    assert.deepEqual(await ack(bob, "room:leave", {}), { left: [] }, "nothing left to leave");
  });

  test("a room one is not in: not_in_room, and nobody is told", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    await expectError(bob, "not_in_room", "room:leave", { room: roomName("elsewhere") });
    await ack(bob, "chat:send", { room, text: "still here" });
    await waitFor(alice, "chat:message");
    assert.equal(received(alice, "participant:left").length, 0);
  });

  test("a seed client can leave with room:leave and its room-mates get bye", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    assert.deepEqual(await ack(bob, "room:leave", { room }), { left: [room] });
    assert.deepEqual(await waitFor(alice, "bye"), ["Bob", 1]);
  });

  test("disconnecting: the others get participant:left", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    const bobAsParticipant = participant(bob, "Bob");
    await disconnect(bob);
    assert.deepEqual(await waitFor(alice, "participant:left"), [{ room, participant: bobAsParticipant, count: 1 }]);
  });

  test("a connection with the resume token of a live one replaces it at once", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const auth = { resume: `token-${room}` };
    const { socket: oldBob } = await noomClient(server.url, "Bob", room, { auth });
    const oldBobAsParticipant = participant(oldBob, "Bob");
    // The page's network came back: it connects again with its token while the old socket
    // still looks alive to the server.
    const { socket: newBob } = await noomClient(server.url, "Bob", room, { auth });
    assert.deepEqual(await waitFor(oldBob, "disconnect"), ["io server disconnect"]);
    const [left] = await waitFor(alice, "participant:left", { where: (e) => e.participant.id === oldBobAsParticipant.id });
    assert.deepEqual(left.participant, oldBobAsParticipant);
    const { participants } = await ack(newBob, "room:join", { room });
    assert.deepEqual(participants.map((p) => p.nickname), ["Alice", "Bob"]);
    // A different token replaces nobody.
    const { socket: carol } = await noomClient(server.url, "Carol", room, { auth: { resume: "other" } });
    assert.equal(carol.connected && newBob.connected, true);
    assert.equal((await ack(carol, "room:join", { room })).room.count, 3);
  });
});

describe("user:rename", () => {
  test("answers the stored name; Noom room-mates get participant:updated, seed ones are not told", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const seedBob = await seedClient(server.url, "Bob", room);
    const { socket: carol } = await noomClient(server.url, "Carol", room);
    await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === carol.person });

    assert.deepEqual(await ack(carol, "user:rename", { nickname: "  Caroline " }), { nickname: "Caroline" });
    assert.deepEqual(await waitFor(alice, "participant:updated"), [{ room, participant: participant(carol, "Caroline") }]);

    await ack(carol, "chat:send", { room, text: "renamed" });
    assert.deepEqual(await waitFor(seedBob, "new_message"), ["Caroline: renamed"]);
    assert.deepEqual(
      seedBob.inbox.names().filter((n) => n !== "room_change" && n !== "session"),
      ["welcome", "new_message"],
      "the seed client only saw Carol arrive and speak",
    );
    assert.equal(received(carol, "participant:updated").length, 0, "the renamer is not told");
  });

  test("a seed nickname change in a room shows Noom room-mates participant:updated", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const seedBob = await seedClient(server.url, "Bob", room);
    seedBob.emit("nickname", "Robert");
    assert.deepEqual(await waitFor(alice, "participant:updated"), [{ room, participant: participant(seedBob, "Robert") }]);
  });

  test("the new name is what the next joiner sees", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    await ack(alice, "user:rename", { nickname: "Alicia" });
    const { joined } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(joined.participants[0], hosting(participant(alice, "Alicia")));
  });
});

describe("unlisted rooms", () => {
  test("are made under a name nobody can guess, joinable by it, and never appear in the directory", async () => {
    const { watcher, base, mark } = await syncedLobby(server.url);
    const asked = roomName("secret");
    const { socket: alice, joined: a } = await noomClient(server.url, "Alice", asked, { unlisted: true });
    const secret = a.room.name;
    assert.match(secret, new RegExp(`^${asked}-[A-Za-z0-9]{10}$`), "the name asked for, and a random end");
    assert.deepEqual(a.room, { name: secret, unlisted: true, count: 1, locked: false, waitingRoom: false, password: false });
    const other = await noomClient(server.url, "Eve", asked, { unlisted: true });
    assert.notEqual(other.joined.room.name, secret, "another unlisted room of the same name is another room");
    const guess = await noomClient(server.url, "Mallory", asked);
    assert.deepEqual(guess.joined.participants.map((p) => p.nickname), ["Mallory"], "the name alone finds nobody");
    await Promise.all([other.socket, guess.socket].map((s) => ack(s, "room:leave", {})));

    const { socket: bob, joined: b } = await noomClient(server.url, "Bob", secret, { unlisted: false });
    assert.deepEqual(b.room, { name: secret, unlisted: true, count: 2, locked: false, waitingRoom: false, password: false });
    assert.deepEqual(b.participants, [hosting(participant(alice, "Alice")), participant(bob, "Bob")]);

    const seedCarol = await seedClient(server.url, "Carol", secret);
    assert.deepEqual(await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === seedCarol.person }), [
      { room: secret, participant: participant(seedCarol, "Carol"), count: 3 },
    ]);

    // A public room created afterwards is the next change the lobby sees.
    const open = roomName("open");
    await noomClient(server.url, "Dave", open);
    await waitForDirectory(watcher, {
      rooms: [{ name: base, count: 1, inCall: 0 }, { name: open, count: 1, inCall: 0 }].sort((x, y) => (x.name < y.name ? -1 : 1)),
      total: 2,
    });
    const pushes = received(watcher, "directory").slice(mark);
    assert.equal(pushes.length, 1, `the unlisted room changed nothing in the directory: ${JSON.stringify(pushes)}`);
    const listed = await ack(watcher, "directory:get", {});
    assert.ok(!listed.rooms.some((r) => r.name === secret));
    assert.equal(listed.total, 2);
  });

  test("a public room stays public when a later joiner asks for unlisted", async () => {
    const room = roomName();
    await noomClient(server.url, "Alice", room);
    const { joined } = await noomClient(server.url, "Bob", room, { unlisted: true });
    assert.deepEqual(joined.room, { name: room, unlisted: false, count: 2, locked: false, waitingRoom: false, password: false });
  });
});

describe("directory", () => {
  test("counts everyone, largest first then by name, pushed to the lobby when it changes", async () => {
    const { watcher, base } = await syncedLobby(server.url);
    const big = roomName("big");
    const small = roomName("small");
    await noomClient(server.url, "A", big);
    await noomClient(server.url, "B", big);
    await seedClient(server.url, "C", big);
    await seedClient(server.url, "D", small);
    const singles = [{ name: base, count: 1, inCall: 0 }, { name: small, count: 1, inCall: 0 }].sort((x, y) => (x.name < y.name ? -1 : 1));
    const want = { rooms: [{ name: big, count: 3, inCall: 0 }, ...singles], total: 3 };
    await waitForDirectory(watcher, want);
    assert.deepEqual(await ack(watcher, "directory:get", {}), want);
    assert.equal(received(watcher, "room_change").length, 0, "a Noom socket gets no seed pushes");
  });

  test("a socket in a room gets no directory pushes; back in the lobby it gets one", async () => {
    const { watcher, base } = await syncedLobby(server.url);
    const room = roomName("inside");
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    const pushesBefore = received(alice, "directory").length;
    const inRoom = mark(alice);

    const other = roomName("other");
    await noomClient(server.url, "Carol", other);
    const names = [base, room, other].sort();
    const counts = { [base]: 1, [room]: 2, [other]: 1 };
    const want = {
      rooms: names.map((name) => ({ name, count: counts[name], inCall: 0 })).sort((x, y) => y.count - x.count),
      total: 3,
    };
    await waitForDirectory(watcher, want);
    await ack(bob, "chat:send", { room, text: "sentinel" });
    await waitFor(alice, "chat:message");
    assert.equal(received(alice, "directory").length, pushesBefore, "no directory while in a room");

    await ack(alice, "room:leave", {});
    const [dir] = await waitFor(alice, "directory", { after: inRoom });
    assert.ok(dir.rooms.some((r) => r.name === room && r.count === 1), JSON.stringify(dir));
  });

  test("an empty room is gone at once: from the directory, with its history", async () => {
    const { watcher, base } = await syncedLobby(server.url);
    const room = roomName("brief");
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    await ack(alice, "chat:send", { room, text: "soon forgotten" });
    const inRoom = mark(alice);
    assert.deepEqual(await ack(alice, "room:leave", {}), { left: [room] });
    const onlyBase = { rooms: [{ name: base, count: 1, inCall: 0 }], total: 1 };
    assert.deepEqual(await ack(watcher, "directory:get", {}), onlyBase);
    assert.deepEqual(await waitFor(alice, "directory", { after: inRoom }), [onlyBase], "the lobby push on coming back");

    const { joined } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(joined.room, { name: room, unlisted: false, count: 1, locked: false, waitingRoom: false, password: false });
    assert.deepEqual(joined.history, []);
  });

  test("an unlisted room that empties can be re-created public, or unlisted again under its name", async () => {
    const { socket: alice, joined: made } = await noomClient(server.url, "Alice", roomName(), { unlisted: true });
    const room = made.room.name;
    await ack(alice, "room:leave", {});
    const { socket: bob, joined } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(joined.room, { name: room, unlisted: false, count: 1, locked: false, waitingRoom: false, password: false });
    await ack(bob, "room:leave", {});
    const again = await ack(alice, "room:join", { room, unlisted: true });
    assert.deepEqual(again.room, { name: room, unlisted: true, count: 1, locked: false, waitingRoom: false, password: false }, "a link's room, made again, keeps its name");
  });
});
