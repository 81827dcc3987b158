// What task events cost the primary: the same noop runs through a router with
// nobody subscribed (the ring records every event: a few stores per task), then
// with one SDK stream of every event, then with an SSE reader of every event on
// the router's HTTP port. Prints the median throughput of each. Needs `bun run build`.
//
//   bun bench/events-overhead.ts [--runs 3] [--tasks 50000]

import { parseArgs } from "node:util";
import { connect } from "../src/sdk/scheduler.ts";
import { Cluster, freePort, parseReport } from "../test/e2e/harness.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, tasks: { type: "string", default: "50000" } } });
const RUNS = Number(values.runs);
const TASKS = Number(values.tasks);

const cluster = new Cluster();
const coordinator = await cluster.coordinator();
cluster.worker([coordinator.port], ["-w", "1", "--thread-concurrency", "256"]);
const httpPort = freePort();
const router = await cluster.router([coordinator.port], ["--http-port", String(httpPort)]);
await cluster.workersJoined(router.port, 1);

async function measure(label: string, events: () => number): Promise<void> {
  const rates: number[] = [];
  const before = events();
  for (let i = 0; i < RUNS; i++) rates.push(parseReport(await cluster.client(["-p", String(router.port), "--json", "-t", "noop", "-c", "256", "-n", String(TASKS)])).throughput);
  rates.sort((a, b) => a - b);
  console.log(`${label.padEnd(28)} ${String(rates[rates.length >> 1]).padStart(8)} tasks/s  (runs: ${rates.join(", ")}; events heard: ${events() - before})`);
}

await measure("no subscriber", () => 0);

const scheduler = await connect({ servers: [`127.0.0.1:${router.port}`] });
const stream = scheduler.events();
let heard = 0;
stream.on("event", () => heard++);
await measure("one SDK stream, all events", () => heard);
stream.close();
await scheduler.close();

const controller = new AbortController();
const response = await fetch(`http://127.0.0.1:${httpPort}/v1/events`, { signal: controller.signal });
let sseBytes = 0;
void (async () => {
  try {
    for await (const chunk of response.body!) sseBytes += chunk.length;
  } catch {
    // aborted at the end
  }
})();
await measure("one SSE reader, all events", () => Math.round(sseBytes / 200)); // about 200 bytes per event
controller.abort();

await cluster.stopAll();
process.exit(0);
