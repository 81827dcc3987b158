// The coordinator's scheduler as a pure state machine: events in (submit,
// workflow, cancel, worker joined/left, result, heartbeat, tick with the time),
// effects out (assignments per worker, tasks ended, watchers to tell, running
// tasks to abort), like raft's Ready. No IO and no clock: `now` is always an
// argument, so replicas and simulations replay it exactly.
//
// Lifecycle (task.ts): waiting (on parents) -> delayed (runAt) -> queued ->
// leased (attempt n, lease until min(now + leaseMs, leasedAt + timeoutMs),
// extended by heartbeats naming it) -> completed | failed | cancelled. A failed
// or expired attempt goes back to delayed/queued (backoff) until maxAttempts;
// then the task is failed and sits in the dead-letter queue.
//
// Three parts: what is held (scheduler-tables.ts, also the snapshot), the moves
// between states (lifecycle.ts), and this class, which checks each input and
// decides which moves it makes.

import { assert } from "./assert.ts";
import type { SchedulerState } from "./scheduler-state.ts";
import { E_DEPENDENCY, Lifecycle } from "./lifecycle.ts";
import { checkSchedulerTables } from "./scheduler-invariants.ts";
import { SchedulerTables } from "./scheduler-tables.ts";
import { SnapshotExport } from "./snapshot-export.ts";
import type { PartLimits } from "./snapshot-parts.ts";
import { appended, attemptErrorOf, emptyList, isFinal, type Task, type TaskState, type Watcher } from "./task.ts";
import { submitWorkflow, type WorkflowPort } from "./workflow-submit.ts";
import { createTask, validateSubmission } from "./submission.ts";
import {
  type Ready, type Refusal, type SchedulerCounters, type SchedulerOptions, type SubmitOutcome, type SubmitRequest,
  type WorkerState, type WorkflowNodeRequest, type WorkflowOutcome,
} from "./scheduler-types.ts";

export * from "./scheduler-types.ts";

const utf8 = new TextDecoder();
const EMPTY_OUTPUT = new Uint8Array(0);
/**
 * Task ids a new primary skips: more than a lost unreplicated tail can hold
 * (only a primary running alone builds a long one, and it loses those tasks
 * anyway), and small enough for 65,536 promotions per shard (ids have 2^40).
 */
const SEQ_GAP_ON_PROMOTION = 2 ** 24;

export class Scheduler {
  readonly options: SchedulerOptions;
  /** Everything this scheduler holds: tasks, queues, workers, counts (scheduler-tables.ts). */
  private readonly held: SchedulerTables;
  /** The moves between task states (lifecycle.ts). */
  private readonly lifecycle: Lifecycle;

  constructor(options: SchedulerOptions, tables = new SchedulerTables(options.agingMs)) {
    this.options = options;
    this.held = tables;
    this.lifecycle = new Lifecycle(tables, options);
  }

  // ------------------------------------------------------------------ queries

  get counters(): SchedulerCounters {
    return this.held.counters;
  }

  get queuedCount(): number {
    return this.held.ready.length;
  }
  /** Queued tasks per submitted priority (0 first). */
  get queuedByPriority(): Array<{ priority: number; queued: number }> {
    return this.held.ready.byPriority();
  }
  get leasedTotal(): number {
    return this.held.leasedCount;
  }
  get waitingTotal(): number {
    return this.held.waitingCount;
  }
  get delayedTotal(): number {
    return this.held.delayedCount;
  }
  get retainedCount(): number {
    return this.held.finishedOrder.length;
  }
  get dlqCount(): number {
    return this.held.dlq.size;
  }
  /** Queued tasks that no connected worker can run: none has their tags and handles their type. */
  get unmatchedCount(): number {
    return this.held.ready.unmatched(this.held.workers.values());
  }
  task(taskId: number): Task | undefined {
    return this.held.tasks.get(taskId);
  }
  /** The held task submitted with this idempotency key (the latest, if the key was reused after eviction). */
  taskWithKey(idempotencyKey: string): Task | undefined {
    return this.held.tasks.withKey(idempotencyKey);
  }
  worker(workerId: number): WorkerState | undefined {
    return this.held.workers.get(workerId);
  }
  allWorkers(): IterableIterator<WorkerState> {
    return this.held.workers.values();
  }
  /** The outputs of a task's parents in dependsOn order (empty for a parent no longer retained). */
  inputsOf(task: Task): Uint8Array[] {
    return task.dependsOn.map((id) => this.held.tasks.get(id)?.output ?? task.foreignOutputs.find(([parent]) => parent === id)?.[1] ?? EMPTY_OUTPUT);
  }

  /** Parents on other shards whose end tasks here are waiting to hear of (the router asks, then reports each end). */
  foreignWaits(): number[] {
    return [...this.held.foreignParents.keys()];
  }

  /**
   * A parent on another shard ended (the router saw it there): tasks waiting
   * on it run once their other parents completed, or fail with E_DEPENDENCY.
   * Nothing happens for a parent nobody here waits on (a late or repeated report).
   */
  foreignParentEnded(parentId: number, state: "completed" | "failed" | "cancelled", output: Uint8Array, now: number): boolean {
    const parent = this.held.foreignParents.get(parentId);
    if (parent === undefined) return false;
    this.held.foreignParents.delete(parentId);
    if (state === "completed") {
      const owned = output.length === 0 ? EMPTY_OUTPUT : output.slice();
      for (const id of parent.dependants) {
        const child = this.held.tasks.get(id);
        if (child === undefined) continue;
        this.held.touch(child);
        child.foreignOutputs = appended(child.foreignOutputs, [parentId, owned]);
      }
    }
    this.lifecycle.settleDependants({ id: parentId, state, dependants: parent.dependants }, now);
    return true;
  }

  /** Dead-letter queue, oldest first. */
  deadLetters(offset: number, limit: number): Task[] {
    return [...this.held.dlq.values()].slice(offset, offset + limit);
  }

  /** Hands over the effects gathered so far and starts a new batch. */
  takeReady(): Ready {
    return this.lifecycle.takeReady();
  }

  // ------------------------------------------------------------------ submission

  submit(req: SubmitRequest, now: number): SubmitOutcome {
    if (req.idempotencyKey !== "") {
      const existing = this.held.tasks.withKey(req.idempotencyKey);
      if (existing !== undefined) return this.resubmitted(existing, req);
    }
    const invalid = this.validate(req, 1);
    if (invalid !== undefined) return invalid;
    const task = this.create(req, req.dependsOn ?? [], now);
    if (req.watcher !== 0) task.watchers = [{ conn: req.watcher, requestId: req.watchRequestId }];
    this.lifecycle.place(task, now);
    return { ok: true, taskId: task.id, duplicate: false };
  }

  /** Creates every node of a workflow, or none; a retry with the same keys gets the original ids (workflow-submit.ts). */
  submitWorkflow(nodes: readonly WorkflowNodeRequest[], now: number): WorkflowOutcome {
    return submitWorkflow(this.workflowPort, nodes, now);
  }

  private readonly workflowPort: WorkflowPort = {
    task: (taskId) => this.held.tasks.get(taskId),
    taskWithKey: (key) => this.held.tasks.withKey(key),
    validate: (req, adding) => this.validate(req, adding),
    create: (req, dependsOn, now) => this.create(req, dependsOn, now),
    place: (task, now) => this.lifecycle.place(task, now),
    duplicate: () => void this.held.counters.duplicates++,
  };

  private validate(req: SubmitRequest, adding: number): Refusal | undefined {
    return validateSubmission(this.held, this.options, req, adding);
  }

  private create(req: SubmitRequest, dependsOn: readonly number[], now: number): Task {
    return createTask(this.held, this.options, req, dependsOn, now);
  }

  /** A retried submission: same task; this submitter is told when it ends. */
  private resubmitted(task: Task, req: SubmitRequest): SubmitOutcome {
    this.held.counters.duplicates++;
    if (req.watcher !== 0) this.lifecycle.watch(task, { conn: req.watcher, requestId: req.watchRequestId });
    return { ok: true, taskId: task.id, duplicate: true };
  }

  /** Tell `watcher` when the task ends (at once if it has). False: no such task. */
  watchTask(taskId: number, watcher: Watcher): boolean {
    const task = this.held.tasks.get(taskId);
    if (task === undefined) return false;
    this.lifecycle.watch(task, watcher);
    return true;
  }

  // ------------------------------------------------------------------ cancel and the DLQ

  /** Cancels a task that has not ended; a running one is aborted on its worker. Returns its state after. */
  cancel(taskId: number, now: number): TaskState | undefined {
    const task = this.held.tasks.get(taskId);
    if (task === undefined) return undefined;
    if (isFinal(task.state)) return task.state;
    this.lifecycle.leaveState(task);
    if (task.state === "leased") {
      const worker = this.held.workers.get(task.workerId);
      // workerLeft() ends every lease of a worker it removes: a leased task always has its worker.
      assert(worker !== undefined, "a leased task's worker is connected", "task", task.id, "worker", task.workerId);
      this.lifecycle.effects.aborts.push({ workerId: task.workerId, taskId: task.id, attempt: task.attempt });
      this.lifecycle.releaseLease(task, worker, task.attempt);
    }
    this.lifecycle.finish(task, "cancelled", now);
    return task.state;
  }

  /**
   * Gives a dead-lettered task maxAttempts more attempts. False: not in the DLQ.
   * It keeps its runAt (one already past just goes ready). A task that had run,
   * or had been ready, saw every parent complete, and completed is final, so it
   * is released at once. One that failed with E_DEPENDENCY is placed again like
   * a new task: it waits for parents not completed, and fails again at once
   * while one is failed or cancelled, or is no longer held (its outcome is lost).
   */
  requeue(taskId: number, now: number): boolean {
    const task = this.held.dlq.get(taskId);
    if (task === undefined) return false;
    assert(task.state === "failed" && this.held.counters.failed > 0, "a dead letter is a failed task, counted", "task", taskId, "state", task.state, "failed", this.held.counters.failed);
    this.held.touch(task);
    this.held.dlq.delete(taskId);
    task.attemptBase = task.attempt;
    task.finishedAt = 0;
    this.held.unfinished++;
    this.held.counters.failed--;
    if (!failedOnParent(task)) {
      this.lifecycle.release(task, now);
      return true;
    }
    // Parents still running hold this task in their dependants from its first placement: drop that, or it would count twice.
    for (const parentId of task.dependsOn) {
      const parent = this.held.tasks.get(parentId) ?? this.held.foreignParents.get(parentId);
      if (parent === undefined) continue;
      if (parent === this.held.tasks.get(parentId)) this.held.touch(parent as Task);
      parent.dependants = parent.dependants.filter((id) => id !== task.id);
    }
    task.state = "waiting";
    task.waitingOn = 0;
    this.lifecycle.place(task, now);
    return true;
  }

  /** Forgets dead-lettered tasks (all when ids is empty); returns how many. */
  purge(ids: readonly number[]): number {
    const victims = ids.length === 0 ? [...this.held.dlq.values()] : ids.flatMap((id) => this.held.dlq.get(id) ?? []);
    for (const task of victims) this.lifecycle.forgetDeadLetter(task);
    return victims.length;
  }

  // ------------------------------------------------------------------ workers

  /**
   * A worker with `slots` credit, these tags, handling these task types
   * (undefined: any type, as workers were taken before they announced types).
   * It is only leased tasks whose type it handles: others wait for one that does.
   */
  workerJoined(workerId: number, slots: number, tags: readonly string[], now: number, types?: readonly string[]): void {
    if (this.held.workers.has(workerId)) throw new Error(`worker ${workerId} joined twice`);
    this.held.workers.set(workerId, {
      id: workerId, slots, tags, tagSet: new Set(tags), types, typeSet: types === undefined ? undefined : new Set(types),
      free: slots, lastSeenAt: now, done: 0, failed: 0, leased: new Set(), draining: false,
    });
  }

  /**
   * The worker moved its credit here (it serves several coordinators and split its
   * slots by their demand). Fewer slots than it runs leaves free below zero: no
   * new lease until enough of its tasks end; nothing running is taken back.
   */
  workerCredit(workerId: number, slots: number): void {
    const worker = this.held.workers.get(workerId);
    if (worker === undefined) return;
    assert(Number.isInteger(slots) && slots >= 0, "a worker's credit is a non-negative integer", "worker", workerId, "slots", slots);
    worker.free += slots - worker.slots;
    worker.slots = slots;
  }

  /** The worker is shutting down gracefully: it keeps its leases but gets no new tasks. */
  workerDraining(workerId: number): void {
    const worker = this.held.workers.get(workerId);
    if (worker !== undefined) worker.draining = true;
  }

  /** The worker is gone: each of its leases ends as a failed attempt. */
  workerLeft(workerId: number, now: number): void {
    const worker = this.held.workers.get(workerId);
    if (worker === undefined) return;
    this.held.workers.delete(workerId);
    for (const task of worker.leased) this.lifecycle.endAttempt(task, worker, task.attempt, "E_WORKER_LOST", "worker went away", now);
    assert(worker.leased.size === 0 && worker.free === worker.slots, "a worker that left holds no lease and no slot", "worker", workerId, "free", worker.free, "slots", worker.slots);
  }

  /**
   * A heartbeat keeps the worker alive and extends the leases of the tasks it
   * says it is running (never past each task's timeout). A lease it does not
   * mention (its result was lost with a crashed primary, say) is left to expire
   * after leaseMs and the task is retried. `running` undefined: extend all.
   */
  heartbeat(workerId: number, now: number, running?: readonly number[]): void {
    const worker = this.held.workers.get(workerId);
    if (worker === undefined) return;
    worker.lastSeenAt = now;
    const mentioned = running === undefined ? undefined : new Set(running);
    for (const task of worker.leased) {
      if (mentioned !== undefined && !mentioned.has(task.id)) continue;
      this.held.touch(task);
      task.leaseExpiresAt = this.lifecycle.leaseEnd(task, now);
    }
  }

  /** The outcome of one lease. Stale results (wrong attempt, unknown task) are counted and dropped. */
  result(workerId: number, taskId: number, attempt: number, ok: boolean, output: Uint8Array, now: number): void {
    const worker = this.held.workers.get(workerId);
    if (worker !== undefined) worker.lastSeenAt = now;
    const task = this.held.tasks.get(taskId);
    if (task === undefined || task.state !== "leased" || task.attempt !== attempt || task.workerId !== workerId || worker === undefined) {
      this.held.counters.staleResults++;
      return;
    }
    if (ok) {
      this.lifecycle.releaseLease(task, worker, attempt);
      worker.done++;
      task.output = output;
      this.lifecycle.finish(task, "completed", now);
    } else {
      worker.failed++;
      const error = attemptErrorOf(utf8.decode(output));
      this.lifecycle.endAttempt(task, worker, attempt, error.code, error.message, now);
    }
  }

  // ------------------------------------------------------------------ time

  /** Time passes: lost workers dropped, expired leases ended, delayed tasks released, old results evicted. */
  tick(now: number): void {
    for (const worker of this.held.workers.values()) {
      if (this.isLost(worker, now)) {
        this.lifecycle.effects.lostWorkers.push(worker.id);
        this.workerLeft(worker.id, now);
        continue;
      }
      for (const task of worker.leased) {
        if (!leaseEnded(task, now)) continue;
        this.held.counters.expiredLeases++;
        const why = now >= task.leasedAt + task.timeoutMs
          ? `ran past its ${task.timeoutMs} ms timeout`
          : `lease expired: no heartbeat from worker ${worker.id} named it for ${this.options.leaseMs} ms`;
        this.lifecycle.endAttempt(task, worker, task.attempt, "E_TIMEOUT", `attempt ${task.attempt} ${why}`, now);
      }
    }
    this.lifecycle.releaseDue(now);
    while (this.pastRetention(this.held.finishedOrder.peek(), now)) this.lifecycle.forget(this.held.finishedOrder.shift()!);
  }

  /**
   * Whether tick(now) would change anything: a worker silent too long, a lease
   * ended, a delayed task due, a finished task past retainedMs. An idle primary
   * asks before logging a tick, so it does not write (and fsync) one every tickMs.
   */
  tickWouldChange(now: number): boolean {
    for (const worker of this.held.workers.values()) {
      if (this.isLost(worker, now)) return true;
      for (const task of worker.leased) if (leaseEnded(task, now)) return true;
    }
    return this.lifecycle.delayedDue(now) || this.pastRetention(this.held.finishedOrder.peek(), now);
  }

  /** A worker silent for longer than workerTimeoutMs (tick() drops it). */
  private isLost(worker: WorkerState, now: number): boolean {
    return now - worker.lastSeenAt > this.options.workerTimeoutMs;
  }

  /** A finished task kept longer than retainedMs (tick() forgets it). */
  private pastRetention(task: Task | undefined, now: number): boolean {
    return task !== undefined && now - task.finishedAt > this.options.retainedMs;
  }

  /**
   * Whether dispatch(now) would change anything: a delayed task due, or a
   * queued task that a worker with a free slot (not draining) can run (tags and type).
   * The primary asks before logging a DISPATCH: with every slot busy and tasks
   * queued it would log one on each pump, and each backup's acknowledgement of
   * that entry pumps again, a loop through the backup (and its fsync).
   */
  dispatchWouldChange(now: number): boolean {
    if (this.lifecycle.delayedDue(now)) return true;
    if (this.held.ready.length === 0) return false;
    for (const worker of this.held.workers.values()) {
      if (worker.free > 0 && !worker.draining && this.held.ready.hasFor(worker)) return true;
    }
    return false;
  }

  /** Leases queued tasks to workers with free slots, the tags they need and a handler for their type, spreading them evenly. */
  dispatch(now: number): void {
    this.lifecycle.releaseDue(now);
    if (this.held.ready.length === 0 || this.held.workers.size === 0) return;
    const workers = [...this.held.workers.values()];
    const start = this.held.workerRotation++ % workers.length;
    for (let pass = 0; pass < workers.length && this.held.ready.length > 0; pass++) {
      let withFree = 0;
      for (const w of workers) if (w.free > 0 && !w.draining) withFree++;
      if (withFree === 0) return;
      const share = Math.ceil(this.held.ready.length / withFree);
      let leased = 0;
      for (let k = 0; k < workers.length && this.held.ready.length > 0; k++) {
        const worker = workers[(start + k) % workers.length]!;
        for (let i = worker.draining ? 0 : Math.min(worker.free, share); i > 0; i--) {
          const task = this.held.ready.popFor(worker);
          if (task === undefined) break;
          if (task.deadline !== 0 && task.deadline <= now) {
            this.held.counters.deadlineMissed++;
            this.lifecycle.failWithoutAttempt(task, "E_DEADLINE", `not started by its deadline (${task.deadline})`, now);
            i++;
            continue;
          }
          this.lifecycle.lease(task, worker, now);
          leased++;
        }
      }
      if (leased === 0) return; // what is left needs tags or a type no free worker has
    }
  }

  // ------------------------------------------------------------------ roles and snapshots

  /**
   * This node became primary: no connection of the old primary exists here, so
   * nobody watches any task, and every worker and lease gets a fresh grace
   * period from `now` (the old primary's clock no longer counts).
   */
  promoted(now: number): void {
    // The old primary may have handed out ids past what reached us (its lost tail), and workers
    // may still run those tasks: new ids start past a gap, so such a result can never match a new task.
    const before = this.held.nextSeq;
    this.held.nextSeq = (Math.floor((before - 1) / SEQ_GAP_ON_PROMOTION) + 1) * SEQ_GAP_ON_PROMOTION + 1;
    assert(this.held.nextSeq > before, "task ids only move forward on promotion", "nextSeq before", before, "after", this.held.nextSeq);
    for (const task of this.held.tasks.values()) {
      this.held.touch(task);
      task.watchers = emptyList();
    }
    for (const worker of this.held.workers.values()) {
      worker.lastSeenAt = now;
      for (const task of worker.leased) {
        this.held.touch(task);
        task.leaseExpiresAt = this.lifecycle.leaseEnd(task, now);
      }
    }
  }

  /** The whole replicated state as plain data, in the orders that make replay after restore identical. */
  exportState(): SchedulerState {
    return this.held.exportState();
  }

  /** A snapshot of this scheduler as it is now, cut into parts while it goes on changing (snapshot-export.ts). */
  startExport(limits?: PartLimits): SnapshotExport {
    return new SnapshotExport(this.held, limits);
  }

  /** A scheduler in exactly the state `exportState()` described. Throws SnapshotRefused for one that breaks an invariant. */
  static fromState(options: SchedulerOptions, state: SchedulerState): Scheduler {
    return new Scheduler(options, SchedulerTables.fromState(options.agingMs, state));
  }

  /**
   * The full consistency check (scheduler-invariants.ts), O(n) in the tasks held:
   * throws an AssertionError naming the first invariant broken. For tests and
   * simulations after each step; restores run it themselves.
   */
  checkInvariants(): void {
    checkSchedulerTables(this.held);
  }
}

/** The lease ran out (no heartbeat named the task, or its timeout passed): tick() ends the attempt. */
function leaseEnded(task: Task, now: number): boolean {
  return task.leaseExpiresAt <= now;
}

/** Absent, or an absolute time a timer can reach. */
/** Whether the task's last failure was a parent's: it never saw all its parents complete. */
function failedOnParent(task: Task): boolean {
  return task.errors.at(-1)?.code === E_DEPENDENCY;
}
