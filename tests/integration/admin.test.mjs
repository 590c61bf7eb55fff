// The admin API behind /admin: it refuses every request without the configured token (and does
// not exist without one), shows every room live with its people, their media and node, closes
// rooms and disconnects people, on one node and across a cluster.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useCluster, waitForRedisStatus, waitUntil, withCluster } from "../support/cluster.mjs";
import { ack, disconnectAll, expectError, expectNothing, mark, noomClient, pause, received, roomName,
  seedClient, unlistedName, useServer, waitFor, waitForDisconnect, withServer } from "../support/clients.mjs";

const TOKEN = "test-admin-token-0123456789abcdef";

/** Calls the admin API; resolves with the status, the headers and the parsed body. */
async function api(url, path, { token = TOKEN, body, method = body === undefined ? "GET" : "POST", headers = {} } = {}) {
  const res = await fetch(`${url}/admin/api/${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === "string" || body === undefined ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const state = async (url) => {
  const res = await api(url, "state");
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
};

const roomIn = (s, name) => s.rooms.find((r) => r.name === name);

function assertApiError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, "string");
}

/** The value of one sample of /metrics. */
async function metric(url, sample) {
  const page = await (await fetch(`${url}/metrics`)).text();
  const line = page.split("\n").find((l) => l.startsWith(`${sample} `));
  return Number(line?.slice(sample.length + 1));
}

describe("one node", () => {
  const server = useServer({ args: ["--admin-token", TOKEN, "--directory-interval-ms", "100"] });

  test("every request without the token, or with another, is refused and changes nothing", async () => {
    const room = roomName("guarded");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const refusedBefore = await metric(server.url, 'noom_rejected_total{reason="unauthorized"}');
    const requests = [
      ["state", {}],
      ["state?after=0", {}],
      ["close-room", { body: { room } }],
      ["disconnect", { body: { id: ann.person } }],
      ["no-such-thing", {}],
    ];
    const credentials = [
      {},
      { token: "wrong-token-0123456789abcdef-xyz" },
      { token: `${TOKEN}x` },
      { token: TOKEN.slice(0, -1) },
      { token: null, headers: { authorization: TOKEN } },
      { token: null, headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}` } },
      { token: null, headers: { cookie: `token=${TOKEN}` } },
    ];
    let refused = 0;
    for (const [i, [path, options]] of requests.entries()) {
      // Each path from an address of its own (the server trusts the local proxy's header): wrong
      // tokens from one address are soon slowed down (see security.test.mjs).
      const from = { "x-forwarded-for": `198.51.100.${i + 1}` };
      for (const credential of credentials) {
        const res = await api(server.url, path, { ...options, token: null, ...credential, headers: { ...from, ...credential.headers } });
        assertApiError(res, 401, "unauthorized");
        assert.equal(res.headers.get("www-authenticate"), "Bearer", path);
        refused++;
      }
      // Nor in the query string.
      const res = await api(server.url, `${path}${path.includes("?") ? "&" : "?"}token=${TOKEN}`, { ...options, token: null, headers: from });
      assertApiError(res, 401, "unauthorized");
      refused++;
    }
    await expectNothing([ann], ["room:closed", "server:disconnected", "disconnect"]);
    assert.ok(ann.connected);
    assert.equal(roomIn(await state(server.url), room).count, 1, "the room is still open");
    assert.equal(await metric(server.url, 'noom_rejected_total{reason="unauthorized"}'), refusedBefore + refused);
  });

  test("the state lists every room, listed or not, with its people, their call and media, and the node", async () => {
    const [open, hidden] = [roomName("open"), unlistedName("hidden")];
    const { socket: ann } = await noomClient(server.url, "Ann", open);
    const { socket: bo } = await noomClient(server.url, "Bo", open);
    const { socket: cy } = await noomClient(server.url, "Cy", hidden, { unlisted: true });
    const seed = await seedClient(server.url, "Seedy", open);
    await ack(bo, "call:join", { room: open, media: { audio: true, video: false } });

    const s = await state(server.url);
    assert.equal(typeof s.version, "number");
    assert.equal(s.redis, "off");
    assert.ok(s.connections >= 4, `connections: ${s.connections}`);
    assert.deepEqual(s.nodes, [{ id: s.node, self: true, people: s.nodes[0].people }]);
    assert.ok(s.nodes[0].people >= 4);
    assert.deepEqual(roomIn(s, open), {
      name: open,
      unlisted: false,
      count: 3,
      inCall: 1,
      participants: [
        { id: ann.person, nickname: "Ann", node: s.node },
        { id: bo.person, nickname: "Bo", node: s.node, call: { audio: true, video: false, screen: false } },
        { id: roomIn(s, open)?.participants[2]?.id, nickname: "Seedy", node: s.node },
      ],
    });
    assert.deepEqual(roomIn(s, hidden), {
      name: hidden, unlisted: true, count: 1, inCall: 0, participants: [{ id: cy.person, nickname: "Cy", node: s.node }],
    });
    const names = s.rooms.map((r) => r.name);
    assert.deepEqual(names, [...names].sort(), "rooms come by name");
  });

  test("a request for the state after a version waits for the next change", async () => {
    const room = roomName("live");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const { version } = await state(server.url);
    let answered = null;
    const waiting = api(server.url, `state?after=${version}`).then((res) => (answered = res));
    await pause(300);
    assert.equal(answered, null, "nothing changed: no answer yet");
    await ack(ann, "call:join", { room, media: { audio: false, video: true } });
    const res = await waiting;
    assert.equal(res.status, 200);
    assert.ok(res.body.version > version);
    assert.deepEqual(roomIn(res.body, room).participants[0].call, { audio: false, video: true, screen: false });
    // An older version is answered at once.
    const at = Date.now();
    assert.equal((await api(server.url, `state?after=${version}`)).status, 200);
    assert.ok(Date.now() - at < 5000);
  });

  test("closing a room takes everyone out of it and its call, tells them, and leaves other rooms alone", async () => {
    const [room, other] = [roomName("closing"), roomName("other")];
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const { socket: bo } = await noomClient(server.url, "Bo", room);
    const { socket: cy } = await noomClient(server.url, "Cy", other);
    const seed = await seedClient(server.url, "Seedy", room);
    await ack(ann, "chat:send", { room, text: "before" });
    await ack(bo, "call:join", { room });
    const [annMark, boMark] = [mark(ann), mark(bo)];

    const res = await api(server.url, "close-room", { body: { room } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { room, people: 3 });
    for (const [who, at] of [[ann, annMark], [bo, boMark]]) {
      const [closed] = await waitFor(who, "room:closed", { after: at });
      assert.deepEqual(closed, { room, reason: "admin" });
      // Back in the lobby: the directory follows, and nothing of the room after the notice.
      await waitFor(who, "directory", { after: at });
      const notice = who.inbox.entries.findIndex((e, i) => i >= at && e.name === "room:closed");
      const after = who.inbox.entries.slice(notice + 1).filter((e) => e.args[0]?.room === room);
      assert.deepEqual(after, [], "nothing about the room after its notice");
    }
    assert.equal(roomIn(await state(server.url), room), undefined, "the room is gone");
    await expectError(ann, "not_in_room", "chat:send", { room, text: "after" });
    await expectError(bo, "not_in_room", "call:join", { room });
    assert.equal(roomIn(await state(server.url), other).count, 1, "the other room is still open");
    await expectNothing([cy], ["room:closed"]);
    // The room can be opened again, afresh.
    const joined = await ack(ann, "room:join", { room });
    assert.deepEqual(joined.history, []);
    assert.equal(joined.room.count, 1);
    assert.ok(seed.connected);
  });

  test("disconnecting someone tells them why, closes their connection, and the others see them leave", async () => {
    const room = roomName("kick");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const { socket: bo } = await noomClient(server.url, "Bo", room);
    const id = bo.person;
    const res = await api(server.url, "disconnect", { body: { id } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { id, node: (await state(server.url)).node });
    const [notice] = await waitFor(bo, "server:disconnected");
    assert.deepEqual(notice, { reason: "admin" });
    const [reason] = await waitFor(bo, "disconnect");
    assert.equal(reason, "io server disconnect");
    const [left] = await waitFor(ann, "participant:left");
    assert.equal(left.participant.id, id);
    await waitUntil(async () => roomIn(await state(server.url), room)?.count === 1, { what: "Bo leaves the state" });
    assert.ok(ann.connected);
  });

  test("bad requests get a clear error and change nothing", async () => {
    const room = roomName("intact");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const cases = [
      ["close-room", "not json", 400, "bad_request"],
      ["close-room", {}, 400, "bad_request"],
      ["close-room", { room: 7 }, 400, "bad_request"],
      ["close-room", { room, extra: true }, 400, "bad_request"],
      ["close-room", { room: "r".repeat(65) }, 400, "invalid_room"],
      ["close-room", { room: roomName("never-opened") }, 404, "not_found"],
      ["disconnect", { id: "not-a-socket-id" }, 404, "not_found"],
      ["disconnect", { id: "AAAAAAAAAAAAAAAA" }, 404, "not_found"],
      ["disconnect", [], 400, "bad_request"],
      ["state?after=soon", undefined, 400, "bad_request"],
      ["rooms", undefined, 404, "not_found"],
    ];
    for (const [path, body, status, code] of cases) {
      assertApiError(await api(server.url, path, { body }), status, code);
    }
    await expectNothing([ann], ["room:closed", "server:disconnected", "disconnect"]);
    assert.equal(roomIn(await state(server.url), room).count, 1);
  });
});

describe("without a token", () => {
  const server = useServer({ args: [] });

  test("there is no admin panel: the page says how to turn it on, the API does not exist", async () => {
    const page = await fetch(`${server.url}/admin`);
    assert.equal(page.status, 404);
    assert.match(await page.text(), /--admin-token/);
    for (const path of ["state", "close-room", "disconnect"]) {
      const res = await api(server.url, path, { body: path === "state" ? undefined : {} });
      assertApiError(res, 404, "admin_disabled");
    }
    // The page's file is not served under another name either.
    assert.equal((await fetch(`${server.url}/admin.html`)).status, 404);
  });
});

test("with a token, /admin serves the panel's page", async () => {
  await withServer({ args: ["--admin-token", TOKEN] }, async (server) => {
    const page = await fetch(`${server.url}/admin`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy"), /script-src 'self'/);
    assert.match(await page.text(), /<script type="module"[^>]* src="\/assets\//);
  });
});

describe("a cluster of two nodes", () => {
  const cluster = useCluster(2, { args: ["--admin-token", TOKEN], cleanup: disconnectAll });
  const node = (label) => cluster.nodes.find((n) => n.label === label).url;

  test("each node shows everyone with their node, and acts on people of the other node", async () => {
    const room = roomName("spread");
    const { socket: ann } = await noomClient(node("A"), "Ann", room);
    const { socket: bo } = await noomClient(node("B"), "Bo", room);
    await ack(bo, "call:join", { room, media: { audio: true, video: true } });
    const [a, b] = [(await state(node("A"))).node, (await state(node("B"))).node];
    assert.notEqual(a, b);
    const expected = [
      { id: ann.person, nickname: "Ann", node: a },
      { id: bo.person, nickname: "Bo", node: b, call: { audio: true, video: true, screen: false } },
    ];
    for (const label of ["A", "B"]) {
      await waitUntil(async () => {
        const s = await state(node(label));
        return JSON.stringify(roomIn(s, room)?.participants) === JSON.stringify(expected) && s.nodes.length === 2;
      }, { what: `node ${label} shows both, with their nodes` });
    }
    const nodes = (await state(node("A"))).nodes;
    assert.deepEqual(nodes.map((n) => [n.id, n.self]).sort(), [[a, true], [b, false]].sort());

    // Closed from node A: Bo, on node B, is taken out and told.
    const closed = await api(node("A"), "close-room", { body: { room } });
    assert.deepEqual(closed.body, { room, people: 2 });
    assert.deepEqual((await waitFor(bo, "room:closed"))[0], { room, reason: "admin" });
    assert.deepEqual((await waitFor(ann, "room:closed"))[0], { room, reason: "admin" });
    for (const label of ["A", "B"]) {
      await waitUntil(async () => roomIn(await state(node(label)), room) === undefined, { what: `gone on ${label}` });
    }

    // Disconnected from node A: Bo, on node B.
    await ack(ann, "room:join", { room });
    await ack(bo, "room:join", { room });
    await waitUntil(async () => roomIn(await state(node("A")), room)?.count === 2, { what: "A sees Bo back" });
    const id = bo.person;
    const kicked = await api(node("A"), "disconnect", { body: { id } });
    assert.deepEqual(kicked.body, { id, node: b });
    assert.deepEqual((await waitFor(bo, "server:disconnected"))[0], { reason: "admin" });
    await waitForDisconnect(bo);
    const [left] = await waitFor(ann, "participant:left", { where: (e) => e.participant.id === id });
    assert.equal(left.room, room);
    assert.ok(received(ann, "server:disconnected").length === 0 && ann.connected);
  });
});

test("while the link to the other nodes is down, acting on their people is refused, not pretended", { timeout: 60000 }, async () => {
  await withCluster(2, { args: ["--admin-token", TOKEN], cleanup: disconnectAll }, async ({ redis, nodes: [a, b] }) => {
    const room = roomName("cut-off");
    const { socket: ann } = await noomClient(a.url, "Ann", room);
    const { socket: bo } = await noomClient(b.url, "Bo", room);
    await waitUntil(async () => roomIn(await state(a.url), room)?.count === 2, { what: "A sees Bo" });

    await redis.stop({ kill: true });
    await waitForRedisStatus([a], "down", { timeout: 15000 });
    // Node A still lists Bo for a while (until node B has been silent for 10 s).
    assert.equal(roomIn(await state(a.url), room)?.count, 2);
    assertApiError(await api(a.url, "disconnect", { body: { id: bo.person } }), 503, "cluster_unavailable");
    assertApiError(await api(a.url, "close-room", { body: { room } }), 503, "cluster_unavailable");
    await expectNothing([ann, bo], ["server:disconnected", "room:closed"]);
    assert.ok(bo.connected && ann.connected);

    // Node A's own people are still its to act on.
    const kicked = await api(a.url, "disconnect", { body: { id: ann.person } });
    assert.equal(kicked.status, 200, JSON.stringify(kicked.body));
    await waitForDisconnect(ann);
  });
});

test("a seed client taken out of a closed room can enter it again", async () => {
  await withServer({ args: ["--admin-token", TOKEN] }, async (server) => {
    const room = roomName("seed-closed");
    const seed = await seedClient(server.url, "Seedy", room);
    assert.equal((await api(server.url, "close-room", { body: { room } })).status, 200);
    await waitUntil(async () => roomIn(await state(server.url), room) === undefined, { what: "the room is gone" });
    const again = await seedClient(server.url, "Again", room);
    assert.ok(again.connected && seed.connected);
    assert.equal(roomIn(await state(server.url), room).count, 1);
  });
});
