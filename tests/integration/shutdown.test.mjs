// Shutdown on SIGTERM: connected clients are told the server is restarting, then their connections
// close, and the process exits cleanly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { connect, disconnectAll, noomClient, roomName, waitFor } from "../support/clients.mjs";

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
