// End-to-end benchmark from the compiled binaries: starts a coordinator and a
// worker (optionally a router in front), runs the client several times per
// concurrency level, and prints the median of each figure. Needs `bun run build`.
//
//   bun bench/e2e.ts [--runs 5] [--tasks 200000] [--concurrency 64,512] [--type noop] [--threads 2] [--router]

import { parseArgs } from "node:util";
import { Cluster, parseReport } from "../test/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    tasks: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "64,512" },
    type: { type: "string", default: "noop" },
    threads: { type: "string", default: "2" },
    router: { type: "boolean", default: false },
  },
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const cluster = new Cluster();
try {
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", values.threads!]);
  let port = coordinator.port;
  if (values.router) port = (await cluster.router([coordinator.port])).port;
  await cluster.workersJoined(port, 1);
  console.log(`path: client -> ${values.router ? "router -> " : ""}coordinator -> worker (-w ${values.threads}); ${values.tasks} ${values.type} tasks per run, ${values.runs} runs, medians`);
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
