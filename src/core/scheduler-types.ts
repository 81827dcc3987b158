// The scheduler's public shapes: options, requests, outcomes, effects and
// counters. The state machine itself is scheduler.ts.

import type { Backoff, Task, Watcher } from "./task.ts";
import type { DependencyRef } from "./workflow.ts";

export interface SchedulerOptions {
  shard: number;
  /** Unfinished tasks a shard holds before E_QUEUE_FULL. */
  queueMax: number;
  /** Completed and cancelled tasks kept for queries; oldest evicted first. */
  retainedMax: number;
  /** ... and for at most this long after they ended. */
  retainedMs: number;
  /** Failed tasks kept in the dead-letter queue; oldest evicted first. */
  dlqMax: number;
  /** How long a lease lasts without a heartbeat naming its task. */
  leaseMs: number;
  /** A worker silent this long is declared lost and its leases end. */
  workerTimeoutMs: number;
  defaultTimeoutMs: number;
  defaultMaxAttempts: number;
  /** Waiting this long counts as one priority level (starvation freedom). */
  agingMs: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: Omit<SchedulerOptions, "shard"> = {
  queueMax: 1_000_000,
  retainedMax: 200_000,
  retainedMs: 3_600_000,
  dlqMax: 100_000,
  leaseMs: 5_000,
  workerTimeoutMs: 3_000,
  defaultTimeoutMs: 60_000,
  defaultMaxAttempts: 3,
  agingMs: 1_000,
};

export const NO_BACKOFF: Backoff = { type: "fixed", delayMs: 0, maxDelayMs: 0 };

export interface SubmitRequest {
  type: string;
  /** Owned by the scheduler from now on. */
  payload: Uint8Array;
  priority: number;
  /** 0: the default. */
  maxAttempts: number;
  /** 0: the default. */
  timeoutMs: number;
  /** "": none. */
  idempotencyKey: string;
  /** Connection to tell when the task ends (0: none) and the request id to use. */
  watcher: number;
  watchRequestId: number;
  /** Absolute time; 0: none. */
  deadline?: number;
  /** Not before this absolute time; 0: now. */
  runAt?: number;
  backoff?: Backoff;
  tags?: readonly string[];
  dependsOn?: readonly number[];
}

export type Refusal = { ok: false; code: "E_QUEUE_FULL" | "E_BAD_REQUEST" | "E_UNKNOWN_TASK" | "E_CYCLE"; message: string };

export type SubmitOutcome = { ok: true; taskId: number; duplicate: boolean } | Refusal;

export type WorkflowOutcome = { ok: true; taskIds: number[] } | Refusal;

export interface WorkflowNodeRequest extends Omit<SubmitRequest, "dependsOn" | "watcher" | "watchRequestId"> {
  dependsOn: readonly DependencyRef[];
}

export interface WorkerState {
  readonly id: number;
  /** Its credit here: tasks it may hold leased at once (the worker moves it with CREDIT). */
  slots: number;
  readonly tags: readonly string[];
  readonly tagSet: ReadonlySet<string>;
  /** The task types it handles; undefined: any (a worker registered before workers announced types). */
  readonly types: readonly string[] | undefined;
  readonly typeSet: ReadonlySet<string> | undefined;
  free: number;
  lastSeenAt: number;
  done: number;
  failed: number;
  readonly leased: Set<Task>;
  /** Shutting down: finishes what it has, gets nothing new. */
  draining: boolean;
}

export interface Notice {
  task: Task;
  watcher: Watcher;
}

/** Effects of the events since the last takeReady(). */
export interface Ready {
  /** Tasks to send to each worker, in order. */
  assignments: Map<number, Task[]>;
  /** Tasks that ended (completed, failed for good, cancelled). */
  finished: Task[];
  /** Tasks whose attempt failed and that will be retried (the failure is their last error). */
  retried: Task[];
  /** Watchers to tell that their task ended (also for a watch of a task already ended). */
  notices: Notice[];
  /** Running tasks whose worker should abort them (cancelled). */
  aborts: Array<{ workerId: number; taskId: number; attempt: number }>;
  /** Workers declared lost by tick(): the shell closes their connections. */
  lostWorkers: number[];
}

export interface SchedulerCounters {
  submitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  retried: number;
  deadlineMissed: number;
  rejectedQueueFull: number;
  duplicates: number;
  staleResults: number;
  expiredLeases: number;
}
