// Several Noom nodes sharing rooms through one Redis, for the cluster tests: start them (one after
// the other: the machines running the tests are small), wait until each says through /healthz that
// its Redis link is up, and poll for conditions that take a while to become true across nodes.
//
// clients.mjs's `waitFor` waits for an event a client received; `waitUntil` here polls any
// condition (a /healthz answer, a process state, what several clients saw) until it holds.
import { after, afterEach, before } from "node:test";
import { received, waitForDirectory, waitForRoomList } from "./clients.mjs";
import { startRedis } from "./redis.mjs";
import { startServer } from "./server.mjs";

/** Node labels, in the order `startCluster` starts them. */
export const NODE_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * Polls `predicate` (sync or async) every `interval` ms until it returns something truthy, and
 * resolves with that value. After `timeout` ms it rejects, saying `what` and the last value or
 * error the predicate produced.
 *
 * @template T
 * @param {() => T | Promise<T>} predicate
 * @param {number | { timeout?: number, interval?: number, what?: string }} [options] a timeout in ms, or options
 * @returns {Promise<T>}
 */
export async function waitUntil(predicate, options = {}) {
  const { timeout = 10000, interval = 100, what = "the condition" } = typeof options === "number" ? { timeout: options } : options;
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
      last = `last value: ${JSON.stringify(value)}`;
    } catch (error) {
      last = `last error: ${error?.message ?? error}`;
    }
    if (Date.now() >= deadline) throw new Error(`${what} did not hold within ${timeout} ms (${last})`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * GET /healthz. Resolves with `{ status, contentType, text, json }` (`json` is undefined when the
 * body is not JSON); rejects when the node does not answer at all.
 */
export async function healthz(url, { timeout = 2000 } = {}) {
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeout) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text, json };
}

/** The `redis` field of a node's /healthz answer, or undefined if it did not answer 200 with JSON. */
export async function redisStatus(url) {
  try {
    const h = await healthz(url);
    return h.status === 200 ? h.json?.redis : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until every node's /healthz says `redis: status` ("up", "down" or "off"). */
export async function waitForRedisStatus(nodes, status, { timeout = 20000 } = {}) {
  await Promise.all(
    [].concat(nodes).map((node) =>
      waitUntil(async () => (await redisStatus(node.url)) === status, {
        timeout,
        interval: 100,
        what: `node ${node.label ?? node.url}: /healthz says redis "${status}"`,
      }),
    ),
  );
}

/** True while the node's process runs (it has neither exited nor been killed). */
export function alive(node) {
  return node.proc.exitCode === null && node.proc.signalCode === null;
}

/**
 * Starts one node on `redisUrl` (`--redis-url`, then `args`). The handle is startServer's, with a
 * `label` and `kill()` (SIGKILL, resolves once the process is gone).
 */
export async function startNode(redisUrl, { args = [], label, ...options } = {}) {
  const name = label ? ["--node-name", `node-${label.toLowerCase()}`] : [];
  const node = await startServer({ ...options, args: ["--redis-url", redisUrl, ...name, ...args] });
  node.label = label ?? String(node.port);
  node.kill = () =>
    new Promise((resolve) => {
      if (!alive(node)) return resolve();
      node.proc.once("exit", () => resolve());
      node.proc.kill("SIGKILL");
    });
  return node;
}

/**
 * Starts `n` nodes on one Redis, one after the other, labelled A, B, C…, and waits until each says
 * its Redis link is up. On failure the nodes already started are stopped.
 */
export async function startCluster(redisUrl, n, { args = [], env, upTimeout = 20000 } = {}) {
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await startNode(redisUrl, { args, env, label: NODE_LABELS[i] }));
    await waitForRedisStatus(nodes, "up", { timeout: upTimeout });
  } catch (error) {
    await stopNodes(nodes);
    const logs = nodes.map((node) => `--- node ${node.label} ---\n${node.output().slice(-2000)}`).join("\n");
    throw new Error(`${error.message}${logs ? `\n${logs}` : ""}`);
  }
  return nodes;
}

/**
 * Stops every node still running (SIGTERM, then SIGKILL after 3 s). Killed nodes are skipped:
 * startServer's `stop()` would wait forever for a process that died of a signal.
 */
export async function stopNodes(nodes) {
  await Promise.all(nodes.filter(alive).map((node) => node.stop()));
}

/**
 * A Redis and `n` nodes on it for the enclosing test file (or suite): `handle.redis` and
 * `handle.nodes` are filled in once they run. `cleanup` runs after each test and before they stop.
 */
export function useCluster(n, { args = [], env, cleanup } = {}) {
  const handle = { redis: undefined, nodes: [] };
  before(async () => {
    handle.redis = await startRedis();
    handle.nodes = await startCluster(handle.redis.url, n, { args, env });
  });
  if (cleanup) afterEach(cleanup);
  after(async () => {
    await cleanup?.();
    await stopNodes(handle.nodes);
    await handle.redis?.close();
  });
  return handle;
}

/**
 * A Redis and `n` nodes for one test: `run({ redis, nodes })`, then everything is stopped whatever
 * happened (`cleanup` first, e.g. to disconnect the clients).
 */
export async function withCluster(n, { args = [], env, cleanup } = {}, run) {
  const redis = await startRedis();
  let nodes = [];
  try {
    nodes = await startCluster(redis.url, n, { args, env });
    return await run({ redis, nodes });
  } finally {
    await cleanup?.();
    await stopNodes(nodes);
    await redis.close();
  }
}

/**
 * clients.mjs's `waitForDirectory`, whose failure also says which directory the socket received
 * last (what a node showed instead).
 */
export async function expectDirectory(socket, directory, options = {}) {
  try {
    return await waitForDirectory(socket, directory, options);
  } catch (error) {
    const last = received(socket, "directory").at(-1)?.[0];
    throw new Error(`${error.message}; wanted ${JSON.stringify(directory)}, last received ${JSON.stringify(last)}`);
  }
}

/** clients.mjs's `waitForRoomList`, whose failure also says which room_change the socket received last. */
export async function expectRoomList(socket, names, options = {}) {
  try {
    return await waitForRoomList(socket, names, options);
  } catch (error) {
    const last = received(socket, "room_change").at(-1)?.[0];
    throw new Error(`${error.message}; wanted ${JSON.stringify([...names].sort())}, last received ${JSON.stringify(last)}`);
  }
}
