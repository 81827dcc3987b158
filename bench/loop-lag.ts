// Event-loop stall meter, loaded into any of our processes run from source:
//
//   bun --preload ./bench/loop-lag.ts bin/coordinator.ts -p 5000
//
// A 5 ms timer notes every time it fires more than 20 ms late (LOOP_LAG_MS=N to
// change; the process was busy: a long batch, or a garbage-collection pause)
// and prints the stalls to stderr on SIGTERM or exit; LOOP_LAG_LIST=1 lists
// each with the time it ended, to line up the stalls of several processes. With BUN_JSC_logGC=1 in the environment, Bun's
// engine also logs each collection and how long it took, to line them up.

const STALL_MS = Number(process.env.LOOP_LAG_MS ?? 20);
const TICK_MS = 5;
const name = process.argv[1]?.split("/").pop() ?? "process";
/** Each stall: how long, and when it ended (ms since the epoch, to line up with other processes' stalls). */
const stalls: Array<{ ms: number; at: number }> = [];
let last = performance.now();

setInterval(() => {
  const now = performance.now();
  const late = now - last - TICK_MS;
  if (late > STALL_MS) stalls.push({ ms: Math.round(late), at: Math.round(performance.timeOrigin + now) });
  last = now;
}, TICK_MS).unref();

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  const worst = [...stalls].sort((a, b) => b.ms - a.ms).slice(0, 20).map((s) => s.ms);
  process.stderr.write(`loop-lag ${name} (pid ${process.pid}): ${stalls.length} stalls over ${STALL_MS} ms; worst: ${worst.join(", ") || "none"}\n`);
  if (process.env.LOOP_LAG_LIST) process.stderr.write(`loop-lag ${name} stalls (ms@epoch-ms): ${stalls.map((s) => `${s.ms}@${s.at}`).join(" ")}\n`);
}

process.once("SIGTERM", () => {
  report();
  process.exit(0);
});
process.once("beforeExit", report);
process.once("exit", report); // a process that ends with process.exit() (the client) skips beforeExit
