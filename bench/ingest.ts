// Ingest: acknowledged submissions per second, submit only, nothing executed
// (no worker). Ours is one coordinator, the client with --submit-only, a
// SUBMIT each and then --batch N per SUBMIT_BATCH (and, when asked for with
// --systems, ours-pair-batch: a router in front of a primary and its backup); against BullMQ's addBulk
// (Redis, batches of --batch) and NATS JetStream's async publish (memory
// stream, --in-flight PubAcks outstanding). Systems alternate within each
// round; each process is fresh per run and warmed up by an unmeasured run
// first. Prints a Markdown table of medians and one JSON line per run.
//   bun bench/ingest.ts [--runs 3] [--tasks 1000000] [--batch 1000] [--in-flight 8192]
// Needs dist/ (bun run build); the peers install what they need on first use (bench/peers/*/run.sh).

import { parseArgs } from "node:util";
import { Cluster, waitFor } from "../test/e2e/harness.ts";

const { values: o } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "1000000" },
    batch: { type: "string", default: "1000" },
    "in-flight": { type: "string", default: "8192" },
    systems: { type: "string", default: "ours-single,ours-batch,bullmq,jetstream" },
    help: { type: "boolean", short: "h" },
  },
});
if (o.help) {
  process.stdout.write("Usage: bun bench/ingest.ts [--runs 3] [--tasks 1000000] [--batch 1000] [--in-flight 8192] [--systems ours-single,ours-batch,bullmq,jetstream]\n  (--systems may also name ours-pair-batch: a router in front of a primary and its backup)\n");
  process.exit(0);
}
const RUNS = Number(o.runs);
const TASKS = Number(o.tasks);
const BATCH = Number(o.batch);
const IN_FLIGHT = Number(o["in-flight"]);
/** The warm-up run before each measured one: the client's and the server's code optimised first. */
const WARMUP_TASKS = Math.min(TASKS, 200_000);

interface Run {
  system: string;
  perSecond: number;
  clientCpuUsPerTask?: number;
  durationMs: number;
  failed: number;
}

type Ours = "ours-single" | "ours-batch" | "ours-pair-batch";

/** Where the client connects: one coordinator, or a router in front of a replicated pair (acknowledged once on the backup too). */
async function oursServer(cluster: Cluster, system: Ours): Promise<number> {
  // The queue holds every task submitted (nothing runs them): room for the warm-up and the run.
  const queue = ["--max-queue", String(2 * (TASKS + WARMUP_TASKS))];
  if (system !== "ours-pair-batch") return (await cluster.coordinator(queue)).port;
  const nodes = await cluster.replicas(2, queue);
  const router = await cluster.router(nodes.map((n) => n.port));
  await waitFor("a primary with its backup in sync", async () => {
    const primary = (await cluster.stats(router.port)).coordinators.find((c) => c.stats?.primary)?.stats;
    return primary?.replication.backupsInSync === 1 ? true : undefined;
  });
  return router.port;
}

async function ours(system: Ours): Promise<Run> {
  const cluster = new Cluster();
  try {
    const port = await oursServer(cluster, system);
    const args = ["-p", String(port), "--submit-only", "-c", String(IN_FLIGHT), "--batch", system === "ours-single" ? "1" : String(BATCH), "--json"];
    await cluster.client([...args, "-n", String(WARMUP_TASKS)]);
    const r = await cluster.client([...args, "-n", String(TASKS)]);
    const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    return { system, perSecond: report.throughput, clientCpuUsPerTask: report.clientCpuUsPerTask, durationMs: report.durationMs, failed: report.failed };
  } finally {
    await cluster.stopAll();
  }
}

async function peer(system: "bullmq" | "jetstream"): Promise<Run> {
  const args = system === "bullmq"
    ? ["bench/peers/bullmq/run.sh", "--workload", "ingest", "--jobs", String(TASKS), "--bulk", String(BATCH), "--runs", "1"]
    : ["bench/peers/jetstream/run.sh", "--mode", "memory", "--workload", "ingest", "--jobs", String(TASKS), "--in-flight", String(IN_FLIGHT), "--runs", "1"];
  const proc = Bun.spawn(["bash", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${system} exited with ${code}: ${err.slice(-2000)}`);
  const report = JSON.parse(out.trim().split("\n").at(-1)!);
  return { system, perSecond: report.throughput, durationMs: report.durationMs, failed: report.failed };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const systems = o.systems.split(",") as Array<Ours | "bullmq" | "jetstream">;
const runs: Run[] = [];
for (let round = 0; round < RUNS; round++) {
  for (const system of systems) {
    const run = system === "bullmq" || system === "jetstream" ? await peer(system) : await ours(system);
    runs.push(run);
    process.stdout.write(JSON.stringify({ round, ...run }) + "\n");
  }
}
process.stdout.write(`\n${TASKS} tasks per run, ${RUNS} runs each, medians; batch ${BATCH}, in flight ${IN_FLIGHT}\n\n`);
process.stdout.write("| system | acknowledged submissions/s | client CPU µs/task | failed |\n| --- | ---: | ---: | ---: |\n");
for (const system of systems) {
  const mine = runs.filter((r) => r.system === system);
  const cpu = mine.map((r) => r.clientCpuUsPerTask).filter((x): x is number => x !== undefined);
  process.stdout.write(`| ${system} | ${median(mine.map((r) => r.perSecond)).toLocaleString("en")} | ${cpu.length > 0 ? median(cpu) : "—"} | ${mine.reduce((n, r) => n + r.failed, 0)} |\n`);
}
