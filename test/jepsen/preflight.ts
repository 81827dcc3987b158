// Whether this machine can run the namespace fault tests, and if not, exactly what is missing,
// so a test can skip with that sentence instead of failing halfway through a set-up.

import { readFileSync } from "node:fs";

/** Whether this machine can run namespace tests; `why` is the skip message when it cannot. */
export function namespacesAvailable(): { ok: boolean; why: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: "network namespace tests need root (ip netns, iptables)" };
  const capabilities = missingCapabilities();
  if (capabilities) return { ok: false, why: `network namespace tests need ${capabilities} (a container without --privileged?)` };
  const ip = trySync(["ip", "netns", "list"]);
  if (ip) return { ok: false, why: `\`ip netns list\` failed: ${ip}` };
  const iptables = trySync(["iptables", "--version"]);
  if (iptables) return { ok: false, why: `iptables is missing or broken: ${iptables}` };
  return { ok: true, why: "" };
}

/** CAP_NET_ADMIN (bit 12) builds links and rules; CAP_SYS_ADMIN (bit 21) mounts namespaces. */
function missingCapabilities(): string | undefined {
  const status = readFileSync("/proc/self/status", "utf8");
  const effective = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? "0"}`);
  const required: [bigint, string][] = [[12n, "CAP_NET_ADMIN"], [21n, "CAP_SYS_ADMIN"]];
  const missing = required.filter(([bit]) => ((effective >> bit) & 1n) === 0n).map(([, name]) => name);
  return missing.length ? missing.join(" and ") : undefined;
}

function trySync(argv: string[]): string | undefined {
  try {
    const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
    return r.exitCode === 0 ? undefined : `exit ${r.exitCode}: ${r.stderr.toString().trim()}`;
  } catch (err) {
    return String(err);
  }
}
