// How a task moves between states, keeping the scheduler's counts and queues
// in step: placed (waiting on parents, delayed or queued), leased, an attempt
// ended (retried or failed), finished (retained, or dead-lettered), forgotten.
// The Scheduler (scheduler.ts) decides *when* from its inputs; these are the
// moves themselves, and what each tells the shell (the Ready effects).

import { assert } from "./assert.ts";
import { retryDelayMs } from "./backoff-policy.ts";
import type { SchedulerTables } from "./scheduler-tables.ts";
import type { Ready, SchedulerOptions, WorkerState } from "./scheduler-types.ts";
import { appended, emptyList, isFinal, shardOfTask, type AttemptError, type Task, type Watcher } from "./task.ts";

/** Errors kept per task: enough to debug, bounded for poison tasks. */
const ERRORS_KEPT_MAX = 16;
/** Requests waiting on one task at most: a bound on what repeated duplicate submissions can make it hold. */
export const WATCHERS_MAX = 1024;
/** The error of a task failed by a parent (recorded without an attempt); requeue() looks for it. */
export const E_DEPENDENCY = "E_DEPENDENCY";

export class Lifecycle {
  /** What the moves since the last takeReady() tell the shell. */
  effects: Ready = emptyReady();

  constructor(
    private readonly held: SchedulerTables,
    private readonly options: SchedulerOptions,
  ) {}

  /** Hands over the effects gathered so far and starts a new batch. */
  takeReady(): Ready {
    const ready = this.effects;
    this.effects = emptyReady();
    return ready;
  }

  /**
   * A new (or requeued, see requeue()) task's first state: failed with its
   * parent, waiting on parents, delayed, or queued. A new task's parents are
   * all held (validate()); a requeued one's may have been evicted or purged.
   */
  place(task: Task, now: number): void {
    assert(task.state === "waiting" && task.waitingOn === 0, "a task is placed only when new or requeued, waiting on nothing yet", "task", task.id, "state", task.state, "waitingOn", task.waitingOn);
    this.held.touch(task);
    for (const parentId of task.dependsOn) {
      if (shardOfTask(parentId) !== this.options.shard) {
        this.waitOnForeignParent(task, parentId);
        continue;
      }
      const parent = this.held.tasks.get(parentId);
      if (parent === undefined) {
        return this.failWithoutAttempt(task, E_DEPENDENCY, `parent task ${parentId} is no longer held (evicted or purged), so whether it completed is unknown`, now);
      }
      if (parent.state === "completed") continue;
      if (parent.state === "failed" || parent.state === "cancelled") {
        return this.failWithoutAttempt(task, E_DEPENDENCY, `parent task ${parent.id} ${parent.state}`, now);
      }
      task.waitingOn++;
      this.held.touch(parent);
      parent.dependants = appended(parent.dependants, task.id);
    }
    if (task.waitingOn > 0) this.held.waitingCount++;
    else this.release(task, now);
  }

  /** The task waits until the router reports how its parent on another shard ended. */
  private waitOnForeignParent(task: Task, parentId: number): void {
    let parent = this.held.foreignParents.get(parentId);
    if (parent === undefined) this.held.foreignParents.set(parentId, (parent = { id: parentId, dependants: emptyList() }));
    task.waitingOn++;
    parent.dependants = appended(parent.dependants, task.id);
  }

  /** Ready to run as soon as runAt allows. */
  release(task: Task, now: number): void {
    this.held.touch(task);
    if (task.runAt > now) {
      task.state = "delayed";
      this.held.delayedCount++;
      this.held.delayed.push(task);
    } else {
      this.held.ready.push(task, now);
    }
  }

  watch(task: Task, watcher: Watcher): void {
    if (isFinal(task.state)) {
      this.effects.notices.push({ task, watcher });
      return;
    }
    // Every waiting request is told, once: a router's link carries many clients' requests, so two
    // on one connection are two waiters (a client that retried on its connection just ignores the
    // answer to the request it gave up on). Bounded, oldest dropped first.
    if (task.watchers.some((w) => w.conn === watcher.conn && w.requestId === watcher.requestId)) return;
    this.held.touch(task);
    const kept = task.watchers.length >= WATCHERS_MAX ? task.watchers.slice(1) : task.watchers;
    task.watchers = appended(kept, watcher);
  }

  /** Whether a delayed task's runAt has come (releaseDue() moves it to the ready queue). */
  delayedDue(now: number): boolean {
    const next = this.held.delayed.peek();
    return next !== undefined && next.runAt <= now;
  }

  releaseDue(now: number): void {
    while (this.delayedDue(now)) {
      const task = this.held.delayed.pop()!;
      if (task.state !== "delayed") continue; // cancelled while delayed
      assert(this.held.delayedCount > 0, "the delayed count never goes below zero", "task", task.id);
      this.held.delayedCount--;
      this.held.touch(task);
      this.held.ready.push(task, now);
    }
  }

  lease(task: Task, worker: WorkerState, now: number): void {
    assert(task.state === "queued", "only a queued task is leased", "task", task.id, "state", task.state);
    assert(worker.free > 0 && worker.free <= worker.slots && !worker.draining, "a lease takes a free slot of a worker that is not draining",
      "worker", worker.id, "free", worker.free, "draining", worker.draining);
    // The fencing token only moves forward, and only while attempts remain (endAttempt fails the task at the last one).
    assert(task.attempt - task.attemptBase < task.maxAttempts, "a task is leased only while it has attempts left", "task", task.id, "attempt", task.attempt - task.attemptBase, "maxAttempts", task.maxAttempts);
    this.held.touch(task);
    task.state = "leased";
    task.attempt++;
    task.workerId = worker.id;
    task.leasedAt = now;
    task.leaseExpiresAt = this.leaseEnd(task, now);
    worker.free--;
    worker.leased.add(task);
    this.held.leasedCount++;
    let batch = this.effects.assignments.get(worker.id);
    if (batch === undefined) this.effects.assignments.set(worker.id, (batch = []));
    batch.push(task);
  }

  leaseEnd(task: Task, now: number): number {
    return Math.min(now + this.options.leaseMs, task.leasedAt + task.timeoutMs);
  }

  /**
   * Ends the lease `attempt` of `task` held by `worker` (the task's state is the caller's to set).
   * Only the holder releases a lease: the worker it was given to, for the attempt it was given.
   */
  releaseLease(task: Task, worker: WorkerState, attempt: number): void {
    this.held.touch(task);
    assert(task.state === "leased", "only a leased task has a lease to release", "task", task.id, "state", task.state);
    assert(task.workerId === worker.id, "a lease is released only for the worker holding it", "task", task.id, "held by worker", task.workerId, "released for worker", worker.id);
    assert(task.attempt === attempt, "a lease is released only for the attempt holding it", "task", task.id, "attempt held", task.attempt, "attempt released", attempt);
    assert(worker.leased.delete(task), "a leased task is in its worker's leases", "task", task.id, "worker", worker.id);
    assert(worker.free < worker.slots, "a worker's slots in use never go below zero", "worker", worker.id, "free", worker.free, "slots", worker.slots);
    assert(this.held.leasedCount > 0, "the leased count never goes below zero", "task", task.id);
    worker.free++;
    this.held.leasedCount--;
    task.workerId = 0;
  }

  /** Takes a not-yet-final task out of the count of its current state. */
  leaveState(task: Task): void {
    if (task.state === "waiting") {
      assert(this.held.waitingCount > 0, "the waiting count never goes below zero", "task", task.id);
      this.held.waitingCount--;
    } else if (task.state === "delayed") {
      assert(this.held.delayedCount > 0, "the delayed count never goes below zero", "task", task.id);
      this.held.delayedCount--;
    } else if (task.state === "queued") {
      this.held.ready.forget(task);
    }
  }

  private recordError(task: Task, workerId: number, code: string, message: string, now: number): void {
    this.held.touch(task);
    if (task.errors.length >= ERRORS_KEPT_MAX) task.errors.shift();
    task.errors = appended(task.errors, { attempt: task.attempt, workerId, at: now, code, message } satisfies AttemptError);
  }

  /** A lease ended without success: retry (after its backoff) while attempts remain, else fail for good. */
  endAttempt(task: Task, worker: WorkerState, attempt: number, code: string, message: string, now: number): void {
    this.held.touch(task);
    const workerId = worker.id;
    this.releaseLease(task, worker, attempt);
    this.recordError(task, workerId, code, message, now);
    if (task.attempt - task.attemptBase >= task.maxAttempts) {
      this.finish(task, "failed", now);
      return;
    }
    this.held.counters.retried++;
    this.effects.retried.push(task);
    task.runAt = now + retryDelayMs(task.backoff, task.id, task.attempt - task.attemptBase);
    this.release(task, now);
  }

  /** Fails a task that never ran this time (deadline missed, parent failed); the caller has taken it out of its state's count. */
  failWithoutAttempt(task: Task, code: string, message: string, now: number): void {
    this.recordError(task, 0, code, message, now);
    this.finish(task, "failed", now);
  }

  finish(task: Task, state: "completed" | "failed" | "cancelled", now: number): void {
    assert(!isFinal(task.state), "a task ends once", "task", task.id, "state", task.state, "ending as", state);
    assert(this.held.unfinished > 0, "the unfinished count never goes below zero", "task", task.id);
    this.held.touch(task);
    task.state = state;
    task.finishedAt = now;
    this.held.unfinished--;
    this.held.counters[state]++;
    this.effects.finished.push(task);
    for (const watcher of task.watchers) this.effects.notices.push({ task, watcher });
    task.watchers = emptyList();
    if (state === "failed") {
      this.held.dlq.set(task.id, task);
      while (this.held.dlq.size > this.options.dlqMax) this.forgetDeadLetter(this.held.dlq.values().next().value!);
    } else {
      this.held.finishedOrder.push(task);
      while (this.held.finishedOrder.length > this.options.retainedMax) this.forget(this.held.finishedOrder.shift()!);
    }
    this.settleDependants(task, now);
  }

  /** A parent ended: dependants run when all their parents completed, and fail if one did not. */
  settleDependants(parent: Pick<Task, "id" | "state" | "dependants">, now: number): void {
    // A foreign parent is no task here (snapshots copy those whole when they start).
    const held = this.held.tasks.get(parent.id);
    if (held === parent) this.held.touch(held);
    const dependants = parent.dependants;
    parent.dependants = emptyList();
    for (const id of dependants) {
      const child = this.held.tasks.get(id);
      if (child === undefined || child.state !== "waiting") continue;
      assert(this.held.waitingCount > 0 && child.waitingOn > 0, "a waiting task waits on at least the parent that ended", "task", child.id, "waitingOn", child.waitingOn, "waiting count", this.held.waitingCount);
      this.held.touch(child);
      if (parent.state !== "completed") {
        this.held.waitingCount--;
        this.failWithoutAttempt(child, E_DEPENDENCY, `parent task ${parent.id} ${parent.state}`, now);
      } else if (--child.waitingOn === 0) {
        this.held.waitingCount--;
        this.release(child, now);
      }
    }
  }

  forget(task: Task): void {
    assert(isFinal(task.state), "only an ended task is forgotten", "task", task.id, "state", task.state);
    this.held.touch(task);
    this.held.tasks.delete(task);
  }

  /** A dead-lettered task leaves the DLQ and the table. */
  forgetDeadLetter(task: Task): void {
    this.held.dlq.delete(task.id);
    this.forget(task);
  }
}

function emptyReady(): Ready {
  return { assignments: new Map(), finished: [], retried: [], notices: [], aborts: [], lostWorkers: [] };
}
