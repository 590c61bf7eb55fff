// deploy/Dockerfile's build, without a container engine: its server stage's sources are laid out
// in an empty directory exactly as the Dockerfile copies them (the build context filtered by
// .dockerignore, each COPY to its place), the web client it builds in its first stage put where
// that stage's COPY puts it, and the stage's cargo command run there. A file the build needs and
// the Dockerfile does not copy (a new workspace member, say) fails here as it would in `docker
// build`. The build is a debug one, with a target directory of its own, for time: what is checked
// is the context, not the profile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dockerfile = readFileSync(path.join(root, "deploy/Dockerfile"), "utf8");

/** The Dockerfile's instructions of one stage (`FROM … AS name`), continuation lines joined. */
function stage(name) {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const start = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`, "i").test(l));
  assert.ok(start >= 0, `a stage named ${name}`);
  const end = lines.findIndex((l, i) => i > start && /^FROM /i.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).map((l) => {
    const [, instruction, rest] = l.match(/^(\w+)\s+(.*)$/);
    return { instruction: instruction.toUpperCase(), args: rest.split(/\s+/) };
  });
}

/** Whether .dockerignore leaves `relative` (a path in the context, `/`-separated) out. */
const ignored = (() => {
  const patterns = readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\/$/, ""));
  for (const p of patterns) assert.match(p, /^(\*\*\/)?[\w.\-/]+$/, `a pattern this test reads: ${p}`);
  const under = (relative, prefix) => relative === prefix || relative.startsWith(`${prefix}/`);
  return (relative) => patterns.some((p) => {
    if (!p.startsWith("**/")) return under(relative, p);
    // At any depth.
    const parts = relative.split("/");
    return parts.some((_, i) => under(parts.slice(i).join("/"), p.slice(3)));
  });
})();

test("the Dockerfile's server stage builds from exactly what it copies", { timeout: 20 * 60_000 }, (t) => {
  const steps = stage("server");
  const context = mkdtempSync(path.join(os.tmpdir(), "noom-docker-context-"));
  const env = {};
  let build;
  try {
    for (const { instruction, args } of steps) {
      if (instruction === "WORKDIR") assert.equal(args[0], "/src", "the paths below are relative to /src");
      // A build argument's default, as `docker build` without --build-arg takes it.
      if (instruction === "ARG") for (const pair of args) { const [k, v = ""] = pair.split("="); env[k] = v; }
      if (instruction === "ENV") {
        for (const pair of args) {
          const [k, v] = pair.split("=");
          env[k] = v.replace(/\$\{(\w+)\}/g, (_, name) => env[name] ?? "");
        }
      }
      if (instruction === "RUN") build = args;
      if (instruction !== "COPY") continue;
      const from = args.find((a) => a.startsWith("--from="));
      const [sources, destination] = [args.filter((a) => !a.startsWith("--")).slice(0, -1), args.at(-1)];
      for (const source of sources) {
        // The web stage's output: the client this checkout's build made (build.rs runs npm).
        const origin = from ? path.join(root, source.replace(/^\/src\//, "")) : path.join(root, source);
        assert.ok(existsSync(origin), `${source} exists`);
        const target = path.join(context, destination.endsWith("/") && !source.endsWith("/") ? path.join(destination, path.basename(source)) : destination);
        cpSync(origin, target, {
          recursive: true,
          filter: (file) => from || !ignored(path.relative(root, file).split(path.sep).join("/")),
        });
      }
    }
    assert.deepEqual(build?.slice(0, 2), ["cargo", "build"], "the stage builds with cargo");
    const args = build.slice(1).filter((a) => a !== "--release");
    t.diagnostic(`cargo ${args.join(" ")} in a directory holding what the Dockerfile copies`);
    const run = spawnSync("cargo", args, {
      cwd: context,
      env: { ...process.env, ...env, CARGO_TARGET_DIR: path.join(root, "target/dockerfile-context") },
      encoding: "utf8",
    });
    assert.equal(run.status, 0, `cargo failed in the Dockerfile's context:\n${run.stderr.slice(-4000)}`);
    const binary = path.join(root, "target/dockerfile-context/debug/noom");
    const version = spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout.trim();
    assert.equal(version, `noom ${version.split(" ")[1]} (${env.NOOM_REVISION})`, "the revision the build was given");
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
});
