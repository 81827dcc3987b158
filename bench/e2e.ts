// End-to-end benchmark from the compiled binaries: starts a coordinator and a
// worker (optionally a router in front), runs the client several times per
// concurrency level, and prints the median of each figure. Needs `bun run build`.
//
//   bun bench/e2e.ts [--runs 5] [--tasks 200000] [--concurrency 64,512] [--type noop] [--threads 2] [--router] [--replicas 2]
// --replicas N: one shard of N coordinators (primary + backups, synchronous replication).
// --data-dir: coordinators keep a write-ahead log (fsync per group commit) in a temp dir.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Cluster, parseReport, waitFor } from "../test/e2e/harness.ts";

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
  },
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const cluster = new Cluster();
try {
  const replicas = Number(values.replicas);
  const durable = (): string[] => (values["data-dir"] ? ["--data-dir", mkdtempSync(join(tmpdir(), "bench-wal-"))] : []);
  const coordinators = replicas > 1 ? await cluster.replicas(replicas, durable()) : [await cluster.coordinator(durable())];
  const ports = coordinators.map((c) => c.port);
  cluster.worker(ports, ["-w", values.threads!]);
  let port = ports[0]!;
  if (values.router || replicas > 1) port = (await cluster.router(ports)).port;
  await waitFor("a primary with its worker (and backups in sync)", async () => {
    const stats = await cluster.stats(port);
    const primary = stats.coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.workers.length === 1 && primary.replication.backupsInSync === replicas - 1 ? true : undefined;
  });
  const via = values.router || replicas > 1 ? "router -> " : "";
  console.log(`path: client -> ${via}coordinator${replicas > 1 ? ` (${replicas} replicas)` : ""}${values["data-dir"] ? " with --data-dir" : ""} -> worker (-w ${values.threads}); ${values.tasks} ${values.type} tasks per run, ${values.runs} runs, medians`);
  console.log("concurrency  throughput/s  p50 ms  p95 ms  p99 ms  max ms  failed");
  for (const c of values.concurrency!.split(",")) {
    const reports: Record<string, any>[] = [];
    for (let i = 0; i < Number(values.runs); i++) {
      reports.push(parseReport(await cluster.client(["-p", String(port), "-n", values.tasks!, "-c", c, "-t", values.type!, "--json"])));
    }
    const m = (f: (r: any) => number) => median(reports.map(f));
    console.log(
      [c.padStart(11), String(m((r) => r.throughput)).padStart(13), String(m((r) => r.latencyMs.p50)).padStart(7), String(m((r) => r.latencyMs.p95)).padStart(7),
        String(m((r) => r.latencyMs.p99)).padStart(7), String(m((r) => r.latencyMs.max)).padStart(7), String(reports.reduce((s, r) => s + r.failed, 0)).padStart(7)].join(" "),
    );
  }
} finally {
  await cluster.stopAll();
}
