// The coordinator's scheduler as a pure state machine: events in (submit,
// worker joined/left, result, heartbeat, tick with the time), effects out
// (assignments per worker, finished tasks to report), like raft's Ready.
// No IO and no clock: `now` is always an argument, so a simulation can drive it.
//
// Lifecycle: queued -> leased (attempt n, lease until min(now + leaseMs,
// leasedAt + timeoutMs), extended by heartbeats) -> completed | failed, where a
// failed or expired attempt goes back to queued until maxAttempts is reached.

import { Deque } from "./deque.ts";
import { PRIORITY_LEVELS, ReadyQueue } from "./ready-queue.ts";
import { makeTaskId, type Task } from "./task.ts";
import type { SchedulerState } from "./scheduler-state.ts";

export interface SchedulerOptions {
  shard: number;
  /** Unfinished tasks (queued + leased) a shard holds before E_QUEUE_FULL. */
  queueMax: number;
  /** Finished tasks kept for status and result queries; oldest evicted first. */
  retainedMax: number;
  /** How long a lease lasts without a heartbeat from its worker. */
  leaseMs: number;
  /** A worker silent this long is declared lost and its leases end. */
  workerTimeoutMs: number;
  defaultTimeoutMs: number;
  defaultMaxAttempts: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: Omit<SchedulerOptions, "shard"> = {
  queueMax: 1_000_000,
  retainedMax: 200_000,
  leaseMs: 5_000,
  workerTimeoutMs: 3_000,
  defaultTimeoutMs: 60_000,
  defaultMaxAttempts: 3,
};

const utf8 = new TextDecoder();

/** Errors kept per task: enough to debug, bounded for poison tasks. */
const ERRORS_KEPT_MAX = 16;

export interface SubmitRequest {
  type: string;
  /** Must be owned by the caller's side no longer: the scheduler keeps it. */
  payload: Uint8Array;
  priority: number;
  /** 0: the default. */
  maxAttempts: number;
  /** 0: the default. */
  timeoutMs: number;
  /** "": none. */
  idempotencyKey: string;
  /** Connection to notify at the end (0: none) and the request id to use. */
  watcher: number;
  watchRequestId: number;
}

export type SubmitOutcome =
  | { ok: true; taskId: number; duplicate: boolean }
  | { ok: false; code: "E_QUEUE_FULL" | "E_BAD_REQUEST"; message: string };

export interface WorkerState {
  readonly id: number;
  readonly slots: number;
  readonly tags: readonly string[];
  free: number;
  lastSeenAt: number;
  done: number;
  failed: number;
  readonly leased: Set<Task>;
}

/** Effects of the events since the last takeReady(). */
export interface Ready {
  /** Tasks to send to each worker, in order. */
  assignments: Map<number, Task[]>;
  /** Tasks that ended (completed or failed for good), or were resubmitted after ending; the shell tells watchers. */
  finished: Task[];
  /** Workers declared lost by tick(): the shell closes their connections. */
  lostWorkers: number[];
}

export interface SchedulerCounters {
  submitted: number;
  completed: number;
  failed: number;
  retried: number;
  rejectedQueueFull: number;
  duplicates: number;
  staleResults: number;
  expiredLeases: number;
}

export class Scheduler {
  readonly options: SchedulerOptions;
  readonly counters: SchedulerCounters = {
    submitted: 0, completed: 0, failed: 0, retried: 0,
    rejectedQueueFull: 0, duplicates: 0, staleResults: 0, expiredLeases: 0,
  };
  private readonly tasks = new Map<number, Task>();
  private readonly byIdempotencyKey = new Map<string, number>();
  private readonly ready = new ReadyQueue();
  private readonly finishedOrder = new Deque<Task>(1024);
  private readonly workers = new Map<number, WorkerState>();
  private workerRotation = 0;
  private nextSeq = 1;
  private leasedCount = 0;
  private effects: Ready = emptyReady();

  constructor(options: SchedulerOptions) {
    this.options = options;
  }

  // ------------------------------------------------------------------ queries

  get queuedCount(): number {
    return this.ready.length;
  }
  get leasedTotal(): number {
    return this.leasedCount;
  }
  get retainedCount(): number {
    return this.finishedOrder.length;
  }
  task(taskId: number): Task | undefined {
    return this.tasks.get(taskId);
  }
  worker(workerId: number): WorkerState | undefined {
    return this.workers.get(workerId);
  }
  allWorkers(): IterableIterator<WorkerState> {
    return this.workers.values();
  }

  /** Hands over the effects gathered so far and starts a new batch. */
  takeReady(): Ready {
    const ready = this.effects;
    this.effects = emptyReady();
    return ready;
  }

  // ------------------------------------------------------------------ events

  submit(req: SubmitRequest, now: number): SubmitOutcome {
    if (req.type.length === 0) return { ok: false, code: "E_BAD_REQUEST", message: "task type must not be empty" };
    if (!Number.isInteger(req.priority) || req.priority < 0 || req.priority >= PRIORITY_LEVELS) {
      return { ok: false, code: "E_BAD_REQUEST", message: `priority must be an integer from 0 to ${PRIORITY_LEVELS - 1}` };
    }
    if (req.idempotencyKey !== "") {
      const existingId = this.byIdempotencyKey.get(req.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.tasks.get(existingId);
      if (existing !== undefined) return this.resubmitted(existing, req);
    }
    if (this.ready.length + this.leasedCount >= this.options.queueMax) {
      this.counters.rejectedQueueFull++;
      return { ok: false, code: "E_QUEUE_FULL", message: `shard ${this.options.shard} holds ${this.options.queueMax} unfinished tasks, its limit` };
    }
    const task: Task = {
      id: makeTaskId(this.options.shard, this.nextSeq++),
      type: req.type,
      payload: req.payload,
      priority: req.priority,
      maxAttempts: req.maxAttempts > 0 ? req.maxAttempts : this.options.defaultMaxAttempts,
      timeoutMs: req.timeoutMs > 0 ? req.timeoutMs : this.options.defaultTimeoutMs,
      idempotencyKey: req.idempotencyKey,
      submittedAt: now,
      state: "queued",
      attempt: 0,
      workerId: 0,
      leasedAt: 0,
      leaseExpiresAt: 0,
      watcher: req.watcher,
      watchRequestId: req.watchRequestId,
      output: undefined,
      errors: [],
      finishedAt: 0,
    };
    this.tasks.set(task.id, task);
    if (task.idempotencyKey !== "") this.byIdempotencyKey.set(task.idempotencyKey, task.id);
    this.ready.push(task);
    this.counters.submitted++;
    return { ok: true, taskId: task.id, duplicate: false };
  }

  /** A retried submission: same task; the newest submitter becomes the watcher. */
  private resubmitted(task: Task, req: SubmitRequest): SubmitOutcome {
    this.counters.duplicates++;
    if (req.watcher !== 0) {
      task.watcher = req.watcher;
      task.watchRequestId = req.watchRequestId;
      if (task.state === "completed" || task.state === "failed") this.effects.finished.push(task);
    }
    return { ok: true, taskId: task.id, duplicate: true };
  }

  workerJoined(workerId: number, slots: number, tags: readonly string[], now: number): void {
    if (this.workers.has(workerId)) throw new Error(`worker ${workerId} joined twice`);
    this.workers.set(workerId, { id: workerId, slots, tags, free: slots, lastSeenAt: now, done: 0, failed: 0, leased: new Set() });
  }

  /** The worker is gone: each of its leases ends as a failed attempt. */
  workerLeft(workerId: number, now: number): void {
    const worker = this.workers.get(workerId);
    if (worker === undefined) return;
    this.workers.delete(workerId);
    for (const task of worker.leased) this.endAttempt(task, worker, "E_WORKER_LOST: worker went away", now);
  }

  /**
   * A heartbeat keeps the worker alive and extends the leases of the tasks it
   * says it is running (never past each task's timeout). A lease it does not
   * mention (its result was lost with a crashed primary, say) is left to expire
   * after leaseMs and the task is retried. `running` undefined: extend all.
   */
  heartbeat(workerId: number, now: number, running?: readonly number[]): void {
    const worker = this.workers.get(workerId);
    if (worker === undefined) return;
    worker.lastSeenAt = now;
    const mentioned = running === undefined ? undefined : new Set(running);
    for (const task of worker.leased) {
      if (mentioned === undefined || mentioned.has(task.id)) task.leaseExpiresAt = this.leaseEnd(task, now);
    }
  }

  /** The outcome of one lease. Stale results (wrong attempt, unknown task) are counted and dropped. */
  result(workerId: number, taskId: number, attempt: number, ok: boolean, output: Uint8Array, now: number): void {
    const worker = this.workers.get(workerId);
    if (worker !== undefined) worker.lastSeenAt = now;
    const task = this.tasks.get(taskId);
    if (task === undefined || task.state !== "leased" || task.attempt !== attempt || task.workerId !== workerId || worker === undefined) {
      this.counters.staleResults++;
      return;
    }
    if (ok) {
      this.releaseLease(task, worker);
      worker.done++;
      task.output = output;
      this.finish(task, "completed", now);
    } else {
      worker.failed++;
      this.endAttempt(task, worker, utf8.decode(output), now);
    }
  }

  /** Time passes: lost workers are dropped and expired leases end. */
  tick(now: number): void {
    for (const worker of this.workers.values()) {
      if (now - worker.lastSeenAt > this.options.workerTimeoutMs) {
        this.effects.lostWorkers.push(worker.id);
        this.workerLeft(worker.id, now);
        continue;
      }
      for (const task of worker.leased) {
        if (task.leaseExpiresAt <= now) {
          this.counters.expiredLeases++;
          const why = now >= task.leasedAt + task.timeoutMs
            ? `ran past its ${task.timeoutMs} ms timeout`
            : `lease expired: no heartbeat from worker ${worker.id} for ${this.options.leaseMs} ms`;
          this.endAttempt(task, worker, `E_TIMEOUT: attempt ${task.attempt} ${why}`, now);
        }
      }
    }
  }

  /** Leases queued tasks to workers with free slots, spreading them evenly. */
  dispatch(now: number): void {
    if (this.ready.length === 0 || this.workers.size === 0) return;
    const workers = [...this.workers.values()];
    const start = this.workerRotation++ % workers.length;
    for (let pass = 0; pass < workers.length && this.ready.length > 0; pass++) {
      let withFree = 0;
      for (const w of workers) if (w.free > 0) withFree++;
      if (withFree === 0) return;
      const share = Math.ceil(this.ready.length / withFree);
      for (let k = 0; k < workers.length && this.ready.length > 0; k++) {
        const worker = workers[(start + k) % workers.length]!;
        const take = Math.min(worker.free, share, this.ready.length);
        for (let i = 0; i < take; i++) this.lease(this.ready.pop()!, worker, now);
      }
    }
  }

  /**
   * This node became primary: no connection of the old primary exists here, so
   * nobody watches any task, and every worker and lease gets a fresh grace
   * period from `now` (the old primary's clock no longer counts).
   */
  promoted(now: number): void {
    for (const task of this.tasks.values()) {
      task.watcher = 0;
      task.watchRequestId = 0;
    }
    for (const worker of this.workers.values()) {
      worker.lastSeenAt = now;
      for (const task of worker.leased) task.leaseExpiresAt = this.leaseEnd(task, now);
    }
  }

  // ------------------------------------------------------------------ snapshots

  /** The whole replicated state as plain data, in the orders that make replay after restore identical. */
  exportState(): SchedulerState {
    return {
      nextSeq: this.nextSeq,
      workerRotation: this.workerRotation,
      counters: { ...this.counters },
      tasks: [...this.tasks.values()].map((t) => ({ ...t, errors: [...t.errors] })),
      ready: [...this.ready].map((t) => t.id),
      finished: [...this.finishedOrder].map((t) => t.id),
      workers: [...this.workers.values()].map((w) => ({
        id: w.id, slots: w.slots, tags: [...w.tags], free: w.free, lastSeenAt: w.lastSeenAt,
        done: w.done, failed: w.failed, leased: [...w.leased].map((t) => t.id),
      })),
    };
  }

  /** A scheduler in exactly the state `exportState()` described. Throws on an inconsistent state. */
  static fromState(options: SchedulerOptions, state: SchedulerState): Scheduler {
    const s = new Scheduler(options);
    s.nextSeq = state.nextSeq;
    s.workerRotation = state.workerRotation;
    Object.assign(s.counters, state.counters);
    for (const record of state.tasks) {
      const task: Task = { ...record, errors: [...record.errors] };
      s.tasks.set(task.id, task);
      if (task.idempotencyKey !== "") s.byIdempotencyKey.set(task.idempotencyKey, task.id);
    }
    const lookup = (id: number): Task => {
      const task = s.tasks.get(id);
      if (task === undefined) throw new Error(`snapshot names task ${id} but does not hold it`);
      return task;
    };
    for (const id of state.ready) s.ready.push(lookup(id));
    for (const id of state.finished) s.finishedOrder.push(lookup(id));
    for (const w of state.workers) {
      const leased = new Set(w.leased.map(lookup));
      s.workers.set(w.id, { id: w.id, slots: w.slots, tags: w.tags, free: w.free, lastSeenAt: w.lastSeenAt, done: w.done, failed: w.failed, leased });
      s.leasedCount += leased.size;
    }
    return s;
  }

  // ------------------------------------------------------------------ internals

  private lease(task: Task, worker: WorkerState, now: number): void {
    task.state = "leased";
    task.attempt++;
    task.workerId = worker.id;
    task.leasedAt = now;
    task.leaseExpiresAt = this.leaseEnd(task, now);
    worker.free--;
    worker.leased.add(task);
    this.leasedCount++;
    let batch = this.effects.assignments.get(worker.id);
    if (batch === undefined) this.effects.assignments.set(worker.id, (batch = []));
    batch.push(task);
  }

  private leaseEnd(task: Task, now: number): number {
    return Math.min(now + this.options.leaseMs, task.leasedAt + task.timeoutMs);
  }

  private releaseLease(task: Task, worker: WorkerState): void {
    worker.leased.delete(task);
    worker.free++;
    this.leasedCount--;
    task.workerId = 0;
  }

  /** A lease ended without success: retry while attempts remain, else fail for good. */
  private endAttempt(task: Task, worker: WorkerState, error: string, now: number): void {
    this.releaseLease(task, worker);
    if (task.errors.length >= ERRORS_KEPT_MAX) task.errors.shift();
    task.errors.push(error);
    if (task.attempt >= task.maxAttempts) {
      this.finish(task, "failed", now);
      return;
    }
    this.counters.retried++;
    task.state = "queued";
    this.ready.push(task);
  }

  private finish(task: Task, state: "completed" | "failed", now: number): void {
    task.state = state;
    task.finishedAt = now;
    if (state === "completed") this.counters.completed++;
    else this.counters.failed++;
    this.effects.finished.push(task);
    this.finishedOrder.push(task);
    while (this.finishedOrder.length > this.options.retainedMax) this.forget(this.finishedOrder.shift()!);
  }

  private forget(task: Task): void {
    this.tasks.delete(task.id);
    if (task.idempotencyKey !== "" && this.byIdempotencyKey.get(task.idempotencyKey) === task.id) {
      this.byIdempotencyKey.delete(task.idempotencyKey);
    }
  }
}

function emptyReady(): Ready {
  return { assignments: new Map(), finished: [], lostWorkers: [] };
}
