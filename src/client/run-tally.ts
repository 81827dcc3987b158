// What both load generators (closed and open loop) count as tasks end, and the
// report they build from it: one place for the outcome rules (a failed task
// counts its error, a completed one its latency and, for word count, its words).

import { decode } from "@msgpack/msgpack";
import type { TaskOutcome } from "../sdk/client.ts";
import type { AttemptCounters } from "./connection-pool.ts";
import { newLatencyHistogram, summarizeLatency } from "./latency-histogram.ts";
import type { LoadReport } from "./load.ts";

export interface RunProgress {
  completed: number;
  failed: number;
  retried: number;
  p99Ms: number;
  /** Refusals and lost connections so far (each is retried unless the task ran out of attempts). */
  errors: number;
}

/**
 * The live line a run shows on a terminal: ended/total, rate since the start,
 * p99 so far and what went wrong. `elapsedMs` since the run started.
 */
export function progressLine(p: RunProgress, total: number, elapsedMs: number): string {
  const ended = p.completed + p.failed;
  const percent = total > 0 ? Math.floor((ended / total) * 100) : 0;
  const rate = elapsedMs > 0 ? Math.round((p.completed / elapsedMs) * 1000) : 0;
  return `${ended}/${total} (${percent}%)  ${rate} tasks/s  p99 ${p.p99Ms} ms  failed ${p.failed}  retried ${p.retried}  errors ${p.errors}`;
}

const EMPTY = new Uint8Array(0);

export class RunTally {
  /** Refusals and lost connections across every task's attempts (task-sender.ts adds to it). */
  readonly counters: AttemptCounters = { retried: 0, errors: {} };
  completed = 0;
  private failed = 0;
  private words = 0;
  private readonly histogram = newLatencyHistogram();
  /** The client's own CPU when the measured run began: its cost per task goes in the report. */
  private cpuAtStart: NodeJS.CpuUsage | undefined;

  constructor(private readonly expectedWords: number | undefined) {}

  /** The measured run begins now (after its connections are dialled). */
  started(): void {
    this.cpuAtStart = process.cpuUsage();
  }

  /** So far, for the live progress line: tasks ended, how they ended, and the p99 latency (ms). */
  progress(): RunProgress {
    const failed = this.failed;
    const p99Ms = this.histogram.totalCount === 0 ? 0 : Math.round(this.histogram.getValueAtPercentile(99)) / 1000;
    return { completed: this.completed, failed, retried: this.counters.retried, p99Ms, errors: Object.values(this.counters.errors).reduce((a, b) => a + b, 0) };
  }

  /** One task ended: `outcome` undefined when every attempt was refused or lost; `latencyUs` asked only on success. */
  record(outcome: TaskOutcome | undefined, latencyUs: () => number): void {
    if (outcome === undefined) return this.ended(false, false, EMPTY, 0);
    this.ended(outcome.ok, true, outcome.output, outcome.ok ? latencyUs() : 0);
  }

  /**
   * One task ended (the load loops' callback path): `ran` false when every attempt
   * was refused or lost, else it ran and `ok` says how; `output` its result (a view).
   */
  ended(ok: boolean, ran: boolean, output: Uint8Array, latencyUs: number): void {
    if (!ok) {
      this.failed++;
      if (ran) this.counters.errors.E_TASK_FAILED = (this.counters.errors.E_TASK_FAILED ?? 0) + 1;
      return;
    }
    this.histogram.recordValue(latencyUs);
    this.completed++;
    if (this.expectedWords !== undefined) this.words += decode(output) as number;
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
      ...(this.cpuAtStart !== undefined && { clientCpuUsPerTask: cpuUsPerTask(process.cpuUsage(this.cpuAtStart), this.completed + this.failed) }),
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

/** The client's CPU (user + system) per task that ended, in µs: a load generator that costs more than the system it measures caps the figure. */
function cpuUsPerTask(used: NodeJS.CpuUsage, tasks: number): number {
  return Math.round(((used.user + used.system) / Math.max(1, tasks)) * 10) / 10;
}
