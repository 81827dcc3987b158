// In-process worker (createWorker: executor loop on the main thread) against the
// worker binary (executor threads behind SharedArrayBuffer rings), same cluster,
// same client runs: built-in noop (the per-task overhead) and sleep (async
// handlers overlapping) and cpu (where threads count). Prints the median throughput of each. Needs `bun run build`.
//
//   bun bench/in-process-worker.ts [--runs 3] [--tasks 50000]

import { parseArgs } from "node:util";
import { createWorker } from "../src/sdk/worker.ts";
import { Cluster, parseReport, waitFor } from "../test/e2e/harness.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, tasks: { type: "string", default: "50000" } } });
const RUNS = Number(values.runs);
const TASKS = Number(values.tasks);
/** Concurrency of each worker kind: equal slots, so sleep measures overlap, not slot count. */
const SLOTS = 256;

const cluster = new Cluster();
const coordinator = await cluster.coordinator();
const router = await cluster.router([coordinator.port]);

const loads = [
  { name: "noop", args: ["-t", "noop", "-c", "256", "-n", String(TASKS)] },
  { name: "sleep 10 ms", args: ["-t", "sleep", "--duration-ms", "10", "-c", String(SLOTS), "-n", String(Math.min(TASKS, 20_000))] },
  // CPU-bound handlers are where threads count: on the main thread they hold up the sockets too.
  { name: "cpu 1 ms", args: ["-t", "cpu", "--duration-ms", "1", "-c", "64", "-n", String(Math.min(TASKS, 3_000))] },
];

async function measure(label: string): Promise<void> {
  for (const load of loads) {
    const rates: number[] = [];
    for (let i = 0; i < RUNS; i++) rates.push(parseReport(await cluster.client(["-p", String(router.port), "--json", ...load.args])).throughput);
    rates.sort((a, b) => a - b);
    console.log(`${label.padEnd(34)} ${load.name.padEnd(12)} ${String(rates[rates.length >> 1]).padStart(8)} tasks/s  (runs: ${rates.join(", ")})`);
  }
}

async function workers(count: number): Promise<void> {
  await waitFor(`${count} workers`, async () => {
    const stats = await cluster.stats(router.port);
    return stats.coordinators.reduce((n, c) => n + (c.stats?.workers.length ?? 0), 0) === count ? true : undefined;
  });
}

const inProcess = await createWorker({ servers: [`127.0.0.1:${coordinator.port}`], handlers: { echo: (x: unknown) => x }, concurrency: SLOTS });
await workers(1);
await measure("in-process (main thread)");
await inProcess.close();
await workers(0);

for (const threads of [1, 2]) {
  const binary = cluster.worker([coordinator.port], ["-w", String(threads), "--thread-concurrency", String(SLOTS / threads)]);
  await workers(1);
  await measure(`worker binary (-w ${threads})`);
  binary.proc.kill("SIGTERM");
  await binary.proc.exited;
  await workers(0);
}
await cluster.stopAll();
process.exit(0);
