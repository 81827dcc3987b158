// The load generator's own cost: CPU µs per task of two client binaries (an
// older build given with --before, and dist/client) on the same workload, in
// one run: one coordinator with a worker (-w 2), closed loop, no-op tasks,
// alternated, medians. The client's --json report carries clientCpuUsPerTask.
//   git archive <commit> | tar -x -C /tmp/before && (cd /tmp/before && ln -s "$PWD/node_modules" . && bun scripts/build.ts client)
//   bun bench/client-cpu.ts --before /tmp/before/dist/client [--runs 3] [--tasks 200000] [--in-flight 64,512]

import { parseArgs } from "node:util";
import { binary, Cluster } from "../test/e2e/harness.ts";

const { values: o } = parseArgs({
  options: {
    before: { type: "string" },
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "200000" },
    "in-flight": { type: "string", default: "64,512" },
    help: { type: "boolean", short: "h" },
  },
});
if (o.help || o.before === undefined) {
  process.stdout.write("Usage: bun bench/client-cpu.ts --before PATH/TO/OLD/client [--runs 3] [--tasks 200000] [--in-flight 64,512]\n");
  process.exit(o.help ? 0 : 2);
}
const clients = { before: o.before, after: binary("client") };
const inFlights = o["in-flight"].split(",").map(Number);

interface Run {
  client: keyof typeof clients;
  inFlight: number;
  throughput: number;
  cpuUs: number;
}

async function measure(client: keyof typeof clients, inFlight: number): Promise<Run> {
  const cluster = new Cluster();
  try {
    const coordinator = await cluster.coordinator();
    cluster.worker([coordinator.port], ["-w", "2"]);
    await cluster.workersJoined(coordinator.port, 1);
    const run = async (tasks: number) => {
      const proc = Bun.spawn([clients[client], "-p", String(coordinator.port), "-n", String(tasks), "-c", String(inFlight), "-t", "noop", "--json"], { stdout: "pipe", stderr: "pipe" });
      const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      if (code !== 0) throw new Error(`${client} client exited with ${code}: ${out}`);
      return JSON.parse(out.trim().split("\n").at(-1)!);
    };
    await run(Math.min(50_000, Number(o.tasks))); // warm-up, unmeasured
    const report = await run(Number(o.tasks));
    return { client, inFlight, throughput: report.throughput, cpuUs: report.clientCpuUsPerTask };
  } finally {
    await cluster.stopAll();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const runs: Run[] = [];
for (let round = 0; round < Number(o.runs); round++) {
  for (const inFlight of inFlights) {
    for (const client of ["before", "after"] as const) {
      const r = await measure(client, inFlight);
      runs.push(r);
      process.stdout.write(JSON.stringify({ round, ...r }) + "\n");
    }
  }
}
process.stdout.write(`\n${o.tasks} no-op tasks per run, ${o.runs} runs each, medians\n\n| client | in flight | tasks/s | client CPU µs/task |\n| --- | ---: | ---: | ---: |\n`);
for (const inFlight of inFlights) {
  for (const client of ["before", "after"] as const) {
    const mine = runs.filter((r) => r.client === client && r.inFlight === inFlight);
    process.stdout.write(`| ${client} | ${inFlight} | ${median(mine.map((r) => r.throughput)).toLocaleString("en")} | ${median(mine.map((r) => r.cpuUs))} |\n`);
  }
}
