// How busy the machine was with other people's work while a benchmark ran: all
// CPU time used (/proc/stat) less what this process and its descendants used
// (/proc/<pid>/stat, counting children already reaped). The machine is shared;
// a figure measured while others used a core is not comparable, and this says so.

import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";

interface Sample {
  busyTicks: number;
  oursTicks: number;
  atMs: number;
}

/** Clock ticks per second of /proc's counters (USER_HZ; 100 on Linux everywhere we run). */
const TICKS_PER_S = 100;

function busyTicks(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait.
  return fields.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
}

/** [ppid, utime + stime + cutime + cstime] of a process, or undefined when it is gone. */
function procTimes(pid: number): [number, number] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return [Number(f[1]), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])];
  } catch {
    return undefined;
  }
}

function oursTicks(): number {
  const children = new Map<number, number[]>();
  const times = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const t = procTimes(pid);
    if (t === undefined) continue;
    times.set(pid, t[1]);
    children.set(t[0], [...(children.get(t[0]) ?? []), pid]);
  }
  let total = 0;
  const stack = [process.pid];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    total += times.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

export function sampleCpu(): Sample | undefined {
  try {
    return { busyTicks: busyTicks(), oursTicks: oursTicks(), atMs: performance.now() };
  } catch {
    return undefined; // not Linux: no figure rather than a wrong one
  }
}

/** Percent of one core that other processes used on average between two samples (200 = both of 2 cores). */
export function othersCorePercent(from: Sample | undefined, to: Sample | undefined): number | undefined {
  if (from === undefined || to === undefined || to.atMs <= from.atMs) return undefined;
  const others = Math.max(0, to.busyTicks - from.busyTicks - (to.oursTicks - from.oursTicks));
  return Math.round((others / TICKS_PER_S / ((to.atMs - from.atMs) / 1000)) * 100);
}

export const coreCount = (): number => cpus().length;

/**
 * Waits until other processes use less than `thresholdPercent` of a core over
 * one `windowMs` window, for at most `maxMs`; resolves with the last figure
 * (undefined where it cannot be measured). A benchmark on a shared machine
 * starts each measurement in a quiet moment this way, or says it could not.
 */
export async function waitForQuiet(thresholdPercent: number, maxMs: number, windowMs = 1000): Promise<number | undefined> {
  const until = performance.now() + maxMs;
  for (;;) {
    const from = sampleCpu();
    await Bun.sleep(windowMs);
    const pct = othersCorePercent(from, sampleCpu());
    if (pct === undefined || pct < thresholdPercent || performance.now() >= until) return pct;
  }
}
