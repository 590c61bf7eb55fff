// A network of its own for one browser: a namespace joined to this machine by a veth pair, whose
// link can be slowed (a `tbf` qdisc: a bandwidth limit; these kernels have no `netem`) or made to
// drop UDP (nftables). The browser runs inside it through a two-line launcher script
// (`ip netns exec <ns> chromium "$@"`) given to Playwright as its executable. Needs root, as the
// test command runs in CI.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CHROMIUM_PATH } from "./browser.mjs";

let made = 0;

function sh(...args) {
  return execFileSync(args[0], args.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
}

/**
 * Makes a namespace with one link to this machine: this machine is `hostAddress` on it, the
 * namespace `address`. Returns `{ hostAddress, address, launcher, limit, dropUdp, onlyPort, close }`.
 */
export function makeNetwork() {
  const n = (process.pid % 200) * 10 + made++;
  const ns = `noom-test-${process.pid}-${made}`;
  const [outside, inside] = [`nh${n}`, `nn${n}`];
  const subnet = `10.${200 + Math.floor(n / 250) % 50}.${n % 250}`;
  const hostAddress = `${subnet}.1`;
  const address = `${subnet}.2`;
  sh("ip", "netns", "add", ns);
  try {
    sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside);
    sh("ip", "link", "set", inside, "netns", ns);
    // No IPv6 on the link: its link-local addresses would come a second or two after it is up,
    // and a browser on this machine seeing addresses change fails what it is loading
    // (ERR_NETWORK_CHANGED).
    writeFileSync(`/proc/sys/net/ipv6/conf/${outside}/disable_ipv6`, "1");
    sh("ip", "netns", "exec", ns, "sh", "-c", `echo 1 > /proc/sys/net/ipv6/conf/${inside}/disable_ipv6`);
    sh("ip", "addr", "add", `${hostAddress}/24`, "dev", outside);
    sh("ip", "link", "set", outside, "up");
    sh("ip", "-n", ns, "addr", "add", `${address}/24`, "dev", inside);
    sh("ip", "-n", ns, "link", "set", inside, "up");
    sh("ip", "-n", ns, "link", "set", "lo", "up");
  } catch (error) {
    sh("ip", "netns", "del", ns);
    throw error;
  }
  const dir = mkdtempSync(path.join(tmpdir(), "noom-netns-"));
  const launcher = path.join(dir, "chromium");
  writeFileSync(launcher, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM_PATH} "$@"\n`, { mode: 0o755 });
  return {
    ns,
    hostAddress,
    address,
    launcher,
    /** Limits what reaches the namespace (the browser's download) to `kbit` a second. */
    limit(kbit) {
      sh("tc", "qdisc", "replace", "dev", outside, "root", "tbf", "rate", `${kbit}kbit`, "burst", "16kb", "latency", "100ms");
    },
    /** Drops every UDP datagram in and out of the namespace: its media path dies, its TCP lives. */
    dropUdp() {
      sh("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "noomtest");
      for (const hook of ["input", "output"]) {
        sh("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "noomtest", hook, `{ type filter hook ${hook} priority 0 ; }`);
        sh("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "noomtest", hook, "meta", "l4proto", "udp", "drop");
      }
    },
    /**
     * Drops every TCP and UDP packet between the namespace and this machine but those to or from
     * `port`: the server's page, signalling and media get through, a path to a browser outside
     * does not. With `{ tcpOnly: true }`, UDP to that port is dropped too (a network that lets
     * only HTTPS out).
     */
    onlyPort(port, { tcpOnly = false } = {}) {
      sh("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "noomtest");
      for (const [hook, dir, side] of [["input", "iifname", "sport"], ["output", "oifname", "dport"]]) {
        sh("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "noomtest", hook, `{ type filter hook ${hook} priority 0 ; }`);
        sh("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "noomtest", hook, dir, "lo", "accept");
        if (tcpOnly) sh("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "noomtest", hook, "meta", "l4proto", "udp", "drop");
        sh("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "noomtest", hook, "meta", "l4proto", "{ tcp, udp }", "th", side, "!=", String(port), "drop");
      }
    },
    close() {
      try {
        sh("ip", "netns", "del", ns);
      } catch {
        // Gone already.
      }
      try {
        sh("ip", "link", "del", outside);
      } catch {
        // Went with the namespace.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
