// A tiny static file server for front ends served from an origin other than Noom's own.
// Text files may hold placeholders (`__NAME__`) that are replaced, when served, by the values
// given to `setVars`.
import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/**
 * Serves the files of `dir` on 127.0.0.1 on a free port ("/" is index.html).
 *
 * @param {string} dir
 * @returns {Promise<{ origin: string, port: number, setVars: (vars: Record<string,string>) => void, stop: () => Promise<void> }>}
 */
export async function serveStatic(dir) {
  let vars = {};
  const server = http.createServer(async (req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    const name = pathname === "/" ? "index.html" : decodeURIComponent(pathname.slice(1));
    const file = path.join(dir, name);
    const type = TYPES[path.extname(file)];
    if (!file.startsWith(dir + path.sep) || !type) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    try {
      let text = await readFile(file, "utf8");
      for (const [key, value] of Object.entries(vars)) text = text.replaceAll(`__${key}__`, value);
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(text);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    setVars: (next) => { vars = { ...next }; },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
