// The seed events, exactly as the original app's front end uses them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ackArgs,
  connect,
  disconnect,
  disconnectAll,
  noomClient,
  received,
  roomName,
  unlistedName,
  seedClient,
  sorted,
  syncedRoomList,
  waitFor,
  waitForRoomList,
  useServer,
} from "../support/clients.mjs";

const server = useServer({ args: ["--directory-interval-ms", "100"] });

describe("enter_room", () => {
  test("calls done with no argument", async () => {
    const a = await connect(server.url);
    assert.deepEqual(await ackArgs(a, "enter_room", roomName()), []);
  });

  test("the others get welcome(nickname, count) with true counts; the entrant does not", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Bob", 2]);

    const carol = await seedClient(server.url, "Carol", room);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Carol", 3]);
    assert.deepEqual(await waitFor(bob, "welcome"), ["Carol", 3]);

    // Sentinel: a message from Alice reaches Carol after anything her entry caused.
    await ackArgs(alice, "new_message", "hi", room);
    assert.deepEqual(await waitFor(carol, "new_message"), ["Alice: hi"]);
    assert.deepEqual(received(carol, "welcome"), []);
    assert.deepEqual(received(bob, "welcome"), [["Carol", 3]]);
    assert.deepEqual(received(alice, "welcome"), [["Bob", 2], ["Carol", 3]]);
  });

  test("a socket that never sent nickname is welcomed as Anon", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    await seedClient(server.url, undefined, room);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Anon", 2]);
  });

  test("nickname is stored trimmed", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    await seedClient(server.url, "  Bob \t", room);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Bob", 2]);
  });

  test("entering a room one is already in only calls done()", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    await waitFor(alice, "welcome");

    assert.deepEqual(await ackArgs(bob, "enter_room", room), []);
    await ackArgs(bob, "new_message", "still one of two", room);
    assert.deepEqual(await waitFor(alice, "new_message"), ["Bob: still one of two"]);
    assert.deepEqual(received(alice, "welcome"), [["Bob", 2]]);

    // The count did not change either.
    await seedClient(server.url, "Carol", room);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Carol", 3]);
  });

  test("a seed socket can be in several rooms at once", async () => {
    const r1 = roomName();
    const r2 = roomName();
    const alice = await seedClient(server.url, "Alice", [r1, r2]);
    const bob = await seedClient(server.url, "Bob", r1);
    const carol = await seedClient(server.url, "Carol", r2);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Bob", 2]);
    assert.deepEqual(await waitFor(alice, "welcome"), ["Carol", 2]);

    await ackArgs(alice, "new_message", "to two", r2);
    assert.deepEqual(await waitFor(carol, "new_message"), ["Alice: to two"]);
    await ackArgs(alice, "new_message", "to one", r1);
    assert.deepEqual(await waitFor(bob, "new_message"), ["Alice: to one"]);
    assert.deepEqual(received(bob, "new_message"), [["Alice: to one"]], "a message goes to the named room only");
  });
});

describe("new_message", () => {
  test("others get '<nickname>: <msg>', the sender gets done() and no echo", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    const carol = await seedClient(server.url, "Carol", room);

    assert.deepEqual(await ackArgs(alice, "new_message", "hello there", room), []);
    assert.deepEqual(await waitFor(bob, "new_message"), ["Alice: hello there"]);
    assert.deepEqual(await waitFor(carol, "new_message"), ["Alice: hello there"]);

    await ackArgs(bob, "new_message", "hi Alice", room);
    assert.deepEqual(await waitFor(alice, "new_message"), ["Bob: hi Alice"]);
    assert.deepEqual(received(alice, "new_message"), [["Bob: hi Alice"]]);
    assert.deepEqual(received(bob, "new_message"), [["Alice: hello there"]]);
  });

  test("the text is relayed as sent, white space, line feeds and tabs included", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    const text = "  two\nlines\tand a tab  ";
    assert.deepEqual(await ackArgs(alice, "new_message", text, room), []);
    assert.deepEqual(await waitFor(bob, "new_message"), [`Alice: ${text}`]);
  });

  test("a rename applies to the next messages", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    alice.emit("nickname", "Alicia");
    await ackArgs(alice, "new_message", "new name", room);
    assert.deepEqual(await waitFor(bob, "new_message"), ["Alicia: new name"]);
  });
});

describe("bye", () => {
  test("the others get bye(nickname, count) when someone disconnects", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    const carol = await seedClient(server.url, "Carol", room);

    await disconnect(carol);
    assert.deepEqual(await waitFor(alice, "bye"), ["Carol", 2]);
    assert.deepEqual(await waitFor(bob, "bye"), ["Carol", 2]);

    await disconnect(bob);
    assert.deepEqual(await waitFor(alice, "bye"), ["Bob", 1]);
  });

  test("a socket in several rooms is said bye in each", async () => {
    const r1 = roomName();
    const r2 = roomName();
    const alice = await seedClient(server.url, "Alice", [r1, r2]);
    const bob = await seedClient(server.url, "Bob", r1);
    const carol = await seedClient(server.url, "Carol", r2);
    await disconnect(alice);
    assert.deepEqual(await waitFor(bob, "bye"), ["Alice", 1]);
    assert.deepEqual(await waitFor(carol, "bye"), ["Alice", 1]);
  });
});

describe("room_change", () => {
  // Each test first waits for the exact list [base]: everything earlier tests left behind is then
  // gone and every later room_change is caused by this test.
  const syncedWatcher = () => syncedRoomList(server.url);

  test("lists public room names, only when the list changes", async () => {
    const { watcher, base, owner, mark } = await syncedWatcher();
    const others = [];

    // A second person in an existing room: no change.
    others.push(await seedClient(server.url, "Second", base));
    // A new room: a change.
    const r1 = roomName("new");
    others.push(await seedClient(server.url, "Third", r1));
    await waitForRoomList(watcher, [base, r1]);
    assert.equal(received(watcher, "room_change").length, mark + 1, "only one room_change after the sync point");
    const knownIds = [watcher.id, owner.id, ...others.map((s) => s.id)];

    // Everyone in the base room leaves: it disappears.
    await disconnect(owner);
    await disconnect(others[0]);
    await waitForRoomList(watcher, [r1]);

    const all = received(watcher, "room_change").slice(mark);
    for (const [rooms] of all) {
      for (const id of knownIds) assert.ok(!rooms.includes(id), `room_change must not list socket ids: ${JSON.stringify(rooms)}`);
      assert.ok(rooms.every((r) => typeof r === "string"));
    }
    assert.equal(received(watcher, "directory").length, 0, "a seed socket gets no Noom pushes");
    // Each one differs from the one before.
    for (let i = 1; i < all.length; i++) {
      assert.notDeepEqual(sorted(all[i][0]), sorted(all[i - 1][0]), "room_change sent although the list did not change");
    }
  });

  test("seed sockets inside rooms receive it too", async () => {
    const { owner, base } = await syncedWatcher();
    const r1 = roomName();
    await seedClient(server.url, "Other", r1);
    await waitForRoomList(owner, [base, r1]);
  });

  test("never lists unlisted rooms", async () => {
    const { watcher, base, mark } = await syncedWatcher();
    const unlisted = unlistedName("secret");
    await noomClient(server.url, "Hidden", unlisted, { unlisted: true });
    // A seed client can enter the unlisted room by name; it stays unlisted.
    await seedClient(server.url, "Guest", unlisted);

    const r1 = roomName();
    await seedClient(server.url, "Public", r1);
    await waitForRoomList(watcher, [base, r1]);
    assert.equal(received(watcher, "room_change").length, mark + 1);
    for (const [rooms] of received(watcher, "room_change")) assert.ok(!rooms.includes(unlisted));
  });

  test("is not sent on connection", async () => {
    const { base } = await syncedWatcher();
    const late = await connect(server.url, { label: "late" });
    const r1 = roomName();
    await seedClient(server.url, "Other", r1);
    const [first] = await waitFor(late, "room_change");
    assert.deepEqual(sorted(first), sorted([base, r1]));
  });
});
