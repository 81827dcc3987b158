// End-to-end benchmark from the compiled binaries: starts a coordinator and a
// worker (optionally a router in front), runs the client several times per
// concurrency level, and prints the median of each figure. Needs `bun run build`.
//
//   bun bench/e2e.ts [--runs 5] [--tasks 200000] [--concurrency 64,512] [--type noop] [--threads 2] [--router] [--replicas 2]
// --replicas N: one shard of N coordinators (primary + backups, synchronous replication).
// --data-dir: coordinators keep a write-ahead log (fsync per group commit) in a temp dir;
// under each row, the primary's log: entries per fsync and fsync time over that row's runs.
// --tls: every link over TLS (a throwaway CA from scripts/make-test-ca.sh); --tokens: token auth on.
// --etcd: the replicas form an etcd-led group (a local etcd with 1 s leases, started here)
// instead of naming each other with --peer; router and worker find them through etcd.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { WalStats } from "../src/protocol/messages.ts";
import { Cluster, parseReport, waitFor, type ClusterSecurity, type Started } from "../test/e2e/harness.ts";
import { startEtcd, type EtcdServer } from "../test/support/etcd-server.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    tasks: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "64,512" },
    type: { type: "string", default: "noop" },
    threads: { type: "string", default: "2" },
    router: { type: "boolean", default: false },
    replicas: { type: "string", default: "1" },
    "data-dir": { type: "boolean", default: false },
    tls: { type: "boolean", default: false },
    tokens: { type: "boolean", default: false },
    etcd: { type: "boolean", default: false },
  },
});

/** Flags for --tls and --tokens: a throwaway CA and tokens file in a temp dir. */
function security(): ClusterSecurity {
  const s: ClusterSecurity = { serverArgs: [], workerArgs: [], clientArgs: [], sdk: {} };
  const dir = mkdtempSync(join(tmpdir(), "bench-security-"));
  if (values.tokens) {
    const tokens = { replica: "bench-replica-token-0123456789", worker: "bench-worker-token-0123456789", submit: "bench-submit-token-0123456789" };
    writeFileSync(join(dir, "tokens"), Object.entries(tokens).map(([role, token]) => `${role} ${token}`).join("\n"));
    s.serverArgs.push("--tokens", join(dir, "tokens"));
    s.workerArgs.push("--token", tokens.worker);
    s.clientArgs.push("--token", tokens.submit);
    s.sdk.token = tokens.submit;
  }
  if (values.tls) {
    const made = Bun.spawnSync(["bash", join(import.meta.dir, "../scripts/make-test-ca.sh"), dir]);
    if (made.exitCode !== 0) throw new Error(`make-test-ca.sh: ${made.stderr.toString()}`);
    s.serverArgs.push("--tls-cert", join(dir, "server.pem"), "--tls-key", join(dir, "server-key.pem"), "--tls-ca", join(dir, "ca.pem"));
    s.workerArgs.push("--tls-ca", join(dir, "ca.pem"));
    s.clientArgs.push("--tls-ca", join(dir, "ca.pem"));
    s.sdk.tls = { ca: readFileSync(join(dir, "ca.pem"), "utf8") };
  }
  return s;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const cluster = new Cluster(security());
let etcd: EtcdServer | undefined;
try {
  const replicas = Number(values.replicas);
  const durable = (): string[] => (values["data-dir"] ? ["--data-dir", mkdtempSync(join(tmpdir(), "bench-wal-"))] : []);
  let port: number;
  if (values.etcd) {
    etcd = await startEtcd();
    const viaEtcd = ["--etcd", etcd.endpoint];
    const started: Started[] = [];
    for (let i = 0; i < replicas; i++) started.push(await cluster.coordinator([...viaEtcd, ...durable()]));
    cluster.worker([], [...viaEtcd, "-w", values.threads!]);
    port = (await cluster.server("router", [...viaEtcd, "--log-level", "warn"])).port;
  } else {
    const coordinators = replicas > 1 ? await cluster.replicas(replicas, durable()) : [await cluster.coordinator(durable())];
    const ports = coordinators.map((c) => c.port);
    cluster.worker(ports, ["-w", values.threads!]);
    port = ports[0]!;
    if (values.router || replicas > 1) port = (await cluster.router(ports)).port;
  }
  await waitFor("a primary with its worker (and backups in sync)", async () => {
    const stats = await cluster.stats(port);
    const primary = stats.coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.workers.length === 1 && primary.replication.backupsInSync === replicas - 1 ? true : undefined;
  });
  const via = values.router || replicas > 1 || values.etcd ? "router -> " : "";
  const extras = [values["data-dir"] && "--data-dir", values.tls && "TLS", values.tokens && "tokens", values.etcd && "etcd"].filter(Boolean).join(", ");
  console.log(`path: client -> ${via}coordinator${replicas > 1 ? ` (${replicas} replicas)` : ""}${extras ? ` with ${extras}` : ""} -> worker (-w ${values.threads}); ${values.tasks} ${values.type} tasks per run, ${values.runs} runs, medians`);
  console.log("concurrency  throughput/s  p50 ms  p95 ms  p99 ms  max ms  failed");
  const primaryWal = async () => (await cluster.stats(port)).coordinators.find((c) => c.stats?.primary)?.stats?.wal;
  for (const c of values.concurrency!.split(",")) {
    const walBefore = await primaryWal();
    const reports: Record<string, any>[] = [];
    for (let i = 0; i < Number(values.runs); i++) {
      reports.push(parseReport(await cluster.client(["-p", String(port), "-n", values.tasks!, "-c", c, "-t", values.type!, "--json"])));
    }
    const m = (f: (r: any) => number) => median(reports.map(f));
    console.log(
      [c.padStart(11), String(m((r) => r.throughput)).padStart(13), String(m((r) => r.latencyMs.p50)).padStart(7), String(m((r) => r.latencyMs.p95)).padStart(7),
        String(m((r) => r.latencyMs.p99)).padStart(7), String(m((r) => r.latencyMs.max)).padStart(7), String(reports.reduce((s, r) => s + r.failed, 0)).padStart(7)].join(" "),
    );
    const walAfter = await primaryWal();
    if (walBefore !== undefined && walAfter !== undefined) console.log(walLine(walBefore, walAfter, Number(values.runs) * Number(values.tasks)));
  }
} finally {
  await cluster.stopAll();
  await etcd?.stop();
}

/** The primary's group commits between two stats samples; p99 is the bucket bound it falls under. */
function walLine(a: WalStats, b: WalStats, tasks: number): string {
  const commits = b.commits - a.commits;
  const entries = b.entries - a.entries;
  const counts = b.fsyncHistogram.counts.map((n, i) => n - a.fsyncHistogram.counts[i]!);
  const p99Bucket = counts.findIndex((n) => n >= 0.99 * commits);
  const p99 = p99Bucket < 0 ? `> ${b.fsyncHistogram.le.at(-1)}` : `<= ${b.fsyncHistogram.le[p99Bucket]}`;
  const meanMs = (b.fsyncHistogram.sumMs - a.fsyncHistogram.sumMs) / Math.max(1, commits);
  return `             wal: ${commits} fsyncs, ${(entries / Math.max(1, commits)).toFixed(1)} entries/fsync (${(entries / tasks).toFixed(2)} per task), ` +
    `${((b.bytes - a.bytes) / Math.max(1, commits) / 1024).toFixed(1)} KiB/fsync, fsync mean ${meanMs.toFixed(3)} ms, p99 ${p99} ms`;
}
