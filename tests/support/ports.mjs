// Ports on loopback for the servers the tests start: a free one, and waiting for one to open.
import dgram from "node:dgram";
import net from "node:net";

/** Resolves to a TCP port on 127.0.0.1 that is free right now. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeout` ms. */
export async function waitForPort(port, { timeout = 10000, what = "the server" } = {}) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => { socket.destroy(); resolve(true); });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port} within ${timeout} ms`);
}

/** Resolves to a port that is free for both UDP and TCP on 127.0.0.1 right now. */
export async function freeUdpAndTcpPort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = net.createServer();
    await new Promise((resolve, reject) => tcp.once("error", reject).listen(0, "127.0.0.1", resolve));
    const { port } = tcp.address();
    const udp = dgram.createSocket("udp4");
    const udpFree = await new Promise((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise((resolve) => udp.close(() => resolve()));
    await new Promise((resolve) => tcp.close(() => resolve()));
    if (udpFree) return port;
  }
  throw new Error("no port free for both UDP and TCP");
}
