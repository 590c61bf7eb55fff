// Build, dev-server and unit-test configuration for the web client.
import { defineConfig } from "vitest/config";

const server = "http://localhost:3000";

export default defineConfig({
  // Absolute asset URLs: the same index.html is served at "/" and at "/r/<room>".
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // Two pages: the client, and the admin panel the server serves at /admin (paths from the
    // project root, web/).
    rollupOptions: {
      input: { main: "index.html", admin: "admin.html" },
    },
  },
  server: {
    // The Host header is passed on unchanged (no changeOrigin): the server accepts a browser's
    // Socket.IO connection when its Origin matches Host, which is the dev server's for both.
    proxy: {
      "/socket.io": { target: server, ws: true },
      "/ws": { target: server, ws: true },
      "/admin/api": { target: server },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
