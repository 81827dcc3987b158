// Where the CPU goes, per process, on each path: CPU µs per task of every process
// (coordinator or primary, backup, router, worker, client) over a fixed run, from
// /proc/<pid>/stat (utime + stime, all threads) sampled before and after each client
// run, and the client's own rusage. The paths run side by side, alternated round by
// round, so their ratio comes from the same minutes of a shared machine. Needs
// `bun run build`.
//
//   bun bench/cpu-per-task.ts [--runs 3] [--tasks 200000] [--concurrency 512] [--paths single,router,pair] [--threads 2]
//
// single: client -> coordinator -> worker; router: the same behind a router;
// pair: client -> router -> primary (+ backup, synchronous replication) -> worker;
// pair-direct: the pair without the router, the client on the primary's port.

import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { binary, Cluster, parseReport, waitFor, type Started } from "../test/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    tasks: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "512" },
    paths: { type: "string", default: "single,router,pair" },
    threads: { type: "string", default: "2" },
    type: { type: "string", default: "noop" },
  },
});

/** USER_HZ: /proc's clock ticks per second (100 on every Linux we run). */
const TICKS_PER_S = 100;

/** [utime + stime, stime] of a process, all its threads, in µs. */
function cpuMicros(pid: number): [number, number] {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const micros = (ticks: number) => (ticks / TICKS_PER_S) * 1e6;
  return [micros(Number(f[11]) + Number(f[12])), micros(Number(f[12]))];
}

interface Path {
  name: string;
  /** Where the client connects. */
  port: number;
  /** The long-running processes, by role, in table order. */
  processes: Array<{ role: string; proc: Started["proc"] }>;
}

interface RunResult {
  throughput: number;
  p99: number;
  /** CPU µs per task by role, the client included. */
  perTask: Map<string, number>;
  /** Of which in the kernel (system time): socket reads and writes, mostly. */
  kernelPerTask: Map<string, number>;
}

const cluster = new Cluster();

async function waitReady(port: number, backups: number): Promise<void> {
  await waitFor("a primary with its worker (and backups in sync)", async () => {
    const primary = (await cluster.stats(port)).coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.workers.length === 1 && primary.replication.backupsInSync === backups ? true : undefined;
  });
}

async function startPath(name: string): Promise<Path> {
  const threads = ["-w", values.threads!];
  if (name === "single" || name === "router") {
    const c = await cluster.coordinator();
    const w = cluster.worker([c.port], threads);
    const processes = [{ role: "coordinator", proc: c.proc }, { role: "worker", proc: w.proc }];
    let port = c.port;
    if (name === "router") {
      const r = await cluster.router([c.port]);
      processes.push({ role: "router", proc: r.proc });
      port = r.port;
    }
    await waitReady(port, 0);
    return { name, port, processes };
  }
  if (name !== "pair" && name !== "pair-direct") throw new Error(`unknown path ${name}: single, router, pair or pair-direct`);
  const nodes = await cluster.replicas(2);
  const { primary, backup } = await cluster.pairInSync(nodes);
  const w = cluster.worker(nodes.map((n) => n.port), threads);
  const replicas = [{ role: "primary", proc: primary.proc }, { role: "backup", proc: backup.proc }];
  if (name === "pair-direct") {
    await waitReady(primary.port, 1);
    return { name, port: primary.port, processes: [...replicas, { role: "worker", proc: w.proc }] };
  }
  const r = await cluster.router(nodes.map((n) => n.port));
  await waitReady(r.port, 1);
  return { name, port: r.port, processes: [...replicas, { role: "router", proc: r.proc }, { role: "worker", proc: w.proc }] };
}

async function run(path: Path): Promise<RunResult> {
  const tasks = Number(values.tasks);
  const before = path.processes.map((p) => cpuMicros(p.proc.pid));
  const client = Bun.spawn([binary("client"), "-p", String(path.port), "-n", values.tasks!, "-c", values.concurrency!, "-t", values.type!, "--json"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => client.kill("SIGKILL"), 120_000);
  const [stdout, stderr, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
  clearTimeout(timer);
  const after = path.processes.map((p) => cpuMicros(p.proc.pid));
  const report = parseReport({ code, stdout, stderr });
  if (report.failed > 0) throw new Error(`${path.name}: ${report.failed} tasks failed`);
  const perTask = new Map<string, number>();
  const kernelPerTask = new Map<string, number>();
  path.processes.forEach((p, i) => {
    perTask.set(p.role, (after[i]![0] - before[i]![0]) / tasks);
    kernelPerTask.set(p.role, (after[i]![1] - before[i]![1]) / tasks);
  });
  const usage = client.resourceUsage();
  if (usage !== undefined) {
    perTask.set("client", Number(usage.cpuTime.user + usage.cpuTime.system) / tasks);
    kernelPerTask.set("client", Number(usage.cpuTime.system) / tasks);
  }
  return { throughput: report.throughput, p99: report.latencyMs.p99, perTask, kernelPerTask };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const paths: Path[] = [];
  for (const name of values.paths!.split(",")) paths.push(await startPath(name));
  const results = new Map<string, RunResult[]>(paths.map((p) => [p.name, []]));
  const load = [loadavg()[0]!];
  // Alternated: one run of each path per round, so a busy minute on the machine hits all of them.
  for (let round = 0; round < Number(values.runs); round++) {
    for (const p of paths) results.get(p.name)!.push(await run(p));
    load.push(loadavg()[0]!);
  }
  console.log(`${values.tasks} ${values.type} tasks per run at -c ${values.concurrency}, worker -w ${values.threads}, ${values.runs} alternated rounds, medians; load average (1 min) ${load.map((l) => l.toFixed(1)).join(" -> ")}`);
  console.log("path         tasks/s  p99 ms  CPU µs per task by process, (of which in the kernel), total");
  const first = results.get(paths[0]!.name)!;
  for (const p of paths) {
    const rs = results.get(p.name)!;
    const roles = [...rs[0]!.perTask.keys()];
    const cells = roles.map((role) => `${role} ${median(rs.map((r) => r.perTask.get(role)!)).toFixed(1)} (${median(rs.map((r) => r.kernelPerTask.get(role)!)).toFixed(1)})`);
    const total = median(rs.map((r) => [...r.perTask.values()].reduce((a, b) => a + b, 0)));
    const ratio = p === paths[0] ? "" : `; throughput / ${paths[0]!.name} ${median(rs.map((r, i) => r.throughput / first[i]!.throughput)).toFixed(2)} (median of per-round ratios)`;
    console.log(`${p.name.padEnd(11)} ${String(median(rs.map((r) => r.throughput))).padStart(8)} ${median(rs.map((r) => r.p99)).toFixed(1).padStart(7)}  ${cells.join(", ")} (${total.toFixed(1)})${ratio}`);
  }
} finally {
  await cluster.stopAll();
}
