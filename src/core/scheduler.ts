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

import { retryDelayMs } from "./backoff-policy.ts";
import { Deque } from "./deque.ts";
import { Heap } from "./heap.ts";
import { PRIORITY_LEVELS, ReadyQueue } from "./ready-queue.ts";
import type { SchedulerState } from "./scheduler-state.ts";
import { appended, copiedList, emptyList, isFinal, makeTaskId, shardOfTask, type AttemptError, type ForeignParent, type Task, type TaskState, type Watcher } from "./task.ts";
import { TaskTable } from "./task-table.ts";
import { submitWorkflow, type WorkflowPort } from "./workflow-submit.ts";
import {
  NO_BACKOFF, type Ready, type Refusal, type SchedulerCounters, type SchedulerOptions, type SubmitOutcome, type SubmitRequest,
  type WorkerState, type WorkflowNodeRequest, type WorkflowOutcome,
} from "./scheduler-types.ts";

export * from "./scheduler-types.ts";

/** Errors kept per task: enough to debug, bounded for poison tasks. */
const ERRORS_KEPT_MAX = 16;
const utf8 = new TextDecoder();
const EMPTY_OUTPUT = new Uint8Array(0);
/**
 * Task ids a new primary skips: more than a lost unreplicated tail can hold
 * (only a primary running alone builds a long one, and it loses those tasks
 * anyway), and small enough for 65,536 promotions per shard (ids have 2^40).
 */
const SEQ_GAP_ON_PROMOTION = 2 ** 24;
/** Shared empty lists for the common task with no tags and no parents (never mutated). */
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
/** The error of a task failed by a parent (recorded without an attempt); requeue() looks for it. */
const E_DEPENDENCY = "E_DEPENDENCY";

export class Scheduler {
  readonly options: SchedulerOptions;
  readonly counters: SchedulerCounters = {
    submitted: 0, completed: 0, failed: 0, cancelled: 0, retried: 0, deadlineMissed: 0,
    rejectedQueueFull: 0, duplicates: 0, staleResults: 0, expiredLeases: 0,
  };
  /** Every task held, unfinished and retained, by id and by idempotency key. */
  private readonly tasks = new TaskTable();
  private readonly ready: ReadyQueue;
  private readonly delayed = new Heap<Task>((a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.id < b.id));
  /** Completed and cancelled tasks in the order they ended (retention). */
  private readonly finishedOrder = new Deque<Task>();
  /** Failed tasks in the order they failed (the dead-letter queue). */
  private readonly dlq = new Map<number, Task>();
  private readonly workers = new Map<number, WorkerState>();
  /** Parents on other shards that tasks here wait on, by id. */
  private readonly foreignParents = new Map<number, ForeignParent>();
  private workerRotation = 0;
  private nextSeq = 1;
  /** Tasks not ended: waiting, delayed, queued or leased (the queue limit counts these). */
  private unfinished = 0;
  private leasedCount = 0;
  private waitingCount = 0;
  private delayedCount = 0;
  private effects: Ready = emptyReady();

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.ready = new ReadyQueue(options.agingMs);
  }

  // ------------------------------------------------------------------ queries

  get queuedCount(): number {
    return this.ready.length;
  }
  get leasedTotal(): number {
    return this.leasedCount;
  }
  get waitingTotal(): number {
    return this.waitingCount;
  }
  get delayedTotal(): number {
    return this.delayedCount;
  }
  get retainedCount(): number {
    return this.finishedOrder.length;
  }
  get dlqCount(): number {
    return this.dlq.size;
  }
  /** Queued tasks that no connected worker has the tags for. */
  get unmatchedCount(): number {
    return this.ready.unmatched([...this.workers.values()].map((w) => w.tagSet));
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
  /** The outputs of a task's parents in dependsOn order (empty for a parent no longer retained). */
  inputsOf(task: Task): Uint8Array[] {
    return task.dependsOn.map((id) => this.tasks.get(id)?.output ?? task.foreignOutputs.find(([parent]) => parent === id)?.[1] ?? EMPTY_OUTPUT);
  }

  /** Parents on other shards whose end tasks here are waiting to hear of (the router asks, then reports each end). */
  foreignWaits(): number[] {
    return [...this.foreignParents.keys()];
  }

  /**
   * A parent on another shard ended (the router saw it there): tasks waiting
   * on it run once their other parents completed, or fail with E_DEPENDENCY.
   * Nothing happens for a parent nobody here waits on (a late or repeated report).
   */
  foreignParentEnded(parentId: number, state: "completed" | "failed" | "cancelled", output: Uint8Array, now: number): boolean {
    const parent = this.foreignParents.get(parentId);
    if (parent === undefined) return false;
    this.foreignParents.delete(parentId);
    if (state === "completed") {
      const owned = output.length === 0 ? EMPTY_OUTPUT : output.slice();
      for (const id of parent.dependants) {
        const child = this.tasks.get(id);
        if (child !== undefined) child.foreignOutputs = appended(child.foreignOutputs, [parentId, owned]);
      }
    }
    this.settleDependants({ id: parentId, state, dependants: parent.dependants }, now);
    return true;
  }

  /** Dead-letter queue, oldest first. */
  deadLetters(offset: number, limit: number): Task[] {
    return [...this.dlq.values()].slice(offset, offset + limit);
  }

  /** Hands over the effects gathered so far and starts a new batch. */
  takeReady(): Ready {
    const ready = this.effects;
    this.effects = emptyReady();
    return ready;
  }

  // ------------------------------------------------------------------ submission

  submit(req: SubmitRequest, now: number): SubmitOutcome {
    if (req.idempotencyKey !== "") {
      const existing = this.tasks.withKey(req.idempotencyKey);
      if (existing !== undefined) return this.resubmitted(existing, req);
    }
    const invalid = this.validate(req, 1);
    if (invalid !== undefined) return invalid;
    const task = this.create(req, req.dependsOn ?? [], now);
    if (req.watcher !== 0) task.watchers = [{ conn: req.watcher, requestId: req.watchRequestId }];
    this.place(task, now);
    return { ok: true, taskId: task.id, duplicate: false };
  }

  /** Creates every node of a workflow, or none; a retry with the same keys gets the original ids (workflow-submit.ts). */
  submitWorkflow(nodes: readonly WorkflowNodeRequest[], now: number): WorkflowOutcome {
    return submitWorkflow(this.workflowPort, nodes, now);
  }

  private readonly workflowPort: WorkflowPort = {
    task: (taskId) => this.tasks.get(taskId),
    taskWithKey: (key) => this.tasks.withKey(key),
    validate: (req, adding) => this.validate(req, adding),
    create: (req, dependsOn, now) => this.create(req, dependsOn, now),
    place: (task, now) => this.place(task, now),
    duplicate: () => void this.counters.duplicates++,
  };

  private validate(req: SubmitRequest, adding: number): Refusal | undefined {
    const bad = (message: string): Refusal => ({ ok: false, code: "E_BAD_REQUEST", message });
    if (req.type.length === 0) return bad("task type must not be empty");
    if (!Number.isInteger(req.priority) || req.priority < 0 || req.priority >= PRIORITY_LEVELS) {
      return bad(`priority must be an integer from 0 to ${PRIORITY_LEVELS - 1}`);
    }
    // A NaN or infinite runAt never comes due (the task would sit in the delayed heap for good); a NaN deadline never passes.
    if (!isTime(req.deadline)) return bad(`deadline must be a finite, non-negative time in ms (0: none), not ${req.deadline}`);
    if (!isTime(req.runAt)) return bad(`runAt must be a finite, non-negative time in ms (0: now), not ${req.runAt}`);
    const b = req.backoff;
    if (b !== undefined && (!(b.delayMs >= 0) || !(b.maxDelayMs >= 0) || (b.type !== "fixed" && b.type !== "exponential"))) {
      return bad("backoff needs type exponential|fixed and non-negative delayMs, maxDelayMs");
    }
    for (const parent of req.dependsOn ?? []) {
      // A parent on another shard is the router's to check; here it is waited on (see place()).
      if (!this.tasks.has(parent) && shardOfTask(parent) === this.options.shard) {
        return { ok: false, code: "E_UNKNOWN_TASK", message: `dependency ${parent} is not a task of shard ${this.options.shard} (never submitted, evicted, or on another shard)` };
      }
    }
    if (this.unfinished + adding > this.options.queueMax) {
      this.counters.rejectedQueueFull++;
      return { ok: false, code: "E_QUEUE_FULL", message: `shard ${this.options.shard} holds ${this.unfinished} unfinished tasks; its limit is ${this.options.queueMax}` };
    }
    return undefined;
  }

  private create(req: SubmitRequest, dependsOn: readonly number[], now: number): Task {
    const task: Task = {
      id: makeTaskId(this.options.shard, this.nextSeq++),
      type: req.type,
      payload: req.payload,
      priority: req.priority,
      maxAttempts: req.maxAttempts > 0 ? req.maxAttempts : this.options.defaultMaxAttempts,
      timeoutMs: req.timeoutMs > 0 ? req.timeoutMs : this.options.defaultTimeoutMs,
      idempotencyKey: req.idempotencyKey,
      submittedAt: now,
      deadline: req.deadline ?? 0,
      backoff: req.backoff ?? NO_BACKOFF,
      tags: req.tags ?? NO_STRINGS,
      dependsOn: dependsOn.length === 0 ? NO_IDS : [...dependsOn],
      state: "waiting",
      waitingOn: 0,
      dependants: emptyList(),
      runAt: req.runAt ?? 0,
      band: 0,
      attempt: 0,
      attemptBase: 0,
      workerId: 0,
      leasedAt: 0,
      leaseExpiresAt: 0,
      watchers: emptyList(),
      output: undefined,
      errors: emptyList(),
      finishedAt: 0,
      foreignOutputs: emptyList(),
    };
    this.tasks.add(task);
    this.counters.submitted++;
    this.unfinished++;
    return task;
  }

  /**
   * A new (or requeued, see requeue()) task's first state: failed with its
   * parent, waiting on parents, delayed, or queued. A new task's parents are
   * all held (validate()); a requeued one's may have been evicted or purged.
   */
  private place(task: Task, now: number): void {
    for (const parentId of task.dependsOn) {
      if (shardOfTask(parentId) !== this.options.shard) {
        this.waitOnForeignParent(task, parentId);
        continue;
      }
      const parent = this.tasks.get(parentId);
      if (parent === undefined) {
        return this.failWithoutAttempt(task, `${E_DEPENDENCY}: parent task ${parentId} is no longer held (evicted or purged), so whether it completed is unknown`, now);
      }
      if (parent.state === "completed") continue;
      if (parent.state === "failed" || parent.state === "cancelled") {
        return this.failWithoutAttempt(task, `${E_DEPENDENCY}: parent task ${parent.id} ${parent.state}`, now);
      }
      task.waitingOn++;
      parent.dependants = appended(parent.dependants, task.id);
    }
    if (task.waitingOn > 0) this.waitingCount++;
    else this.release(task, now);
  }

  /** The task waits until the router reports how its parent on another shard ended. */
  private waitOnForeignParent(task: Task, parentId: number): void {
    let parent = this.foreignParents.get(parentId);
    if (parent === undefined) this.foreignParents.set(parentId, (parent = { id: parentId, dependants: emptyList() }));
    task.waitingOn++;
    parent.dependants = appended(parent.dependants, task.id);
  }

  /** Ready to run as soon as runAt allows. */
  private release(task: Task, now: number): void {
    if (task.runAt > now) {
      task.state = "delayed";
      this.delayedCount++;
      this.delayed.push(task);
    } else {
      this.ready.push(task, now);
    }
  }

  /** A retried submission: same task; this submitter is told when it ends. */
  private resubmitted(task: Task, req: SubmitRequest): SubmitOutcome {
    this.counters.duplicates++;
    if (req.watcher !== 0) this.watch(task, { conn: req.watcher, requestId: req.watchRequestId });
    return { ok: true, taskId: task.id, duplicate: true };
  }

  /** Tell `watcher` when the task ends (at once if it has). False: no such task. */
  watchTask(taskId: number, watcher: Watcher): boolean {
    const task = this.tasks.get(taskId);
    if (task === undefined) return false;
    this.watch(task, watcher);
    return true;
  }

  private watch(task: Task, watcher: Watcher): void {
    if (isFinal(task.state)) {
      this.effects.notices.push({ task, watcher });
      return;
    }
    // One watcher per connection: a client that retries replaces its own request id.
    const same = task.watchers.findIndex((w) => w.conn === watcher.conn);
    if (same >= 0) task.watchers[same] = watcher;
    else task.watchers = appended(task.watchers, watcher);
  }

  // ------------------------------------------------------------------ cancel and the DLQ

  /** Cancels a task that has not ended; a running one is aborted on its worker. Returns its state after. */
  cancel(taskId: number, now: number): TaskState | undefined {
    const task = this.tasks.get(taskId);
    if (task === undefined) return undefined;
    if (isFinal(task.state)) return task.state;
    this.leaveState(task);
    if (task.state === "leased") {
      const worker = this.workers.get(task.workerId);
      this.effects.aborts.push({ workerId: task.workerId, taskId: task.id, attempt: task.attempt });
      if (worker !== undefined) this.releaseLease(task, worker);
    }
    this.finish(task, "cancelled", now);
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
    const task = this.dlq.get(taskId);
    if (task === undefined) return false;
    this.dlq.delete(taskId);
    task.attemptBase = task.attempt;
    task.finishedAt = 0;
    this.unfinished++;
    this.counters.failed--;
    if (!failedOnParent(task)) {
      this.release(task, now);
      return true;
    }
    // Parents still running hold this task in their dependants from its first placement: drop that, or it would count twice.
    for (const parentId of task.dependsOn) {
      const parent = this.tasks.get(parentId) ?? this.foreignParents.get(parentId);
      if (parent !== undefined) parent.dependants = parent.dependants.filter((id) => id !== task.id);
    }
    task.state = "waiting";
    task.waitingOn = 0;
    this.place(task, now);
    return true;
  }

  /** Forgets dead-lettered tasks (all when ids is empty); returns how many. */
  purge(ids: readonly number[]): number {
    const victims = ids.length === 0 ? [...this.dlq.values()] : ids.flatMap((id) => this.dlq.get(id) ?? []);
    for (const task of victims) {
      this.dlq.delete(task.id);
      this.forget(task);
    }
    return victims.length;
  }

  // ------------------------------------------------------------------ workers

  workerJoined(workerId: number, slots: number, tags: readonly string[], now: number): void {
    if (this.workers.has(workerId)) throw new Error(`worker ${workerId} joined twice`);
    this.workers.set(workerId, {
      id: workerId, slots, tags, tagSet: new Set(tags), free: slots, lastSeenAt: now, done: 0, failed: 0, leased: new Set(), draining: false,
    });
  }

  /** The worker is shutting down gracefully: it keeps its leases but gets no new tasks. */
  workerDraining(workerId: number): void {
    const worker = this.workers.get(workerId);
    if (worker !== undefined) worker.draining = true;
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

  // ------------------------------------------------------------------ time

  /** Time passes: lost workers dropped, expired leases ended, delayed tasks released, old results evicted. */
  tick(now: number): void {
    for (const worker of this.workers.values()) {
      if (now - worker.lastSeenAt > this.options.workerTimeoutMs) {
        this.effects.lostWorkers.push(worker.id);
        this.workerLeft(worker.id, now);
        continue;
      }
      for (const task of worker.leased) {
        if (task.leaseExpiresAt > now) continue;
        this.counters.expiredLeases++;
        const why = now >= task.leasedAt + task.timeoutMs
          ? `ran past its ${task.timeoutMs} ms timeout`
          : `lease expired: no heartbeat from worker ${worker.id} named it for ${this.options.leaseMs} ms`;
        this.endAttempt(task, worker, `E_TIMEOUT: attempt ${task.attempt} ${why}`, now);
      }
    }
    this.releaseDue(now);
    while (this.finishedOrder.length > 0 && now - this.finishedOrder.peek()!.finishedAt > this.options.retainedMs) {
      this.forget(this.finishedOrder.shift()!);
    }
  }

  /** Leases queued tasks to workers with free slots and the tags they need, spreading them evenly. */
  dispatch(now: number): void {
    this.releaseDue(now);
    if (this.ready.length === 0 || this.workers.size === 0) return;
    const workers = [...this.workers.values()];
    const start = this.workerRotation++ % workers.length;
    for (let pass = 0; pass < workers.length && this.ready.length > 0; pass++) {
      let withFree = 0;
      for (const w of workers) if (w.free > 0 && !w.draining) withFree++;
      if (withFree === 0) return;
      const share = Math.ceil(this.ready.length / withFree);
      let leased = 0;
      for (let k = 0; k < workers.length && this.ready.length > 0; k++) {
        const worker = workers[(start + k) % workers.length]!;
        for (let i = worker.draining ? 0 : Math.min(worker.free, share); i > 0; i--) {
          const task = this.ready.popFor(worker.tagSet);
          if (task === undefined) break;
          if (task.deadline !== 0 && task.deadline <= now) {
            this.counters.deadlineMissed++;
            this.failWithoutAttempt(task, `E_DEADLINE: not started by its deadline (${task.deadline})`, now);
            i++;
            continue;
          }
          this.lease(task, worker, now);
          leased++;
        }
      }
      if (leased === 0) return; // what is left needs tags no free worker has
    }
  }

  private releaseDue(now: number): void {
    while (this.delayed.length > 0 && this.delayed.peek()!.runAt <= now) {
      const task = this.delayed.pop()!;
      if (task.state !== "delayed") continue; // cancelled while delayed
      this.delayedCount--;
      this.ready.push(task, now);
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
    this.nextSeq = (Math.floor((this.nextSeq - 1) / SEQ_GAP_ON_PROMOTION) + 1) * SEQ_GAP_ON_PROMOTION + 1;
    for (const task of this.tasks.values()) task.watchers = emptyList();
    for (const worker of this.workers.values()) {
      worker.lastSeenAt = now;
      for (const task of worker.leased) task.leaseExpiresAt = this.leaseEnd(task, now);
    }
  }

  /** The whole replicated state as plain data, in the orders that make replay after restore identical. */
  exportState(): SchedulerState {
    return {
      nextSeq: this.nextSeq,
      workerRotation: this.workerRotation,
      counters: { ...this.counters },
      tasks: [...this.tasks.values()].map((t) => ({
        ...t, errors: copiedList(t.errors), watchers: copiedList(t.watchers), dependants: copiedList(t.dependants), foreignOutputs: copiedList(t.foreignOutputs),
      })),
      ready: this.ready.ordered().map((t) => t.id),
      finished: [...this.finishedOrder].map((t) => t.id),
      dlq: [...this.dlq.keys()],
      foreignParents: [...this.foreignParents.values()].map((p) => ({ id: p.id, dependants: [...p.dependants] })),
      workers: [...this.workers.values()].map((w) => ({
        id: w.id, slots: w.slots, tags: [...w.tags], free: w.free, lastSeenAt: w.lastSeenAt,
        done: w.done, failed: w.failed, leased: [...w.leased].map((t) => t.id), draining: w.draining,
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
      const task: Task = {
        ...record, errors: copiedList(record.errors), watchers: copiedList(record.watchers), dependants: copiedList(record.dependants),
        foreignOutputs: copiedList(record.foreignOutputs ?? []),
      };
      s.tasks.add(task);
      if (!isFinal(task.state)) s.unfinished++;
      if (task.state === "waiting") s.waitingCount++;
      if (task.state === "delayed") {
        s.delayedCount++;
        s.delayed.push(task);
      }
    }
    const lookup = (id: number): Task => {
      const task = s.tasks.get(id);
      if (task === undefined) throw new Error(`snapshot names task ${id} but does not hold it`);
      return task;
    };
    for (const id of state.ready) s.ready.restore(lookup(id));
    for (const id of state.finished) s.finishedOrder.push(lookup(id));
    for (const id of state.dlq) s.dlq.set(id, lookup(id));
    for (const p of state.foreignParents ?? []) s.foreignParents.set(p.id, { id: p.id, dependants: copiedList(p.dependants) });
    for (const w of state.workers) {
      const leased = new Set(w.leased.map(lookup));
      s.workers.set(w.id, {
        id: w.id, slots: w.slots, tags: w.tags, tagSet: new Set(w.tags), free: w.free, lastSeenAt: w.lastSeenAt,
        done: w.done, failed: w.failed, leased, draining: w.draining ?? false,
      });
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

  /** Takes a not-yet-final task out of the count of its current state. */
  private leaveState(task: Task): void {
    if (task.state === "waiting") this.waitingCount--;
    else if (task.state === "delayed") this.delayedCount--;
    else if (task.state === "queued") this.ready.forget();
  }

  private recordError(task: Task, workerId: number, error: string, now: number): void {
    if (task.errors.length >= ERRORS_KEPT_MAX) task.errors.shift();
    task.errors = appended(task.errors, { attempt: task.attempt, workerId, at: now, error } satisfies AttemptError);
  }

  /** A lease ended without success: retry (after its backoff) while attempts remain, else fail for good. */
  private endAttempt(task: Task, worker: WorkerState, error: string, now: number): void {
    const workerId = worker.id;
    this.releaseLease(task, worker);
    this.recordError(task, workerId, error, now);
    if (task.attempt - task.attemptBase >= task.maxAttempts) {
      this.finish(task, "failed", now);
      return;
    }
    this.counters.retried++;
    task.runAt = now + retryDelayMs(task.backoff, task.id, task.attempt - task.attemptBase);
    this.release(task, now);
  }

  /** Fails a task that never ran this time (deadline missed, parent failed); the caller has taken it out of its state's count. */
  private failWithoutAttempt(task: Task, error: string, now: number): void {
    this.recordError(task, 0, error, now);
    this.finish(task, "failed", now);
  }

  private finish(task: Task, state: "completed" | "failed" | "cancelled", now: number): void {
    task.state = state;
    task.finishedAt = now;
    this.unfinished--;
    this.counters[state]++;
    this.effects.finished.push(task);
    for (const watcher of task.watchers) this.effects.notices.push({ task, watcher });
    task.watchers = emptyList();
    if (state === "failed") {
      this.dlq.set(task.id, task);
      while (this.dlq.size > this.options.dlqMax) this.purge([this.dlq.keys().next().value!]);
    } else {
      this.finishedOrder.push(task);
      while (this.finishedOrder.length > this.options.retainedMax) this.forget(this.finishedOrder.shift()!);
    }
    this.settleDependants(task, now);
  }

  /** A parent ended: dependants run when all their parents completed, and fail if one did not. */
  private settleDependants(parent: Pick<Task, "id" | "state" | "dependants">, now: number): void {
    const dependants = parent.dependants;
    parent.dependants = emptyList();
    for (const id of dependants) {
      const child = this.tasks.get(id);
      if (child === undefined || child.state !== "waiting") continue;
      if (parent.state !== "completed") {
        this.waitingCount--;
        this.failWithoutAttempt(child, `${E_DEPENDENCY}: parent task ${parent.id} ${parent.state}`, now);
      } else if (--child.waitingOn === 0) {
        this.waitingCount--;
        this.release(child, now);
      }
    }
  }

  private forget(task: Task): void {
    this.tasks.delete(task);
  }
}

/** Absent, or an absolute time a timer can reach. */
function isTime(ms: number | undefined): boolean {
  return ms === undefined || (Number.isFinite(ms) && ms >= 0);
}

/** Whether the task's last failure was a parent's: it never saw all its parents complete. */
function failedOnParent(task: Task): boolean {
  return task.errors.at(-1)?.error.startsWith(E_DEPENDENCY) === true;
}

function emptyReady(): Ready {
  return { assignments: new Map(), finished: [], notices: [], aborts: [], lostWorkers: [] };
}
