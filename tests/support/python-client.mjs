// A python-socketio client (tests/support/python-client.py) run as a child process: what it
// prints, one JSON line per event, is recorded and can be waited for.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "python-client.py");

/**
 * Starts a python-socketio client of `url` (Debian's python3-socketio, under Debian's python).
 * `events` lists what it printed so far; `next(event)` waits for the next one of that name not
 * yet waited for; `close()` disconnects it and waits for it to exit.
 */
export function pythonClient(url, transport = "websocket") {
  const proc = spawn("/usr/bin/python3", [script, url, transport], { stdio: ["pipe", "pipe", "pipe"] });
  const events = [];
  const waiters = [];
  let taken = 0;
  let stderr = "";
  let buffered = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  proc.stdout.on("data", (d) => {
    buffered += d;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      events.push(JSON.parse(buffered.slice(0, end)));
      buffered = buffered.slice(end + 1);
      for (const waiter of [...waiters]) waiter();
    }
  });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  return {
    events,
    /** Resolves with the next event named `name` after those already waited for. */
    next(name, timeout = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const at = events.findIndex((e, i) => i >= taken && e.event === name);
          if (at < 0) return false;
          taken = at + 1;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve(events[at]);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`python client (${transport}): no "${name}" in ${timeout} ms; printed ${JSON.stringify(events)}\n${stderr}`));
        }, timeout);
        waiters.push(check);
        check();
      });
    },
    async close() {
      proc.stdin.end();
      setTimeout(() => proc.kill("SIGKILL"), 3000).unref();
      await exited;
    },
  };
}
