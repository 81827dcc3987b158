// Ours against BullMQ + Redis (issue 10) and NATS JetStream (issue 17) on the
// same workloads, in one run: (a) no-op throughput with 512 in flight, (b)
// latency at a fixed offered rate (open loop, latency from each task's
// intended send time), at each system's half maximum, and ours at half of its
// JetStream counterpart's maximum, (c) a closed loop of 64 clients (64 in
// flight). Ours three times: the full path (client -> router -> coordinator
// primary with a backup replica -> worker), the same with --data-dir on both
// replicas, and one coordinator with no router or replica. Theirs:
// bench/peers/bullmq (its own redis-server and worker process) and
// bench/peers/jetstream (its own nats-server(s) and worker process: memory
// and file streams on one node, a file stream of 3 replicas on 3 nodes).
// Each figure is the median of --runs runs; each workload runs for every
// system, one after the other, before the next workload starts, so the runs
// compared are minutes apart at most.
//
//   bun bench/compare.ts [--runs 3] [--skip-bullmq] [--skip-jetstream]      (needs `bun run build`; see scripts/bench-compare.sh)

import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseReport } from "../test/e2e/harness.ts";
import { endedProcesses, OURS, restartOurs, startOurs, stopOurs, type OursSetup } from "./compare-ours.ts";
import { coreCount, othersCorePercent, sampleCpu, waitForQuiet } from "./cpu-others.ts";
import { COUNTERPART, compareTable, JETSTREAM, targetLines, type Measured, type PeerName, type SystemName, type WorkloadKey } from "./compare-report.ts";

const { values: o } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "throughput-tasks": { type: "string", default: "100000" },
    "throughput-concurrency": { type: "string", default: "512" },
    "common-rate": { type: "string", default: "2000" },
    "open-duration-s": { type: "string", default: "3" },
    "open-warmup-s": { type: "string", default: "1" },
    "closed-clients": { type: "string", default: "64" },
    "closed-tasks": { type: "string", default: "100000" },
    "bullmq-closed-jobs": { type: "string", default: "10000" },
    "bullmq-concurrency": { type: "string", default: "256" },
    "deadline-s": { type: "string", default: "60" },
    "quiet-wait-s": { type: "string", default: "0" },
    "skip-bullmq": { type: "boolean", default: false },
    "skip-jetstream": { type: "boolean", default: false },
    systems: { type: "string", default: "" },
    "jetstream-batch": { type: "string", default: "1000" },
    out: { type: "string", default: resolve(import.meta.dir, "../results") },
    help: { type: "boolean", short: "h" },
  },
});

/** "Quiet": other processes use less than this share of one core (%). */
const QUIET_PERCENT = 10;

const HELP = `Usage: bun bench/compare.ts [options]   (scripts/bench-compare.sh builds the binaries first; bench/peers/*/run.sh install
their packages, redis-server and nats-server on first use)

  --runs N                     runs per figure, medians reported (3)
  --throughput-tasks N         (a) no-op tasks per throughput run, both systems (100000)
  --throughput-concurrency N   (a) tasks in flight (512): our client's -c, JetStream's publish window; BullMQ adds all in addBulk batches
  --common-rate N              (b) the offered rate every system gets, tasks/s (2000); each also gets half its own (a) median,
                               and ours half of its JetStream counterpart's (a) median
  --open-duration-s S          (b) seconds per open-loop run (3)
  --open-warmup-s S            (b) our client first runs the same rate this long, unmeasured (1): each of our runs is a
                               fresh client process, while BullMQ's producer is one process, warm after its warm-up jobs
  --closed-clients N           (c) concurrent clients (64)
  --closed-tasks N             (c) tasks per run, ours (100000)
  --bullmq-closed-jobs N       (c) jobs per run, BullMQ (10000: ~3 s at its speed)
  --bullmq-concurrency N       the BullMQ worker's concurrency (256: as many as our worker's 2 x 128 slots)
  --deadline-s S               bound on each run (60)
  --quiet-wait-s S             before each measurement, wait up to S s for other processes to use < ${QUIET_PERCENT}% of a core (0: don't)
  --jetstream-batch N          the JetStream worker's consume() batch (1000)
  --skip-bullmq                leave BullMQ out
  --skip-jetstream             leave JetStream out
  --systems LIST               only these, comma-separated, from: ${[...OURS, "bullmq", ...JETSTREAM].join(", ")}
  --out DIR                    where compare.csv goes (results)
`;
if (o.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const n = (name: keyof typeof o): number => {
  const v = Number(o[name]);
  if (!(v > 0)) throw new Error(`--${name} must be a positive number, got ${o[name]}`);
  return v;
};
const runs = n("runs");
const deadlineS = n("deadline-s");
/** The harness kills a client this long past its own deadline. */
const KILL_GRACE_MS = 15_000;

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

type Report = Record<string, any>;

/** Medians of a set of runs; failed and completed are totals, so one failed task is never hidden. */
function summarize(reports: Report[], notes: string[]): Measured {
  const m = (f: (r: Report) => number) => median(reports.map(f));
  const lat = (r: Report, k: string) => (r.completed > 0 && r.latencyMeasured !== false ? r.latencyMs[k] : NaN);
  return {
    runs: reports.length,
    throughput: Math.round(m((r) => r.throughput)),
    offeredRate: reports[0]?.offeredRate,
    p50: m((r) => lat(r, "p50")), p95: m((r) => lat(r, "p95")), p99: m((r) => lat(r, "p99")), max: m((r) => lat(r, "max")),
    ...(reports.some((r) => r.latencyFromSentMs !== undefined) && { p99FromSent: m((r) => (r.completed > 0 ? r.latencyFromSentMs?.p99 : NaN)) }),
    completed: reports.reduce((s, r) => s + r.completed, 0),
    failed: reports.reduce((s, r) => s + r.failed, 0),
    notes,
  };
}

/** Waits for a quiet moment when asked to; a note when none came. */
async function quietMoment(): Promise<string[]> {
  const waitS = Number(o["quiet-wait-s"]);
  if (!(waitS > 0)) return [];
  const pct = await waitForQuiet(QUIET_PERCENT, waitS * 1000);
  return pct !== undefined && pct >= QUIET_PERCENT ? [`started without a quiet moment (others at ${pct}% of a core after ${waitS} s)`] : [];
}

async function runOurs(ours: OursSetup, args: string[]): Promise<Measured> {
  const quiet = await quietMoment();
  const cpu = sampleCpu();
  const reports: Report[] = [];
  const notes: string[] = [...quiet];
  // A client killed from outside (the machine is shared) gets one more try; its cluster is checked after.
  for (let i = 0, tries = 0; i < runs && tries < runs + 1; tries++) {
    const run = await ours.cluster.client(["-p", String(ours.port), "-t", "noop", "--deadline-s", String(deadlineS), "--json", ...args], deadlineS * 1000 + KILL_GRACE_MS);
    try {
      const r = parseReport(run);
      reports.push(r);
      i++;
      if (r.failed > 0 || r.retried > 0) notes.push(`run ${i}: failed ${r.failed}, retried ${r.retried} ${JSON.stringify(r.errors)}`);
      progress(ours.name, args, r);
    } catch (err) {
      notes.push(`run ${i + 1}: ${(err as Error).message.split("\n")[0]}`);
    }
    if (endedProcesses(ours).length > 0) break;
  }
  return { ...summarize(reports, notes), othersCorePercent: othersCorePercent(cpu, sampleCpu()) };
}

/** runOurs on a live set-up; when one of its processes ended during the runs, says so and measures once more on a fresh one. */
async function measureOurs(index: number, args: string[]): Promise<Measured> {
  const notes: string[] = [];
  let m: Measured | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const ended = endedProcesses(ours[index]!);
    if (ended.length > 0) {
      notes.push(`${ended.join("; ")}; started afresh`);
      ours[index] = await restartOurs(ours[index]!);
    }
    m = await runOurs(ours[index]!, args);
    if (endedProcesses(ours[index]!).length === 0) break;
  }
  const died = endedProcesses(ours[index]!);
  if (died.length > 0) notes.push(`${died.join("; ")} during the runs`);
  return { ...m!, notes: [...notes, ...m!.notes] };
}

/** Our set-ups being measured (also so an interrupt kills their processes instead of orphaning them). */
const ours: OursSetup[] = [];

const PEER_RUN = { bullmq: resolve(import.meta.dir, "peers/bullmq/run.sh"), jetstream: resolve(import.meta.dir, "peers/jetstream/run.sh") };

/** One workload on BullMQ or one JetStream set-up: its run.sh, --runs runs, one JSON line each. */
/** A peer's runs; a peer process that dies before its last run (Bun crashed in one, once) is started again, once, for the runs left. */
async function runPeer(system: PeerName, args: string[]): Promise<Measured> {
  const quiet = await quietMoment();
  const cpu = sampleCpu();
  const reports: Report[] = [];
  const notes = [...quiet];
  for (let attempt = 1; attempt <= 2 && reports.length < runs; attempt++) {
    const { code, stdout, stderr } = await runPeerProcess(system, runs - reports.length, args);
    const got = stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Report);
    for (const r of got) progress(system, args, r);
    reports.push(...got);
    if (code !== 0 || reports.length < runs) notes.push(`attempt ${attempt}: exit ${code}, ${reports.length} of ${runs} runs: ${stderr.trim().split("\n").slice(-2).join(" | ")}`);
    const info = stderr.split("\n").find((l) => l.startsWith("bullmq:") || l.startsWith("jetstream:"));
    if (info !== undefined) peerInfo.add(info);
  }
  notes.push(...reports.flatMap((r, i) => (r.failed > 0 ? [`run ${i + 1}: failed ${r.failed}`] : [])));
  return { ...summarize(reports, notes), othersCorePercent: othersCorePercent(cpu, sampleCpu()) };
}

async function runPeerProcess(system: PeerName, count: number, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const own = system === "bullmq"
    ? [PEER_RUN.bullmq, "--concurrency", o["bullmq-concurrency"]!]
    : [PEER_RUN.jetstream, "--mode", system.slice("jetstream-".length), "--batch", o["jetstream-batch"]!];
  const proc = Bun.spawn(["bash", ...own, "--runs", String(count), "--deadline-s", String(deadlineS), ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  // SIGTERM first: run.sh execs the benchmark, which then stops its servers and workers; SIGKILL if it does not end.
  const bound = setTimeout(() => {
    proc.kill("SIGTERM");
    setTimeout(() => proc.kill("SIGKILL"), 5_000).unref();
  }, count * (deadlineS * 1000 + KILL_GRACE_MS) + 120_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(bound);
  return { code, stdout, stderr };
}
/** Each peer's versions and set-up, as it printed them. */
const peerInfo = new Set<string>();

function progress(system: string, args: string[], r: Report): void {
  const latency = r.latencyMeasured === false ? "" : `, p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms`;
  process.stderr.write(`  ${system} ${args.join(" ")}: ${r.throughput} tasks/s${latency}${r.failed > 0 ? `, ${r.failed} failed` : ""}\n`);
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");

/** A peer's arguments for one workload (ours take our client's flags instead). */
function peerArgs(system: PeerName, workload: "throughput" | "open" | "closed", extra: { rate?: string } = {}): string[] {
  const jetstream = system !== "bullmq";
  if (workload === "throughput") {
    const jobs = String(n("throughput-tasks"));
    return jetstream ? ["--workload", "throughput", "--jobs", jobs, "--in-flight", o["throughput-concurrency"]!] : ["--workload", "throughput", "--jobs", jobs];
  }
  if (workload === "open") return ["--workload", "open", "--rate", extra.rate!, "--duration-s", String(n("open-duration-s"))];
  // JetStream is fast enough for our closed-loop count; BullMQ would take a minute for it.
  const jobs = jetstream ? String(n("closed-tasks")) : String(n("bullmq-closed-jobs"));
  return ["--workload", "closed", "--clients", String(n("closed-clients")), "--jobs", jobs];
}

const only = o.systems === "" ? undefined : new Set(o.systems!.split(","));
for (const s of only ?? []) if (![...OURS, "bullmq", ...JETSTREAM].includes(s as SystemName)) throw new Error(`--systems: unknown system "${s}"`);
const chosen = (s: SystemName): boolean => only === undefined || only.has(s);

async function main(): Promise<void> {
  const started = performance.now();
  const peers: PeerName[] = [...(o["skip-bullmq"] ? [] : ["bullmq" as const]), ...(o["skip-jetstream"] ? [] : JETSTREAM)].filter(chosen);
  const oursChosen = OURS.filter(chosen);
  const systems: SystemName[] = [...oursChosen, ...peers];
  const results = new Map<string, Measured>();
  const put = (system: SystemName, workload: WorkloadKey, m: Measured) => {
    results.set(`${system}/${workload}`, m);
    if (m.othersCorePercent !== undefined) process.stderr.write(`  ${system} ${workload}: other processes used ${m.othersCorePercent}% of a core meanwhile\n`);
  };
  for (const name of oursChosen) ours.push(await startOurs(name));
  console.log(`compare: ${runs} runs per figure, medians; load average at start: ${load()}`);
  try {
    const tasks = String(n("throughput-tasks"));
    for (const [i, s] of ours.entries()) put(s.name, "throughput", await measureOurs(i, ["-n", tasks, "-c", o["throughput-concurrency"]!]));
    for (const p of peers) put(p, "throughput", await runPeer(p, peerArgs(p, "throughput")));

    const duration = String(n("open-duration-s"));
    const warmupS = Number(o["open-warmup-s"]);
    if (!(warmupS >= 0)) throw new Error(`--open-warmup-s must be 0 or more, got ${o["open-warmup-s"]}`);
    const open = (rate: string) => ["--rate", rate, "--duration-s", duration, "--warmup-s", String(warmupS)];
    for (const [i, s] of ours.entries()) put(s.name, "open-common", await measureOurs(i, open(o["common-rate"]!)));
    for (const p of peers) put(p, "open-common", await runPeer(p, peerArgs(p, "open", { rate: o["common-rate"]! })));
    // Half of each system's own measured maximum: the load a deployment would plan for.
    const half = (s: SystemName) => String(Math.max(1, Math.round((results.get(`${s}/throughput`)?.throughput ?? 0) / 2)));
    for (const [i, s] of ours.entries()) put(s.name, "open-half", await measureOurs(i, open(half(s.name))));
    for (const p of peers) put(p, "open-half", await runPeer(p, peerArgs(p, "open", { rate: half(p) })));
    // Ours at the load its JetStream counterpart plans for: whose tail is shorter at the same rate.
    for (const [i, s] of ours.entries()) {
      const theirs = COUNTERPART[s.name];
      if (peers.includes(theirs)) put(s.name, "open-peer-half", await measureOurs(i, open(half(theirs))));
    }

    const clients = String(n("closed-clients"));
    for (const [i, s] of ours.entries()) put(s.name, "closed", await measureOurs(i, ["-n", String(n("closed-tasks")), "-c", clients]));
    for (const p of peers) put(p, "closed", await runPeer(p, peerArgs(p, "closed")));
  } finally {
    await Promise.all(ours.map(stopOurs));
    ours.length = 0;
  }
  console.log(`load average at end: ${load()}; took ${Math.round((performance.now() - started) / 1000)} s`);
  for (const info of peerInfo) console.log(info);
  const others = [...results.values()].map((m) => m.othersCorePercent).filter((v) => v !== undefined);
  if (others.length > 0) {
    console.log(`other processes on the machine meanwhile: ${Math.round(median(others))}% of a core (median over the measurements), at most ${Math.max(...others)}%; ${coreCount()} cores`);
  }
  const table = compareTable(results, systems, { commonRate: n("common-rate"), clients: n("closed-clients"), tasks: n("throughput-tasks") });
  process.stdout.write(table.text);
  process.stdout.write(targetLines(results).join("\n") + "\n");
  const notes = [...results.entries()].flatMap(([key, m]) => m.notes.map((note) => `${key}: ${note}`));
  if (notes.length > 0) console.log(`notes:\n${notes.map((x) => `  ${x}`).join("\n")}`);
  mkdirSync(o.out!, { recursive: true });
  const csv = resolve(o.out!, "compare.csv");
  writeFileSync(csv, table.csv);
  console.log(`wrote ${csv}`);
  if ([...results.values()].some((m) => m.failed > 0 || m.runs < runs)) process.exitCode = 1;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void Promise.all(ours.map(stopOurs)).finally(() => process.exit(130)));
}
await main();
