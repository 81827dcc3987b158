// Starts a throwaway single-member etcd on free loopback ports for tests that
// need the real thing, and removes its data when stopped.

import type { Subprocess } from "bun";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ETCD_DEBIAN_PATH = "/usr/bin/etcd";
const ETCD_HEALTHY_TIMEOUT_MS = 15_000;
const ETCD_HEALTH_POLL_MS = 25;
const ETCD_HEALTH_REQUEST_TIMEOUT_MS = 500;

export interface EtcdServer {
  endpoint: string;
  proc: Subprocess<"ignore", "ignore", "pipe">;
  /** Kills etcd, waits for it to exit and removes its data dir. */
  stop(): Promise<void>;
  /** SIGSTOP: etcd holds its sockets open but answers nothing, like a hung host. */
  pause(): void;
  resume(): void;
}

/**
 * SIGSTOP, then wait until the kernel shows every thread stopped ("T" in each /proc/PID/task/TID/stat):
 * a thread of etcd's already running on the other core can otherwise still answer a
 * request sent just after the kill (seen once under load: a keep-alive answered in 1 ms).
 */
function stopped(pid: number): void {
  process.kill(pid, "SIGSTOP");
  const state = (tid: string) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  };
  for (let i = 0; i < 1_000; i++) {
    if (readdirSync(`/proc/${pid}/task`).every((tid) => state(tid) === "T")) return;
    Bun.sleepSync(1);
  }
  throw new Error(`etcd (pid ${pid}) did not stop within 1 s of SIGSTOP`);
}

// The same probe as test/e2e/harness.ts freePort(), copied so unit tests do not load the e2e harness and the SDK.
function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

function etcdPath(): string | undefined {
  if (existsSync(ETCD_DEBIAN_PATH)) return ETCD_DEBIAN_PATH;
  return Bun.which("etcd") ?? undefined;
}

/** For `test.skipIf(!etcdAvailable())`: the etcd tests need an etcd binary (Debian: apt-get install etcd-server). */
export function etcdAvailable(): boolean {
  return etcdPath() !== undefined;
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(ETCD_HEALTH_REQUEST_TIMEOUT_MS) });
    return ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

export async function startEtcd(): Promise<EtcdServer> {
  const bin = etcdPath();
  if (!bin) throw new Error("etcd is not installed (looked for /usr/bin/etcd and etcd on PATH)");
  const dataDir = await mkdtemp(join(tmpdir(), "etcd-test-"));
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  // Short heartbeat and election timeout: etcd's minimum lease TTL derives from
  // them, and with the defaults a 1 s lease would be granted as 2 s.
  const proc = Bun.spawn(
    [bin, "--name", "default", "--data-dir", dataDir,
      "--listen-client-urls", client, "--advertise-client-urls", client,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`,
      "--heartbeat-interval", "25", "--election-timeout", "250"],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  // Keep the log (etcd writes it to stderr) for the error message if it never gets healthy.
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr) log = (log + new TextDecoder().decode(chunk)).slice(-4000);
  })();

  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    await rm(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + ETCD_HEALTHY_TIMEOUT_MS;
  while (!(await healthy(client))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`etcd at ${client} not healthy within ${ETCD_HEALTHY_TIMEOUT_MS} ms (exit code ${proc.exitCode}); log tail:\n${log}`);
    }
    await Bun.sleep(ETCD_HEALTH_POLL_MS);
  }
  return { endpoint: client, proc, stop, pause: () => stopped(proc.pid), resume: () => proc.kill("SIGCONT") };
}
