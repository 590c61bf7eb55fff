// Shutdown on SIGTERM: connected clients are told the server is restarting, then their connections
// close, and the process exits cleanly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { connect, disconnectAll, mark, noomClient, roomName, waitFor } from "../support/clients.mjs";
import { pythonClient } from "../support/python-client.mjs";

test("on SIGTERM every client hears server:restarting, then is disconnected, and noom exits 0", async () => {
  const server = await startServer();
  try {
    const { socket: noom } = await noomClient(server.url, "Ann", roomName("closing"));
    const seed = await connect(server.url);
    const exited = new Promise((resolve) => server.proc.once("exit", (code, signal) => resolve({ code, signal })));
    server.proc.kill("SIGTERM");
    for (const socket of [noom, seed]) {
      assert.deepEqual(await waitFor(socket, "server:restarting"), [{}]);
      // The connections close under the clients ("transport close"), which reconnect by themselves.
      assert.deepEqual(await waitFor(socket, "disconnect"), ["transport close"]);
      const names = socket.inbox.names();
      assert.ok(names.indexOf("server:restarting") < names.lastIndexOf("disconnect"), names.join(", "));
    }
    assert.deepEqual(await exited, { code: 0, signal: null });
  } finally {
    await disconnectAll();
    await server.stop();
  }
});

// Socket.IO clients treat a disconnect the server sends as final: a restart closes the transport
// under them instead, so that every client, not only the web client, comes back.
test("clients come back by themselves to a server restarted after SIGTERM: python-socketio and socket.io-client", async () => {
  let server = await startServer();
  const python = [pythonClient(server.url, "websocket"), pythonClient(server.url, "polling")];
  try {
    const js = await connect(server.url, { reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1000 });
    for (const client of python) await client.next("connect");
    const port = server.port;
    const exited = new Promise((resolve) => server.proc.once("exit", resolve));
    server.proc.kill("SIGTERM");
    // Over a WebSocket the notice comes first; a long-polling client gets it only if it polls
    // again before its connection is cut.
    await python[0].next("server:restarting");
    for (const client of python) await client.next("disconnect");
    await waitFor(js, "disconnect");
    const beforeRestart = mark(js);
    await exited;
    server = await startServer({ port });
    for (const client of python) await client.next("connect");
    // Back in for real: the new server greets each with its session.
    for (const client of python) await client.next("session");
    await waitFor(js, "session", { after: beforeRestart });
  } finally {
    await Promise.all(python.map((client) => client.close()));
    await disconnectAll();
    await server.stop();
  }
});
