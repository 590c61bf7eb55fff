// HTTP routes: the web client, the Socket.IO client bundle, /healthz, 404s, and which origins may
// open Socket.IO connections (with CORS headers for the allowed ones).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { ack, connect, disconnectAll, roomName, upgradeStatus, useServer } from "../support/clients.mjs";

const EVIL = "http://evil.example";
const HANDSHAKE = "/socket.io/?EIO=4&transport=polling";

const server = useServer();

const get = (path, headers = {}, base = server.url) => fetch(base + path, { headers, redirect: "manual" });

async function assertHandshakeOk(res) {
  assert.equal(res.status, 200);
  const body = await res.text();
  assert.match(body, /^0\{.*"sid"/, `an Engine.IO open packet: ${body}`);
}

describe("pages", () => {
  for (const path of ["/", "/r/some%20room", "/r/caf%C3%A9"]) {
    test(`${path} serves the web client as HTML`, async () => {
      const res = await get(path);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(await res.text(), /<html|<!doctype html/i);
    });
  }

  test("/socket.io/socket.io.js serves the Socket.IO client bundle", async () => {
    const res = await get("/socket.io/socket.io.js");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /javascript/);
    const body = await res.text();
    assert.match(body, /socket\.io/i);
    assert.ok(body.length > 10000, `a real bundle (${body.length} bytes)`);
  });

  test("/healthz answers 200 with the state of the Redis link: off for a node alone", async () => {
    const res = await get("/healthz");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /application\/json/);
    assert.deepEqual(await res.json(), { status: "ok", redis: "off" });
  });

  for (const path of ["/nope", "/index.php", "/r", "/assets/nope.js", "/socket.io.js", "/healthz/more"]) {
    test(`${path} is 404 with a short page`, async () => {
      const res = await get(path);
      assert.equal(res.status, 404);
      assert.ok((await res.text()).length > 0, "a page saying so");
    });
  }
});

describe("origins (default: same origin only)", () => {
  test("a polling handshake without Origin is accepted", async () => {
    await assertHandshakeOk(await get(HANDSHAKE));
  });

  test("a polling handshake from the server's own origin is accepted", async () => {
    await assertHandshakeOk(await get(HANDSHAKE, { Origin: server.url }));
  });

  test("a polling handshake from another origin gets 403", async () => {
    const res = await get(HANDSHAKE, { Origin: EVIL });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  });

  test("a WebSocket connection from another origin gets 403", async () => {
    assert.equal(await upgradeStatus(server.url, "/socket.io/?EIO=4&transport=websocket", EVIL), 403);
    assert.equal(await upgradeStatus(server.url, "/socket.io/?EIO=4&transport=websocket", server.url), 101);
    assert.equal(await upgradeStatus(server.url, "/socket.io/?EIO=4&transport=websocket"), 101);
  });

  test("a Socket.IO client sending another origin cannot connect", async () => {
    await assert.rejects(connect(server.url, { transports: ["polling"], extraHeaders: { Origin: EVIL } }));
    await assert.rejects(connect(server.url, { transports: ["websocket"], extraHeaders: { Origin: EVIL } }));
  });
});

describe("origins with --allowed-origins", () => {
  let allowing;
  before(async () => {
    allowing = await startServer({ args: ["--allowed-origins", EVIL] });
  });
  after(async () => {
    await disconnectAll();
    await allowing?.stop();
  });

  test("a polling handshake from a listed origin succeeds, with CORS headers", async () => {
    const res = await get(HANDSHAKE, { Origin: EVIL }, allowing.url);
    assert.equal(res.headers.get("access-control-allow-origin"), EVIL);
    await assertHandshakeOk(res);
  });

  test("a CORS preflight from a listed origin is allowed", async () => {
    const res = await fetch(allowing.url + HANDSHAKE, {
      method: "OPTIONS",
      headers: { Origin: EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });
    assert.ok(res.status >= 200 && res.status < 300, `preflight status ${res.status}`);
    assert.equal(res.headers.get("access-control-allow-origin"), EVIL);
  });

  test("an origin that is not listed still gets 403", async () => {
    const res = await get(HANDSHAKE, { Origin: "http://other.example" }, allowing.url);
    assert.equal(res.status, 403);
  });

  test("the server's own origin and no origin are still accepted", async () => {
    await assertHandshakeOk(await get(HANDSHAKE, { Origin: allowing.url }, allowing.url));
    await assertHandshakeOk(await get(HANDSHAKE, {}, allowing.url));
  });

  test("Socket.IO clients from the listed origin connect over both transports and chat", async () => {
    for (const transports of [["polling"], ["websocket"]]) {
      const socket = await connect(allowing.url, { transports, extraHeaders: { Origin: EVIL }, auth: { protocol: "noom/1" } });
      const room = roomName();
      const joined = await ack(socket, "room:join", { room });
      assert.equal(joined.room.name, room);
      assert.ok((await ack(socket, "chat:send", { room, text: "hello" })).message);
    }
  });
});

test("--allowed-origins '*' accepts any origin; NOOM_ALLOWED_ORIGINS works like the flag", async () => {
  const any = await startServer({ args: ["--allowed-origins", "*"] });
  const fromEnv = await startServer({ env: { NOOM_ALLOWED_ORIGINS: `http://one.example,${EVIL}` } });
  try {
    const res = await get(HANDSHAKE, { Origin: "http://anything.example" }, any.url);
    assert.ok(res.headers.get("access-control-allow-origin"), "a CORS header");
    await assertHandshakeOk(res);

    await assertHandshakeOk(await get(HANDSHAKE, { Origin: EVIL }, fromEnv.url));
    await assertHandshakeOk(await get(HANDSHAKE, { Origin: "http://one.example" }, fromEnv.url));
    assert.equal((await get(HANDSHAKE, { Origin: "http://two.example" }, fromEnv.url)).status, 403);
  } finally {
    await any.stop();
    await fromEnv.stop();
  }
});
