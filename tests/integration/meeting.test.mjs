// Running a meeting: whoever opens a room hosts it; hosts make co-hosts, lock the room, remove
// people (for good, if they say), end the meeting, mute people and ask them things; everyone
// raises a hand. Every control is checked on the server. The same tests run on one node and on
// two nodes sharing a Redis, with the host on one node and the others on the other.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useCluster } from "../support/cluster.mjs";
import { ack, ackArgs, disconnectAll, expectError, expectNothing, mark, noomClient, received, roomName, useServer, waitFor } from "../support/clients.mjs";

const AUDIO = { audio: true, video: true, screen: false };

/** The next `participant:updated` about `id` received after `after`; resolves with the participant. */
async function updateOf(socket, id, after, where = () => true) {
  const [event] = await waitFor(socket, "participant:updated", {
    after,
    where: (ev) => ev.participant.id === id && where(ev.participant),
  });
  return event.participant;
}

function meetingTests(where) {
  /** `room` opened by a host on the first node, then `guests` entering on the other, in turn. */
  async function meeting(room, guests = ["Bo"]) {
    const hana = await noomClient(where.url(0), "Hana", room);
    const people = [];
    for (const name of guests) {
      const before = mark(hana.socket);
      const guest = await noomClient(where.url(1), name, room);
      // The host's node knows of them (and so every node knows of everyone before them).
      await waitFor(hana.socket, "participant:joined", { after: before, where: (ev) => ev.participant.nickname === name });
      people.push(guest);
    }
    return { hana, guests: people };
  }

  test("whoever opens a room hosts it, everyone sees who hosts, and a host makes a co-host and takes it back", async () => {
    const room = roomName("hosts");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    assert.equal(hana.joined.self.host, true, "the opener hosts");
    assert.equal(bo.joined.self.host, undefined, "a newcomer does not");
    assert.deepEqual(bo.joined.participants.map((p) => [p.nickname, !!p.host]), [["Hana", true], ["Bo", false]]);
    assert.equal(bo.joined.room.locked, false);

    let marks = [mark(hana.socket), mark(bo.socket), mark(cy.socket)];
    assert.deepEqual(await ack(hana.socket, "room:host", { room, id: bo.socket.person, host: true }), {});
    for (const [i, s] of [hana.socket, bo.socket, cy.socket].entries()) {
      assert.equal((await updateOf(s, bo.socket.person, marks[i])).host, true, "everyone, the host too, sees the co-host");
    }
    // A co-host can do what a host does: make another.
    marks = [mark(hana.socket), mark(cy.socket)];
    assert.deepEqual(await ack(bo.socket, "room:host", { room, id: cy.socket.person, host: true }), {});
    assert.equal((await updateOf(hana.socket, cy.socket.person, marks[0])).host, true);
    marks = [mark(hana.socket), mark(bo.socket)];
    assert.deepEqual(await ack(hana.socket, "room:host", { room, id: bo.socket.person, host: false }), {});
    const back = await updateOf(bo.socket, bo.socket.person, marks[1]);
    assert.equal(back.host, undefined, "taken back");
    await expectError(bo.socket, "forbidden", "room:lock", { room, locked: true });
  });

  test("when the last host leaves, the one longest in the room hosts it", async () => {
    const room = roomName("handover");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    const marks = [mark(bo.socket), mark(cy.socket)];
    await ack(hana.socket, "room:leave", { room });
    for (const [i, s] of [bo.socket, cy.socket].entries()) {
      assert.equal((await updateOf(s, bo.socket.person, marks[i])).host, true, "Bo, who came first, hosts now");
    }
    assert.deepEqual(await ack(bo.socket, "room:lock", { room, locked: true }), { room: { name: room, unlisted: false, count: 2, locked: true, waitingRoom: false, password: false } });
    await expectError(cy.socket, "forbidden", "room:lock", { room, locked: false });
  });

  test("every host's control asked by anyone else is refused, and changes nothing", async () => {
    const room = roomName("refusals");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    await ack(cy.socket, "call:join", { room, media: AUDIO });
    const cyId = cy.socket.person;
    await updateOf(hana.socket, cyId, 0, (p) => !!p.call);
    const controls = [
      ["room:host", { room, id: cyId, host: true }],
      ["room:lock", { room, locked: true }],
      ["room:remove", { room, id: cyId }],
      ["room:remove", { room, id: cyId, bar: true }],
      ["room:end", { room }],
      ["call:mute", { room, id: cyId }],
      ["call:mute", { room }],
      ["call:ask", { room, id: cyId, ask: "unmute" }],
      ["call:ask", { room, id: cyId, ask: "stop-camera" }],
      ["call:ask", { room, id: cyId, ask: "stop-screen" }],
    ];
    const updates = () => [hana.socket, cy.socket].map((s) => received(s, "participant:updated").length);
    const before = updates();
    for (const [event, args] of controls) await expectError(bo.socket, "forbidden", event, args);
    // Someone not in the room is not in it; the room's hosts aim only at those in it.
    const { socket: stranger } = await noomClient(where.url(1), "Dee", roomName("elsewhere"));
    for (const [event, args] of controls) await expectError(stranger, "not_in_room", event, args);
    for (const id of ["no-such-person", stranger.person]) {
      await expectError(hana.socket, "not_found", "room:host", { room, id, host: true });
      await expectError(hana.socket, "not_found", "call:mute", { room, id });
      await expectError(hana.socket, "not_found", "room:remove", { room, id });
    }
    await expectError(hana.socket, "bad_request", "room:lock", { room, locked: "yes" });
    await expectError(hana.socket, "bad_request", "room:host", { room, host: true });
    await expectError(hana.socket, "bad_request", "call:ask", { room, id: cyId, ask: "sing" });
    await expectError(hana.socket, "bad_request", "room:remove", { room, id: hana.socket.person });
    await expectNothing([hana.socket, cy.socket], ["room:updated", "room:closed", "call:asked"], { what: "after the refusals" });
    assert.deepEqual(updates(), before, "nobody changed");
  });

  test("a locked room keeps newcomers out, Noom and seed pages alike, and keeps those inside; unlocked, it lets them in", async () => {
    const room = roomName("locked");
    const { hana, guests: [bo] } = await meeting(room);
    const before = mark(bo.socket);
    const locked = await ack(hana.socket, "room:lock", { room, locked: true });
    assert.equal(locked.room.locked, true);
    const [pushed] = await waitFor(bo.socket, "room:updated", { after: before });
    assert.deepEqual(pushed, { room: { name: room, unlisted: false, count: 2, locked: true, waitingRoom: false, password: false } });
    const { socket: cy } = await noomClient(where.url(1), "Cy");
    await expectError(cy, "room_locked", "room:join", { room });
    const { socket: seed } = await noomClient(where.url(1));
    const seedAnswer = await ackArgs(seed, "enter_room", room);
    assert.equal(seedAnswer[0]?.error?.code, "room_locked", `the seed's done({ error }): ${JSON.stringify(seedAnswer)}`);
    // Those inside stay; a page whose connection drops comes back in on its next one (it tells
    // by its resume token), and nobody else does.
    assert.equal((await ack(bo.socket, "room:join", { room })).room.name, room);
    // Each lock and unlock is waited for on the guests' node (Bo is there) before anyone acts on it.
    const setLock = async (locked) => {
      const seen = mark(bo.socket);
      await ack(hana.socket, "room:lock", { room, locked });
      await waitFor(bo.socket, "room:updated", { after: seen, where: (ev) => ev.room.locked === locked });
    };
    const { socket: dee } = await noomClient(where.url(1), "Dee", undefined, { auth: { protocol: "noom/1", resume: `dee-${room}` } });
    await setLock(false);
    await ack(dee, "room:join", { room });
    await setLock(true);
    dee.disconnect();
    await waitFor(hana.socket, "participant:left", { where: (ev) => ev.participant.nickname === "Dee" });
    const { socket: deeAgain } = await noomClient(where.url(1), "Dee", undefined, { auth: { protocol: "noom/1", resume: `dee-${room}` } });
    assert.equal((await ack(deeAgain, "room:join", { room })).room.name, room, "Dee's page is back in");
    await expectError(cy, "room_locked", "room:join", { room });
    await setLock(false);
    assert.equal((await ack(cy, "room:join", { room })).room.locked, false);
  });

  test("a host removes someone, who is told and may come back; removed for good, they may not while the room is open", async () => {
    const room = roomName("removal");
    const { hana, guests: [bo] } = await meeting(room);
    let before = [mark(hana.socket), mark(bo.socket)];
    assert.deepEqual(await ack(hana.socket, "room:remove", { room, id: bo.socket.person }), {});
    const [closed] = await waitFor(bo.socket, "room:closed", { after: before[1] });
    assert.deepEqual(closed, { room, reason: "removed" });
    await waitFor(hana.socket, "participant:left", { after: before[0], where: (ev) => ev.participant.id === bo.socket.person });
    await waitFor(bo.socket, "directory", { after: before[1] });
    assert.equal((await ack(bo.socket, "room:join", { room })).room.name, room, "back in");
    before = [mark(hana.socket), mark(bo.socket)];
    await waitFor(hana.socket, "participant:joined", { after: before[0] - 1, where: (ev) => ev.participant.id === bo.socket.person });
    await ack(hana.socket, "room:remove", { room, id: bo.socket.person, bar: true });
    await waitFor(bo.socket, "room:closed", { after: before[1] });
    await expectError(bo.socket, "barred", "room:join", { room });
    await expectError(bo.socket, "barred", "enter_room", room);
  });

  test("a host ends the meeting: everyone is out, each told it ended", async () => {
    const room = roomName("ended");
    const { hana, guests } = await meeting(room, ["Bo", "Cy"]);
    const before = guests.map((g) => mark(g.socket));
    assert.deepEqual(await ack(hana.socket, "room:end", { room }), { count: 3 });
    for (const [i, g] of guests.entries()) {
      const [closed] = await waitFor(g.socket, "room:closed", { after: before[i] });
      assert.deepEqual(closed, { room, reason: "ended" });
    }
    const [closed] = await waitFor(hana.socket, "room:closed");
    assert.equal(closed.reason, "ended");
  });

  test("a raised hand shows to everyone with when it went up, so hosts see the order; lowered, it goes", async () => {
    const room = roomName("hands");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    let before = mark(hana.socket);
    assert.deepEqual(await ack(cy.socket, "room:hand", { room, raised: true }), {});
    const cyHand = (await updateOf(hana.socket, cy.socket.person, before)).hand;
    await ack(bo.socket, "room:hand", { room, raised: true });
    const boHand = (await updateOf(hana.socket, bo.socket.person, before)).hand;
    assert.ok(typeof cyHand === "number" && typeof boHand === "number" && cyHand <= boHand, `${cyHand} then ${boHand}`);
    assert.equal((await updateOf(cy.socket, cy.socket.person, 0)).hand, cyHand, "the one raising sees it too");
    before = mark(bo.socket);
    await ack(cy.socket, "room:hand", { room, raised: false });
    assert.equal((await updateOf(bo.socket, cy.socket.person, before)).hand, undefined);
  });

  test("a muted guest may not turn their microphone on until a host asks; mute all spares the hosts; asks reach only the one asked", async () => {
    const room = roomName("mute");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    for (const s of [hana.socket, bo.socket, cy.socket]) await ack(s, "call:join", { room, media: AUDIO });
    let before = mark(bo.socket);
    assert.deepEqual(await ack(hana.socket, "call:mute", { room, id: bo.socket.person }), { count: 1 });
    assert.equal((await updateOf(bo.socket, bo.socket.person, before)).muted, true);
    await expectError(bo.socket, "forbidden", "call:media", { room, ...AUDIO });
    await expectError(bo.socket, "forbidden", "call:join", { room, media: AUDIO });
    const off = await ack(bo.socket, "call:media", { room, audio: false, video: true, screen: false });
    assert.equal(off.participant.call.audio, false, "turning it off is fine");
    before = mark(bo.socket);
    const cyBefore = mark(cy.socket);
    await ack(hana.socket, "call:ask", { room, id: bo.socket.person, ask: "unmute" });
    assert.equal((await updateOf(bo.socket, bo.socket.person, before)).muted, undefined);
    const [asked] = await waitFor(bo.socket, "call:asked", { after: before });
    assert.deepEqual(asked, { room, ask: "unmute" });
    assert.equal((await ack(bo.socket, "call:media", { room, ...AUDIO })).participant.call.audio, true, "asked, they may");
    assert.deepEqual(await ack(hana.socket, "call:mute", { room }), { count: 2 }, "everyone but the host");
    await updateOf(cy.socket, cy.socket.person, cyBefore, (p) => p.muted === true);
    await ack(hana.socket, "call:ask", { room, id: cy.socket.person, ask: "stop-camera" });
    const [stop] = await waitFor(cy.socket, "call:asked", { after: cyBefore });
    assert.deepEqual(stop, { room, ask: "stop-camera" });
    await expectNothing([hana.socket], ["call:asked"], { what: "an ask goes to the one asked" });
    assert.deepEqual(await ack(hana.socket, "call:mute", { room }), { count: 0 }, "muted already");
  });

  test("a room with a password lets in those who give it and nobody else, seed pages included; guesses are limited", async () => {
    const room = roomName("password");
    const { hana, guests: [bo] } = await meeting(room);
    await expectError(bo.socket, "forbidden", "room:password", { room, password: "s3cret" });
    const before = mark(bo.socket);
    const set = await ack(hana.socket, "room:password", { room, password: "s3cret" });
    assert.equal(set.room.password, true);
    const [pushed] = await waitFor(bo.socket, "room:updated", { after: before });
    assert.equal(pushed.room.password, true);
    assert.ok(!JSON.stringify(pushed).includes("s3cret") && !JSON.stringify(pushed).includes("argon2"), "neither it nor its hash is told");
    await expectError(hana.socket, "bad_request", "room:password", { room, password: "" });

    const { socket: cy } = await noomClient(where.url(1), "Cy");
    await expectError(cy, "password_required", "room:join", { room });
    await expectError(cy, "wrong_password", "room:join", { room, password: "S3cret" });
    assert.equal((await ack(cy, "room:join", { room, password: "s3cret" })).room.name, room, "the right one lets Cy in");
    const { socket: seed } = await noomClient(where.url(1));
    assert.equal((await ackArgs(seed, "enter_room", room))[0]?.error?.code, "password_required", "a seed page has none to give");

    const { socket: dee } = await noomClient(where.url(1), "Dee");
    const guesses = [];
    for (let i = 0; i < 7; i++) guesses.push((await ack(dee, "room:join", { room, password: `guess ${i}` })).error?.code);
    assert.deepEqual(guesses.slice(0, 5), Array(5).fill("wrong_password"));
    assert.deepEqual(guesses.slice(5), ["rate_limited", "rate_limited"], "then one every twelve seconds");
    await expectError(dee, "rate_limited", "room:join", { room, password: "s3cret" });

    assert.equal((await ack(hana.socket, "room:password", { room, password: null })).room.password, false);
    await expectError(hana.socket, "bad_request", "room:password", { room });
    await waitFor(bo.socket, "room:updated", { after: before, where: (ev) => ev.room.password === false });
    assert.equal((await ack(dee, "room:join", { room })).room.password, false, "without a password, anyone");
  });

  test("a room opened with a host key hosts whoever gives it, past lock and waiting room; a wrong key is refused; nobody else is made host", async () => {
    const room = roomName("host-key");
    const { socket: hana } = await noomClient(where.url(0), "Hana");
    const opened = await ack(hana, "room:join", { room, withHostKey: true });
    assert.equal(opened.self.host, true);
    assert.match(opened.hostKey, /^[A-Za-z0-9_-]{22}$/, "its opener is told the key");
    const { socket: bo, joined } = await noomClient(where.url(1), "Bo", room);
    assert.equal(joined.hostKey, undefined, "nobody else is");
    await waitFor(hana, "participant:joined");
    await ack(hana, "room:lock", { room, locked: true });
    await ack(hana, "room:waiting-room", { room, on: true });

    const { socket: cy } = await noomClient(where.url(1), "Cy");
    await expectError(cy, "bad_host_key", "room:join", { room, hostKey: "A".repeat(22) });
    await expectError(cy, "bad_request", "room:join", { room, hostKey: "" });
    const before = mark(bo);
    const asHost = await ack(cy, "room:join", { room, hostKey: opened.hostKey });
    assert.equal(asHost.self.host, true, "the key makes Cy a host, lock and waiting room notwithstanding");
    assert.equal(asHost.hostKey, undefined);
    const [arrival] = await waitFor(bo, "participant:joined", { after: before });
    assert.equal(arrival.participant.host, true, "the others see a host arrive");

    // Both hosts leave: Bo, longest present, is not made host, as the room has a host key.
    await ack(hana, "room:leave", { room });
    await ack(cy, "room:leave", { room });
    await waitFor(bo, "participant:left", { where: (ev) => ev.participant.id === cy.person });
    await expectError(bo, "forbidden", "room:lock", { room, locked: false });
    const { socket: dee } = await noomClient(where.url(0), "Dee");
    await waitFor(hana, "directory");
    assert.equal((await ack(hana, "room:join", { room, hostKey: opened.hostKey })).self.host, true, "the host link brings a host back");
    await expectError(dee, "bad_host_key", "room:join", { room, hostKey: "B".repeat(22) });
  });

  test("a reaction reaches everyone else in the room, whatever their node; an unknown one and a flood are refused", async () => {
    const room = roomName("reactions");
    const { hana, guests: [bo, cy] } = await meeting(room, ["Bo", "Cy"]);
    assert.deepEqual(await ack(bo.socket, "room:react", { room, emoji: "👍" }), {});
    for (const s of [hana.socket, cy.socket]) {
      const [reaction] = await waitFor(s, "room:reaction");
      assert.deepEqual(reaction, { room, from: bo.socket.person, emoji: "👍" });
    }
    await expectError(bo.socket, "bad_request", "room:react", { room, emoji: "💩" });
    await expectError(bo.socket, "not_in_room", "room:react", { room: roomName("elsewhere"), emoji: "🎉" });
    const answers = await Promise.all(Array.from({ length: 12 }, () => ack(cy.socket, "room:react", { room, emoji: "🎉" })));
    assert.ok(answers.some((a) => a.error?.code === "rate_limited"), `a flood is cut: ${JSON.stringify(answers)}`);
    assert.ok(answers.filter((a) => !a.error).length >= 5, "a few at once pass");
    assert.ok(!received(bo.socket, "room:reaction").some(([r]) => r.from === bo.socket.person), "nobody is sent their own");
  });

  test("with the waiting room on, newcomers wait and the hosts see them; one let in enters, one turned away is told", async () => {
    const room = roomName("waiting");
    const { hana, guests: [bo] } = await meeting(room);
    let before = mark(bo.socket);
    const set = await ack(hana.socket, "room:waiting-room", { room, on: true });
    assert.equal(set.room.waitingRoom, true);
    await waitFor(bo.socket, "room:updated", { after: before, where: (ev) => ev.room.waitingRoom === true });
    await expectError(bo.socket, "forbidden", "room:waiting-room", { room, on: false });

    const hostMark = mark(hana.socket);
    const { socket: cy } = await noomClient(where.url(1), "Cy");
    assert.deepEqual(await ack(cy, "room:join", { room }), { waiting: { room } }, "Cy waits");
    const { socket: dee } = await noomClient(where.url(1), "Dee");
    assert.deepEqual(await ack(dee, "room:join", { room }), { waiting: { room } });
    const [queue] = await waitFor(hana.socket, "room:waiting", { after: hostMark, where: (ev) => ev.waiting.length === 2 });
    assert.deepEqual(queue.waiting.map((w) => [w.id, w.nickname]), [[cy.person, "Cy"], [dee.person, "Dee"]]);
    assert.ok(queue.waiting.every((w) => typeof w.since === "number"));
    await expectNothing([bo.socket], ["room:waiting"], { what: "only hosts see who waits" });
    const { socket: seed } = await noomClient(where.url(1));
    assert.equal((await ackArgs(seed, "enter_room", room))[0]?.error?.code, "waiting_room", "a seed page cannot wait: it is told so");

    await expectError(bo.socket, "forbidden", "room:admit", { room, id: cy.person, admit: true });
    await expectError(hana.socket, "not_found", "room:admit", { room, id: bo.socket.person, admit: true });
    assert.deepEqual(await ack(hana.socket, "room:admit", { room, id: cy.person, admit: true }), {});
    await waitFor(cy, "room:admitted", { where: (ev) => ev.room === room });
    const joined = await ack(cy, "room:join", { room });
    assert.equal(joined.room.name, room, "let in, Cy enters");
    assert.deepEqual(await ack(hana.socket, "room:admit", { room, id: dee.person, admit: false }), {});
    const [refused] = await waitFor(dee, "room:refused");
    assert.deepEqual(refused, { room, reason: "refused" });
    assert.deepEqual(await ack(dee, "room:join", { room }), { waiting: { room } }, "turned away, Dee may ask again");
    before = mark(hana.socket);
    assert.deepEqual(await ack(dee, "room:leave", { room }), { left: [] }, "and give up");
    await waitFor(hana.socket, "room:waiting", { after: before, where: (ev) => ev.waiting.length === 0 });
  });

  test("turning the waiting room off lets in everyone waiting; the room closing tells those waiting", async () => {
    const room = roomName("waiting-off");
    // Bo, on the newcomers' node, shows when that node knows the waiting room is on.
    const { hana, guests: [bo] } = await meeting(room);
    const waitingRoom = async (on) => {
      const seen = mark(bo.socket);
      await ack(hana.socket, "room:waiting-room", { room, on });
      await waitFor(bo.socket, "room:updated", { after: seen, where: (ev) => ev.room.waitingRoom === on });
    };
    await waitingRoom(true);
    const { socket: cy } = await noomClient(where.url(1), "Cy");
    let before = mark(hana.socket);
    assert.deepEqual(await ack(cy, "room:join", { room }), { waiting: { room } });
    await waitFor(hana.socket, "room:waiting", { after: before, where: (ev) => ev.waiting.length === 1 });
    await ack(hana.socket, "room:waiting-room", { room, on: false });
    await waitFor(cy, "room:admitted");
    assert.equal((await ack(cy, "room:join", { room })).room.count, 3);

    await waitingRoom(true);
    const { socket: dee } = await noomClient(where.url(1), "Dee");
    before = mark(hana.socket);
    assert.deepEqual(await ack(dee, "room:join", { room }), { waiting: { room } });
    await waitFor(hana.socket, "room:waiting", { after: before, where: (ev) => ev.waiting.length === 1 });
    await ack(hana.socket, "room:end", { room });
    const [closed] = await waitFor(dee, "room:refused");
    assert.deepEqual(closed, { room, reason: "closed" });
  });
}

describe("one node", () => {
  const server = useServer({});
  meetingTests({ url: () => server.url });
});

describe("two nodes: the host on one, the others on the other", () => {
  const cluster = useCluster(2, { cleanup: disconnectAll });
  meetingTests({ url: (i) => cluster.nodes[i].url });
});
