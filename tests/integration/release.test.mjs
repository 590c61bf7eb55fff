// scripts/release, on a debug build (the release profile only optimises the same code): an
// archive holding the binary, the README, the CHANGELOG and the deploy files, its SHA-256 checksum
// that `sha256sum -c` accepts, and a binary that names the commit it was built from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("scripts/release makes an archive, its checksum, and a binary that names its revision", { timeout: 20 * 60_000 }, () => {
  const out = mkdtempSync(path.join(os.tmpdir(), "noom-release-"));
  try {
    const run = spawnSync(path.join(root, "scripts/release"), ["--debug", "--out", out], { cwd: root, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr.slice(-4000));
    const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const archive = readdirSync(out).find((f) => f.endsWith(".tar.gz"));
    assert.match(archive, new RegExp(`^noom-\\d+\\.\\d+\\.\\d+-${commit}(\\+changes)?-x86_64-linux-gnu\\.tar\\.gz$`));
    assert.equal(spawnSync("sha256sum", ["-c", `${archive}.sha256`], { cwd: out }).status, 0, "the checksum holds");
    const files = execFileSync("tar", ["-tzf", path.join(out, archive)], { encoding: "utf8" }).split("\n");
    const top = archive.replace(/\.tar\.gz$/, "");
    for (const file of ["noom", "README.md", "CHANGELOG.md", "deploy/Dockerfile", "deploy/noom.service", "deploy/nginx/noom-cluster.conf", "deploy/coturn/turnserver.conf"]) {
      assert.ok(files.includes(`${top}/${file}`), `${file} in the archive`);
    }
    execFileSync("tar", ["-xzf", path.join(out, archive), "-C", out]);
    const version = execFileSync(path.join(out, top, "noom"), ["--version"], { encoding: "utf8" }).trim();
    assert.match(version, new RegExp(`^noom \\d+\\.\\d+\\.\\d+ \\(${commit}(\\+changes)?\\)$`));
    assert.match(run.stdout, /needs glibc \d+\.\d+ or later/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
