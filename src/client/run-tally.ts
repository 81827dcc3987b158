// What both load generators (closed and open loop) count as tasks end, and the
// report they build from it: one place for the outcome rules (a failed task
// counts its error, a completed one its latency and, for word count, its words).

import { decode } from "@msgpack/msgpack";
import type { TaskOutcome } from "../sdk/client.ts";
import type { AttemptCounters } from "./connection-pool.ts";
import { newLatencyHistogram, summarizeLatency } from "./latency-histogram.ts";
import type { LoadReport } from "./load.ts";

export class RunTally {
  /** Refusals and lost connections across every task's attempts (runWithRetries adds to it). */
  readonly counters: AttemptCounters = { retried: 0, errors: {} };
  completed = 0;
  private failed = 0;
  private words = 0;
  private readonly histogram = newLatencyHistogram();

  constructor(private readonly expectedWords: number | undefined) {}

  /** One task ended: `outcome` undefined when every attempt was refused or lost; `latencyUs` asked only on success. */
  record(outcome: TaskOutcome | undefined, latencyUs: () => number): void {
    if (outcome === undefined || !outcome.ok) {
      this.failed++;
      if (outcome?.error) this.counters.errors.E_TASK_FAILED = (this.counters.errors.E_TASK_FAILED ?? 0) + 1;
      return;
    }
    this.histogram.recordValue(latencyUs());
    this.completed++;
    if (this.expectedWords !== undefined) this.words += decode(outcome.output) as number;
  }

  /** The report; tasks not completed by a run that timed out count as failed. Call once: it frees the histogram. */
  report(run: { workload: string; tasks: number; concurrency: number; durationMs: number; timedOut: boolean; interrupted?: boolean }): LoadReport {
    const report: LoadReport = {
      workload: run.workload,
      tasks: run.tasks,
      concurrency: run.concurrency,
      completed: this.completed,
      failed: run.timedOut ? run.tasks - this.completed : this.failed,
      retried: this.counters.retried,
      durationMs: Math.round(run.durationMs),
      throughput: Math.round((this.completed / run.durationMs) * 1000),
      latencyMs: summarizeLatency(this.histogram),
      errors: this.counters.errors,
      timedOut: run.timedOut,
      ...(run.interrupted === true && { interrupted: true }),
    };
    if (this.expectedWords !== undefined) {
      report.wordCount = this.words;
      report.wordCountExpected = this.expectedWords;
    }
    this.histogram.destroy();
    return report;
  }
}

/** The idempotency key of task i of a run ("" when keys are off). */
export function taskKey(prefix: string, i: number): string {
  return prefix === "" ? "" : `${prefix}${i}`;
}
