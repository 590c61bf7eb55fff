// HTTPS: a certificate made at start (--tls-self-signed), one from PEM files (--tls-cert,
// --tls-key) reloaded when the files change, the plain-HTTP redirect (--http-port), and the
// configuration errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, statSync, utimesSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { noomBin, startServer } from "../support/server.mjs";
import { ack, connectNoom, disconnectAll, noomClient, roomName, waitFor } from "../support/clients.mjs";
import { waitUntil } from "../support/cluster.mjs";

const dir = mkdtempSync(path.join(os.tmpdir(), "noom-tls-"));

/** Makes a certificate and key for `name` with openssl; returns their PEM texts. */
function makeCertificate(name) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`],
  { stdio: "ignore" });
  return { cert: path.basename(cert), key: path.basename(key) };
}

/** The certificate a TLS server at `url` presents. */
function servedCertificate(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, servername: "localhost" }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      resolve(cert);
    });
    socket.once("error", reject);
  });
}

function get(url) {
  return new Promise((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false }, (res) => {
      let body = "";
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).once("error", reject);
  });
}

test("--tls-self-signed serves HTTPS and Socket.IO over it, and prints how to trust the certificate", async () => {
  const server = await startServer({ args: ["--tls-self-signed", "localhost,127.0.0.1,noom.lan"] });
  try {
    assert.match(server.url, /^https:\/\//);
    const served = await servedCertificate(server.url);
    assert.match(served.subjectAltName, /DNS:localhost/);
    assert.match(served.subjectAltName, /DNS:noom\.lan/);
    // What it printed: the names, the fingerprint of the very certificate served, and the PEM.
    const output = server.output();
    assert.match(output, /self-signed certificate for localhost, 127\.0\.0\.1, noom\.lan/);
    assert.ok(output.includes(`SHA-256 fingerprint: ${served.fingerprint256}`), output);
    const pem = output.slice(output.indexOf("-----BEGIN CERTIFICATE-----"), output.indexOf("-----END CERTIFICATE-----") + 25);
    assert.equal(new X509Certificate(pem).fingerprint256, served.fingerprint256);

    const page = await get(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers["content-security-policy"], /default-src 'self'/);

    const room = roomName("secure");
    const { socket: ann } = await noomClient(server.url, "Ann", room, { rejectUnauthorized: false });
    const bo = await connectNoom(server.url, { rejectUnauthorized: false });
    await ack(bo, "room:join", { room });
    await ack(bo, "chat:send", { room, text: "over TLS" });
    assert.equal((await waitFor(ann, "chat:message"))[0].text, "over TLS");
  } finally {
    await disconnectAll();
    await server.stop();
  }
});

test("a certificate from files is reloaded when they change; a bad pair keeps the previous one", async () => {
  const first = makeCertificate("first.example");
  const second = makeCertificate("second.example");
  const cert = path.join(dir, "live.crt");
  const key = path.join(dir, "live.key");
  const use = ({ cert: c, key: k }) => {
    copyFileSync(path.join(dir, c), cert);
    copyFileSync(path.join(dir, k), key);
  };
  use(first);
  const server = await startServer({ args: ["--tls-cert", cert, "--tls-key", key], env: { RUST_LOG: "info" } });
  try {
    assert.match((await servedCertificate(server.url)).subject, /CN=first\.example/);
    use(second);
    await waitUntil(async () => /CN=second\.example/.test((await servedCertificate(server.url)).subject), {
      timeout: 15000,
      what: "the renewed certificate served",
    });
    // A broken renewal: the key does not parse. The server keeps serving the last good pair.
    writeFileSync(key, "not a key");
    await waitUntil(() => /certificate not reloaded/.test(server.output()), { timeout: 15000, what: "the failed reload logged" });
    assert.match((await servedCertificate(server.url)).subject, /CN=second\.example/);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
  } finally {
    await server.stop();
  }
});

test("--http-port redirects plain HTTP to the HTTPS address, path and query kept", async () => {
  const server = await startServer({ args: ["--tls-self-signed", "localhost", "--http-port", "0"] });
  try {
    const plain = server.output().match(/redirects (http:\/\/[^\s]+) to HTTPS/)[1];
    const res = await fetch(`${plain}/r/night%20shift?x=1`, { redirect: "manual" });
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("location"), `https://127.0.0.1:${server.port}/r/night%20shift?x=1`);
  } finally {
    await server.stop();
  }
});

test("the self-signed certificate is kept in --state-dir: the same across restarts, a new one for other names", async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), "noom-state-"));
  const served = async (names) => {
    const server = await startServer({ args: ["--tls-self-signed", names, "--state-dir", state] });
    try {
      return { fingerprint: (await servedCertificate(server.url)).fingerprint256, output: server.output() };
    } finally {
      await server.stop();
    }
  };
  const first = await served("localhost,noom.lan");
  assert.match(first.output, /made now and kept in .*noom-state-/);
  const again = await served("localhost,noom.lan");
  assert.equal(again.fingerprint, first.fingerprint, "the one trusted before");
  assert.match(again.output, /the one kept in/);
  const other = await served("localhost,noom.home");
  assert.notEqual(other.fingerprint, first.fingerprint, "other names, another certificate");
});

test("--acme-webroot: the HTTP port serves ACME's challenge files, and redirects everything else", async () => {
  const webroot = mkdtempSync(path.join(os.tmpdir(), "noom-acme-"));
  const challenges = path.join(webroot, ".well-known/acme-challenge");
  mkdirSync(challenges, { recursive: true });
  writeFileSync(path.join(challenges, "Tk3n_-abc"), "Tk3n_-abc.thumbprint");
  writeFileSync(path.join(webroot, "secret.txt"), "not for anyone");
  const server = await startServer({ args: ["--tls-self-signed", "localhost", "--http-port", "0", "--acme-webroot", webroot] });
  try {
    const plain = server.output().match(/redirects (http:\/\/[^\s]+) to HTTPS/)[1];
    const challenge = await fetch(`${plain}/.well-known/acme-challenge/Tk3n_-abc`, { redirect: "manual" });
    assert.equal(challenge.status, 200);
    assert.equal(await challenge.text(), "Tk3n_-abc.thumbprint");
    for (const token of ["missing", "..%2Fsecret.txt", "a.b"]) {
      const res = await fetch(`${plain}/.well-known/acme-challenge/${token}`, { redirect: "manual" });
      assert.equal(res.status, 404, token);
    }
    const page = await fetch(`${plain}/r/room`, { redirect: "manual" });
    assert.equal(page.status, 308, "everything else goes to HTTPS");
  } finally {
    await server.stop();
  }
});

test("SIGHUP reads the certificate files again, even when nothing shows they changed", async () => {
  const cert = path.join(dir, "hup.crt");
  const key = path.join(dir, "hup.key");
  const first = makeCertificate("hup-one.example");
  // A second pair of the same sizes, put in place with the first's times: the change the server
  // watches for cannot tell, so only the signal can make it read them. Each file of a pair is
  // made as long as the other with newlines after its last line, which PEM readers skip (made
  // afresh, they differed by a byte or two now and then).
  const second = makeCertificate("hup-two.example");
  for (const kind of ["cert", "key"]) {
    const files = [first[kind], second[kind]].map((name) => path.join(dir, name));
    const sizes = files.map((file) => statSync(file).size);
    const longest = Math.max(...sizes);
    files.forEach((file, at) => appendFileSync(file, "\n".repeat(longest - sizes[at])));
  }
  const same = (a, b) => statSync(path.join(dir, a)).size === statSync(path.join(dir, b)).size;
  assert.ok(same(first.cert, second.cert) && same(first.key, second.key), "a second pair of the same sizes");
  // A whole second, which file times keep exactly.
  const then = 1_700_000_000;
  const put = ({ cert: c, key: k }) => {
    copyFileSync(path.join(dir, c), cert);
    copyFileSync(path.join(dir, k), key);
    utimesSync(cert, then, then);
    utimesSync(key, then, then);
  };
  put(first);
  const server = await startServer({ args: ["--tls-cert", cert, "--tls-key", key], env: { RUST_LOG: "info" } });
  try {
    assert.match((await servedCertificate(server.url)).subject, /CN=hup-one\.example/);
    put(second);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.match((await servedCertificate(server.url)).subject, /CN=hup-one\.example/, "unnoticed without the signal");
    server.proc.kill("SIGHUP");
    await waitUntil(() => /certificate reloaded/.test(server.output()), { what: "the reload", timeout: 5000 });
    assert.match((await servedCertificate(server.url)).subject, /CN=hup-two\.example/);
  } finally {
    await server.stop();
  }
});

test("HTTPS options that do not fit stop start-up with a message naming them", () => {
  const { cert, key } = makeCertificate("errors.example");
  const cases = [
    [["--tls-cert", path.join(dir, cert)], /--tls-cert and --tls-key go together/],
    [["--tls-self-signed", "localhost", "--tls-cert", path.join(dir, cert), "--tls-key", path.join(dir, key)], /two ways to HTTPS/],
    [["--http-port", "8080"], /--http-port .* needs --tls-cert or --tls-self-signed/],
    [["--tls-self-signed", "localhost", "--acme-webroot", dir], /--acme-webroot .* needs --http-port/],
    [["--tls-cert", path.join(dir, "missing.crt"), "--tls-key", path.join(dir, key)], /--tls-cert .*missing\.crt/],
  ];
  for (const [args, message] of cases) {
    const run = spawnSync(noomBin, ["--port", "0", ...args], { encoding: "utf8", timeout: 10000 });
    assert.notEqual(run.status, 0, args.join(" "));
    assert.match(run.stderr, message, args.join(" "));
  }
});
