// Failover time from the compiled binaries: a replica pair behind a router
// under steady load; kill -9 the primary and measure, by polling the backup,
// the time to its promotion and to the first task it completes as primary.
//   bun bench/failover.ts [--trials 5] [--failover-timeout-ms 400]

import { parseArgs } from "node:util";
import { Cluster, waitFor } from "../test/e2e/harness.ts";

const { values } = parseArgs({ options: { trials: { type: "string", default: "5" }, "failover-timeout-ms": { type: "string", default: "400" } } });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const promotions: number[] = [];
const firstCompletions: number[] = [];

for (let trial = 0; trial < Number(values.trials); trial++) {
  const cluster = new Cluster();
  try {
    const nodes = await cluster.replicas(2, ["--failover-timeout-ms", values["failover-timeout-ms"]!, "--log-level", process.env.BENCH_LOG ?? "warn"]);
    const ports = nodes.map((n) => n.port);
    const worker = cluster.worker(ports, ["-w", "2", "--log-level", process.env.BENCH_LOG ?? "warn"]);
    const router = await cluster.router(ports);
    const primaryPort = await waitFor("a primary with a backup in sync", async () => {
      const stats = await cluster.stats(router.port);
      const p = stats.coordinators.find((c) => c.stats?.primary && c.stats.replication.backupsInSync === 1 && c.stats.workers.length === 1);
      return p ? Number(p.address.split(":").at(-1)) : undefined;
    });
    const primary = nodes.find((n) => n.port === primaryPort)!;
    const backup = nodes.find((n) => n !== primary)!;
    const load = cluster.client(["-p", String(router.port), "-n", "400000", "-c", "64", "-t", "sleep", "--duration-ms", "1", "--json", "--deadline-s", "30"]);
    await waitFor("load under way", async () => ((await cluster.stats(backup.port)).coordinators[0]!.stats!.completed > 2000 ? true : undefined));
    const killedAt = performance.now();
    primary.proc.kill("SIGKILL");
    let promotedAt = 0;
    let baseline = 0;
    const firstAt = await waitFor("the new primary's first completion", async () => {
      const s = (await cluster.stats(backup.port)).coordinators[0]!.stats!;
      if (!s.primary) return undefined;
      if (process.env.BENCH_LOG && performance.now() - killedAt > 1500 && performance.now() - killedAt < 1550) console.log(JSON.stringify({ ...s, workers: s.workers }));
      if (promotedAt === 0) {
        promotedAt = performance.now();
        baseline = s.completed;
        return undefined;
      }
      return s.completed > baseline ? performance.now() : undefined;
    }, 20_000);
    promotions.push(promotedAt - killedAt);
    firstCompletions.push(firstAt - killedAt);
    console.log(`trial ${trial + 1}: promoted after ${Math.round(promotedAt - killedAt)} ms, first completion after ${Math.round(firstAt - killedAt)} ms`);
    if (process.env.BENCH_LOG && firstAt - killedAt > 2000) console.log(backup.output().slice(-3000), worker.output().slice(-3000));
    void load;
  } finally {
    await cluster.stopAll();
  }
}
console.log(`median: promoted after ${Math.round(median(promotions))} ms, first task completed by the new primary after ${Math.round(median(firstCompletions))} ms (failover-timeout-ms ${values["failover-timeout-ms"]})`);
