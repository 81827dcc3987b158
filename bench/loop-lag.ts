// Event-loop stall meter, loaded into any of our processes run from source:
//
//   bun --preload ./bench/loop-lag.ts bin/coordinator.ts -p 5000
//
// A 5 ms timer notes every time it fires more than 20 ms late (the process was
// busy: a long batch, or a garbage-collection pause) and prints the stalls to
// stderr on SIGTERM or exit. With BUN_JSC_logGC=1 in the environment, Bun's
// engine also logs each collection and how long it took, to line them up.

const STALL_MS = 20;
const TICK_MS = 5;
const name = process.argv[1]?.split("/").pop() ?? "process";
const stalls: number[] = [];
let last = performance.now();

setInterval(() => {
  const now = performance.now();
  const late = now - last - TICK_MS;
  if (late > STALL_MS) stalls.push(Math.round(late));
  last = now;
}, TICK_MS).unref();

function report(): void {
  const worst = [...stalls].sort((a, b) => b - a).slice(0, 20);
  process.stderr.write(`loop-lag ${name} (pid ${process.pid}): ${stalls.length} stalls over ${STALL_MS} ms; worst: ${worst.join(", ") || "none"}\n`);
}

process.once("SIGTERM", () => {
  report();
  process.exit(0);
});
process.once("beforeExit", report);
