// Throughput and tail of a replica pair led through etcd against the same pair with
// static --peer election, alternated run by run so both see the same machine
// (noisy, 2 cores): prints each run and the medians, and the ratio etcd/static.
//
//   bun bench/etcd-vs-static.ts [--rounds 5] [--tasks 200000] [--concurrency 64,512] [--replicas 2] [--data-dir]
// Needs `bun run build` and etcd (Debian: etcd-server).

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    tasks: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "64,512" },
    replicas: { type: "string", default: "2" },
    "data-dir": { type: "boolean", default: false },
  },
});

type Row = { throughput: number; p99: number };
const MODES = ["static", "etcd"] as const;
const results = new Map<string, Row[]>();

function runOnce(mode: (typeof MODES)[number]): void {
  const args = ["bench/e2e.ts", "--runs", "1", "--tasks", values.tasks!, "--concurrency", values.concurrency!, "--replicas", values.replicas!];
  if (mode === "etcd") args.push("--etcd");
  if (values["data-dir"]) args.push("--data-dir");
  const run = Bun.spawnSync(["bun", ...args], { cwd: `${import.meta.dir}/..`, stderr: "pipe" });
  const out = run.stdout.toString();
  if (run.exitCode !== 0) throw new Error(`${mode}: bench/e2e.ts exited ${run.exitCode}\n${out}\n${run.stderr.toString()}`);
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s+/).map(Number);
    if (cols.length !== 7 || cols.some(Number.isNaN)) continue;
    const [concurrency, throughput, , , p99] = cols as [number, number, number, number, number];
    const key = `${mode} ${concurrency}`;
    results.set(key, [...(results.get(key) ?? []), { throughput, p99 }]);
    console.log(`${mode.padEnd(6)} c=${String(concurrency).padEnd(4)} ${String(throughput).padStart(7)} tasks/s  p99 ${p99} ms`);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (let round = 0; round < Number(values.rounds); round++) {
  // Alternate which goes first, so neither always runs on a warmer (or hotter) machine.
  for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) runOnce(mode);
}
console.log(`\nmedians over ${values.rounds} alternated rounds, ${values.tasks} noop tasks each, ${values.replicas} replicas${values["data-dir"] ? ", --data-dir" : ""}`);
// Per-round ratios too: each compares two runs a few seconds apart, so slow drifts of the
// machine's load cancel out in them, where the medians of each side do not.
console.log("in flight  static tasks/s  etcd tasks/s  etcd/static  median of round ratios  static p99 ms  etcd p99 ms");
for (const c of values.concurrency!.split(",")) {
  const s = results.get(`static ${c}`)!;
  const e = results.get(`etcd ${c}`)!;
  const st = median(s.map((r) => r.throughput));
  const et = median(e.map((r) => r.throughput));
  const roundRatio = median(e.map((r, i) => r.throughput / s[i]!.throughput));
  console.log(`${c.padStart(9)}  ${String(st).padStart(14)}  ${String(et).padStart(12)}  ${(et / st).toFixed(3).padStart(11)}  ${roundRatio.toFixed(3).padStart(22)}  ${String(median(s.map((r) => r.p99))).padStart(12)}  ${String(median(e.map((r) => r.p99))).padStart(11)}`);
}
