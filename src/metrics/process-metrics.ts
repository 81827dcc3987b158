// Process and runtime series every metrics port exports: CPU, memory and
// event-loop lag. The sampler reads the runtime; the rendering is pure.
//
// GC pause time is not exported: Bun 1.4 has no GC timing hook (bun:jsc offers
// heap sizes and forced collections only, and PerformanceObserver knows mark,
// measure and resource entries, not "gc").

import { Exposition } from "./prometheus.ts";

export interface ProcessSample {
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  residentBytes: number;
  heapUsedBytes: number;
  /** Largest event-loop lag seen in the last window (see LAG_WINDOW_MS). */
  eventLoopLagMaxSeconds: number;
}

/** How often the lag timer fires: its delay past this is the lag. */
export const LAG_TICK_MS = 100;
/** The lag gauge is the max over this window, so a scrape every 15 s still sees a one-off stall. */
export const LAG_WINDOW_MS = 30_000;

const P = "taskscheduler_process_";

/** Renders one sample; `labels` name the process (process kind and node id). */
export function processMetrics(s: ProcessSample, labels: Record<string, string>): string {
  const e = new Exposition();
  e.add(`${P}cpu_seconds_total`, "counter", "CPU time spent (process.cpuUsage), by mode", s.cpuUserSeconds, { ...labels, mode: "user" });
  e.add(`${P}cpu_seconds_total`, "counter", "CPU time spent (process.cpuUsage), by mode", s.cpuSystemSeconds, { ...labels, mode: "system" });
  e.add(`${P}resident_memory_bytes`, "gauge", "resident set size", s.residentBytes, labels);
  e.add(`${P}heap_used_bytes`, "gauge", "JavaScript heap in use", s.heapUsedBytes, labels);
  e.add(`${P}event_loop_lag_max_seconds`, "gauge", `largest delay of a ${LAG_TICK_MS} ms timer past its due time over the last ${LAG_WINDOW_MS / 1000} s`, s.eventLoopLagMaxSeconds, labels);
  return e.text();
}

/** Keeps the event-loop lag timer; started on first use, unref'd so it never holds a process open. */
export class ProcessSampler {
  /** Max lag per half window; the gauge is the max of the current and the previous half. */
  private lagCurrentMs = 0;
  private lagPreviousMs = 0;
  private halfStartedAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  sample(): ProcessSample {
    this.start();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      cpuUserSeconds: cpu.user / 1e6,
      cpuSystemSeconds: cpu.system / 1e6,
      residentBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      eventLoopLagMaxSeconds: Math.max(this.lagCurrentMs, this.lagPreviousMs) / 1000,
    };
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.halfStartedAt = performance.now();
    this.schedule(performance.now());
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(scheduledAt: number): void {
    this.timer = setTimeout(() => {
      const now = performance.now();
      this.record(Math.max(0, now - scheduledAt - LAG_TICK_MS), now);
      this.schedule(now);
    }, LAG_TICK_MS);
    this.timer.unref?.();
  }

  private record(lagMs: number, now: number): void {
    if (now - this.halfStartedAt >= LAG_WINDOW_MS / 2) {
      this.lagPreviousMs = this.lagCurrentMs;
      this.lagCurrentMs = 0;
      this.halfStartedAt = now;
    }
    this.lagCurrentMs = Math.max(this.lagCurrentMs, lagMs);
  }
}

/** One sampler per process: every port of it reports the same runtime. */
export const PROCESS_SAMPLER = new ProcessSampler();
