// What the primary observes of tasks beside the log: how long finished ones
// took (the recent window stats report, and the histogram /metrics exports),
// and the progress workers report for running ones. Runtime only, like
// connections: never logged, lost on failover.

import type { Logger } from "../cli/log.ts";
import type { Task } from "../core/task.ts";
import { LatencyBuckets } from "../metrics/latency-buckets.ts";
import { RecentLatency } from "./recent-latency.ts";

/** Stats report the latency of tasks finished within about this long. */
const LATENCY_WINDOW_MS = 5_000;

export class TaskObservations {
  readonly latency = new RecentLatency(LATENCY_WINDOW_MS);
  readonly latencyBuckets = new LatencyBuckets();
  private readonly progress = new Map<number, number>();

  constructor(
    private readonly log: Logger,
    /** A progress report kept: task events pass it on to subscribers. */
    private readonly onProgress: (task: Task, progress: number) => void = () => {},
  ) {}

  /** Tasks that just ended: their latency counts, their progress is forgotten, a dead letter is logged. */
  finished(tasks: readonly Task[], now: number): void {
    for (const task of tasks) {
      this.latency.record(now, now - task.submittedAt);
      this.latencyBuckets.record(now - task.submittedAt);
      this.progress.delete(task.id);
      if (task.state === "failed") {
        const last = task.errors.at(-1);
        this.log.warn("task dead-lettered", { taskId: task.id, type: task.type, attempts: task.attempt, code: last?.code, error: last?.message.split("\n")[0] });
      }
    }
  }

  /** PROGRESS from a worker: kept only for the attempt that runs now, clamped to [0, 1]. */
  reported(task: Task | undefined, attempt: number, progress: unknown): void {
    if (task?.state !== "leased" || task.attempt !== attempt) return;
    const value = Math.min(1, Math.max(0, Number(progress) || 0));
    this.progress.set(task.id, value);
    this.onProgress(task, value);
  }

  progressOf(taskId: number): number | undefined {
    return this.progress.get(taskId);
  }
}
