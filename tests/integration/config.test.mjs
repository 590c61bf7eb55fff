// Configuration: flags, environment and a TOML file (--config), their precedence, the effective
// values (--print-config), and start-up refusing a bad file with a message naming what is wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { noomBin, startServer } from "../support/server.mjs";
import { ack, disconnectAll, noomClient, roomName } from "../support/clients.mjs";

const dir = mkdtempSync(path.join(os.tmpdir(), "noom-config-"));
let files = 0;

function configFile(text) {
  const file = path.join(dir, `noom-${++files}.toml`);
  writeFileSync(file, text);
  return file;
}

/** Runs noom to completion (it exits for --print-config and for errors). */
function noom(args, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("NOOM_")));
  const run = spawnSync(noomBin, args, { env: { ...clean, ...env }, encoding: "utf8", timeout: 10000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The effective configuration, as --print-config gives it: key to raw TOML value. */
function effective(args, env) {
  const run = noom([...args, "--print-config"], env);
  assert.equal(run.code, 0, run.stderr);
  return Object.fromEntries(run.stdout.trim().split("\n").map((line) => line.split(" = ")));
}

test("--print-config shows every option's value in effect, the defaults included, secrets hidden", () => {
  const config = effective(["--turn-secret", "very secret indeed", "--admin-token", "an-admin-token-0123456789"]);
  assert.equal(config.calls, '"sfu"');
  assert.equal(config["media-address"], "[]", "advertised: the host's own address");
  assert.equal(config.port, "3000");
  assert.equal(config["stun-urls"], '["stun:stun.l.google.com:19302"]');
  assert.equal(config["turn-secret"], '"(hidden)"');
  assert.equal(config["admin-token"], '"(hidden)"');
  assert.ok(!JSON.stringify(config).includes("very secret"));
  assert.ok(!JSON.stringify(config).includes("an-admin-token"));
});

test("what --print-config prints loads back unchanged, the defaults and every option set alike", () => {
  const printed = (args, env) => {
    const run = noom([...args, "--print-config"], env);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout;
  };
  const defaults = printed([]);
  assert.equal(printed(["--config", configFile(defaults)]), defaults, "the defaults");
  const set = printed([
    "--host", "0.0.0.0", "--port", "8443", "--public-url", "https://meet.example.com",
    "--allowed-origins", "https://app.example.com,http://localhost:8080", "--trusted-proxies", "",
    "--media-address", "203.0.113.7,2001:db8::7", "--stun-urls", "", "--turn", "--call-size", "12",
    "--tls-self-signed", "meet.example.com", "--http-port", "8080", "--log-format", "json",
  ]);
  assert.match(set, /^trusted-proxies = \[\]$/m, "none");
  assert.match(set, /^turn = true$/m);
  assert.equal(printed(["--config", configFile(set)]), set, "every option set");
});

test("secrets never print, a password in --redis-url included, and their placeholder is refused as a secret", () => {
  const config = effective(["--redis-url", "redis://noom:s3cret-pass@10.0.0.5:6379/0"]);
  assert.equal(config["redis-url"], '"redis://noom:(hidden)@10.0.0.5:6379/0"');
  assert.equal(effective(["--redis-url", "redis://10.0.0.5:6379"])["redis-url"], '"redis://10.0.0.5:6379"', "no password, nothing hidden");
  const cases = [
    ['turn-secret = "(hidden)"\nturn-urls = ["turn:turn.example.com:3478"]\n', /--turn-secret: "\(hidden\)" is what --print-config shows/],
    ['admin-token = "(hidden)"\n', /--admin-token: "\(hidden\)" is what --print-config shows/],
    ['redis-url = "redis://noom:(hidden)@10.0.0.5:6379"\n', /--redis-url's password: "\(hidden\)" is what --print-config shows/],
  ];
  for (const [text, message] of cases) {
    const run = noom(["--config", configFile(text)]);
    assert.equal(run.code, 2, text);
    assert.match(run.stderr, message, text);
  }
});

test("an empty list gives none: an empty --tls-self-signed, in the file or the environment, leaves HTTPS off", async () => {
  assert.equal(effective(["--config", configFile("tls-self-signed = []\n")])["tls-self-signed"], "[]");
  assert.equal(effective([], { NOOM_TLS_SELF_SIGNED: "" })["tls-self-signed"], "[]");
  assert.equal(effective([], { NOOM_STUN_URLS: "" })["stun-urls"], "[]");
  for (const options of [{ args: ["--config", configFile("tls-self-signed = []\n")] }, { env: { NOOM_TLS_SELF_SIGNED: "" } }]) {
    const server = await startServer(options);
    try {
      assert.match(server.url, /^http:\/\//, JSON.stringify(options));
    } finally {
      await server.stop();
    }
  }
});

test("a flag wins over the environment, which wins over the file, which wins over the default", () => {
  const file = configFile('call-size = 8\nhistory-size = 20\nchat-burst = 4\nstun-urls = ["stun:a.example:3478", "stun:b.example:3478"]\n');
  const config = effective(["--config", file, "--call-size", "10"], { NOOM_CALL_SIZE: "9", NOOM_HISTORY_SIZE: "30" });
  assert.equal(config["call-size"], "10", "the flag");
  assert.equal(config["history-size"], "30", "the environment");
  assert.equal(config["chat-burst"], "4", "the file");
  assert.equal(config["stun-urls"], '["stun:a.example:3478", "stun:b.example:3478"]', "a list from the file");
  assert.equal(config["ping-interval"], "25", "the default");
  // NOOM_CONFIG names the file too.
  assert.equal(effective([], { NOOM_CONFIG: file })["chat-burst"], "4");
});

test("a bad file stops start-up with a message naming the file and what is wrong", () => {
  const cases = [
    ["call-size = 101\n", /--config .*: .*--call-size.*101 is not in 2\.\.=100/],
    ["cal-size = 8\n", /--config .*: "cal-size" is not an option/],
    ["call-size = \n", /--config .*noom-\d+\.toml: /],
    ["call-size = { a = 1 }\n", /"call-size" must be a string, a number or a list of strings/],
    ['ice-transport-policy = "relay"\n', /--ice-transport-policy relay needs --turn-urls/],
    ["config = \"other.toml\"\n", /"config" is not an option/],
    ['admin-token = "short"\n', /--admin-token must be at least 16 characters/],
    ['turn-secret = "s3cre"\nturn-urls = ["turn:turn.example.com:3478"]\n', /--turn-secret must be at least 16 characters/],
    ['admin-token = "sixteen chars and spaces"\n', /--admin-token must be printable ASCII without spaces/],
    ["call-size = 8\nchat-burst = 4\ncall-size = 9\n", /--config .*: line 3: duplicate key/],
    ['turn = "yes"\n', /"turn" must be true or false/],
  ];
  for (const [text, message] of cases) {
    const run = noom(["--config", configFile(text)]);
    assert.equal(run.code, 2, `${text}: exit code`);
    assert.match(run.stderr, message, text);
    assert.match(run.stderr, /^noom: invalid configuration: /);
  }
  const missing = noom(["--config", path.join(dir, "missing.toml")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing\.toml: No such file/);
});

test("a server started from a file runs with its values", async () => {
  const file = configFile('call-size = 2\ndirectory-interval-ms = 100\n');
  const server = await startServer({ args: ["--config", file] });
  try {
    const room = roomName("configured");
    const { socket, joined } = await noomClient(server.url, "Ann", room);
    assert.equal(joined.callLimit, 2);
    assert.equal((await ack(socket, "call:join", { room })).limit, 2);
  } finally {
    await disconnectAll();
    await server.stop();
  }
});
