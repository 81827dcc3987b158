// Submission throughput through the router by API: our binary protocol (the
// SDK), REST (one task per POST, and batches) and gRPC (Submit, SubmitBatch).
// One coordinator and a router from the compiled binaries; no worker, so only
// the path of a submission is measured (tasks accepted per second, each
// acknowledged by the shard). The load runs in this process, one connection
// per API, a fixed number of requests in flight. Medians of --runs runs, the
// APIs taking turns within each run. Needs `bun run build`.
//
//   bun bench/api-submit.ts [--runs 3] [--tasks 20000] [--in-flight 64] [--batch 100]

import { parseArgs } from "node:util";
import { SchedulerClient } from "../src/sdk/client.ts";
import { Cluster, freePort, waitFor } from "../test/e2e/harness.ts";
import { GrpcTestClient } from "../test/support/grpc-client.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "20000" },
    "in-flight": { type: "string", default: "64" },
    batch: { type: "string", default: "100" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write("Usage: bun bench/api-submit.ts [--runs 3] [--tasks 20000] [--in-flight 64] [--batch 100]   (needs bun run build)\n");
  process.exit(0);
}
const runs = Number(values.runs);
const tasks = Number(values.tasks);
const inFlight = Number(values["in-flight"]);
const batch = Number(values.batch);

/** Runs `one(i)` for i < count with at most `width` in flight; resolves with the seconds it took. */
async function windowed(count: number, width: number, one: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < count) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
  return (performance.now() - started) / 1000;
}

const cluster = new Cluster();
const coordinator = await cluster.coordinator(["--max-queue", String(tasks * 10 * runs)]);
const httpPort = freePort();
const grpcPort = freePort();
const router = await cluster.router([coordinator.port], ["--http-port", String(httpPort), "--grpc-port", String(grpcPort)]);
await waitFor("the gRPC port", () => (/router grpc on/.test(router.output()) ? true : undefined));
const base = `http://127.0.0.1:${httpPort}/v1/tasks`;
const sdk = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
const grpc = new GrpcTestClient(`127.0.0.1:${grpcPort}`);
const batches = Math.ceil(tasks / batch);
const oneBatch = Array.from({ length: batch }, () => ({ type: "noop" }));

async function post(body: unknown): Promise<void> {
  const r = await fetch(base, { method: "POST", body: JSON.stringify(body) });
  if (r.status !== 201) throw new Error(`REST answered ${r.status}: ${await r.text()}`);
}

async function grpcCall(method: string, request: unknown): Promise<void> {
  const settled = await grpc.call(method, request);
  if (settled.failure) throw new Error(`gRPC ${method}: ${settled.failure.details}`);
}

/** Batches in flight: as many tasks in flight as single submissions have, at least one batch. */
const batchesInFlight = Math.max(1, Math.floor(inFlight / 16));

/** Each API: its name, how many tasks a run submits, and the run (resolving with its seconds). */
const APIS: Array<[string, number, () => Promise<number>]> = [
  ["binary protocol (SDK submit)", tasks, () => windowed(tasks, inFlight, () => sdk.submit("noop", null))],
  ["REST, one task per POST", tasks, () => windowed(tasks, inFlight, () => post({ type: "noop" }))],
  ["gRPC Submit", tasks, () => windowed(tasks, inFlight, () => grpcCall("Submit", { type: "noop" }))],
  [`REST, ${batch} tasks per POST`, batches * batch, () => windowed(batches, batchesInFlight, () => post(oneBatch))],
  [`gRPC SubmitBatch of ${batch}`, batches * batch, () => windowed(batches, batchesInFlight, () => grpcCall("SubmitBatch", { tasks: oneBatch }))],
];

const rates = new Map<string, number[]>(APIS.map(([name]) => [name, []]));
// A short unmeasured pass first: JIT and connections warm for every API.
for (const [, , run] of APIS) await run();
for (let r = 0; r < runs; r++) {
  for (const [name, submitted, run] of APIS) rates.get(name)!.push(submitted / (await run()));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(`${tasks} tasks per run, ${runs} runs, ${inFlight} requests in flight (batches: ${batchesInFlight}), medians:\n\n| API | tasks/s (median) | runs |\n| --- | ---: | --- |\n`);
for (const [name, xs] of rates) process.stdout.write(`| ${name} | ${Math.round(median(xs)).toLocaleString("en-US")} | ${xs.map((x) => Math.round(x)).join(", ")} |\n`);
sdk.close();
grpc.close();
await cluster.stopAll();
