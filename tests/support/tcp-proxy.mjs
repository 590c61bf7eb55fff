// A TCP proxy in front of a server, to cut connections the way a network drop does: the bytes
// stop flowing but neither end is told, so the server only learns of it from a timeout.
import net from "node:net";

/**
 * Forwards 127.0.0.1:<free port> to 127.0.0.1:`targetPort`.
 *
 * @param {number} targetPort
 * @returns {Promise<{ port: number, url: string, blackhole: () => void, stop: () => Promise<void> }>}
 */
export async function startProxy(targetPort) {
  const live = new Set();
  const held = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    const pair = { client, upstream, websocket: false };
    live.add(pair);
    client.once("data", (chunk) => {
      pair.websocket = /^upgrade:\s*websocket/im.test(chunk.toString("latin1"));
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      live.delete(pair);
      if (!held.has(pair)) {
        client.destroy();
        upstream.destroy();
      }
    };
    client.on("close", drop);
    upstream.on("close", drop);
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /**
     * Every WebSocket connection open now goes silent in both directions, and stays open:
     * whatever either end sends (a close included) is swallowed. Other connections (idle HTTP
     * keep-alive ones) are closed, as a browser does on a network change. New connections go
     * through as before.
     */
    blackhole() {
      for (const pair of live) {
        if (!pair.websocket) {
          pair.client.destroy();
          pair.upstream.destroy();
          continue;
        }
        held.add(pair);
        pair.client.unpipe(pair.upstream);
        pair.upstream.unpipe(pair.client);
        for (const socket of [pair.client, pair.upstream]) {
          socket.removeAllListeners("data");
          socket.on("data", () => {});
          socket.removeAllListeners("end");
          socket.on("end", () => {});
          socket.removeAllListeners("close");
        }
      }
    },
    stop() {
      for (const pair of [...live, ...held]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
