// Copies the Socket.IO client bundle into the build output, so the server can serve it at
// /socket.io/socket.io.js as the original Node server did (for seed front ends).
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(webRoot, "package.json"));

const pkgDir = path.dirname(require.resolve("socket.io-client/package.json"));
const source = path.join(pkgDir, "dist", "socket.io.min.js");
const targetDir = path.join(webRoot, "dist", "socket.io");
const target = path.join(targetDir, "socket.io.js");

if (!existsSync(source)) {
  console.error(`socket.io-client bundle not found: ${source}`);
  process.exit(1);
}
mkdirSync(targetDir, { recursive: true });
// The bundle's source map is not shipped, so its reference would only be a 404 in devtools.
const bundle = readFileSync(source, "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
writeFileSync(target, bundle);
console.log(`copied ${path.relative(webRoot, source)} -> ${path.relative(webRoot, target)}`);
