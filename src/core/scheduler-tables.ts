// What a scheduler holds: its tasks, queues, workers and counts, and how that
// turns into the plain data of a snapshot (scheduler-state.ts) and back. The
// transitions between task states are scheduler.ts's; this is the state they
// move through, kept in one place so a snapshot cannot forget a part of it.

import { Deque } from "./deque.ts";
import { Heap } from "./heap.ts";
import { ReadyQueue } from "./ready-queue.ts";
import { checkSchedulerTables } from "./scheduler-invariants.ts";
import { SnapshotRefused, type SchedulerState } from "./scheduler-state.ts";
import type { SchedulerCounters, WorkerState } from "./scheduler-types.ts";
import { TaskTable } from "./task-table.ts";
import { copiedList, isFinal, storedAttemptError, type ForeignParent, type Task } from "./task.ts";

export class SchedulerTables {
  readonly counters: SchedulerCounters = {
    submitted: 0, completed: 0, failed: 0, cancelled: 0, retried: 0, deadlineMissed: 0,
    rejectedQueueFull: 0, duplicates: 0, staleResults: 0, expiredLeases: 0,
  };
  /** Every task held, unfinished and retained, by id and by idempotency key. */
  readonly tasks = new TaskTable();
  readonly ready: ReadyQueue;
  readonly delayed = new Heap<Task>((a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.id < b.id));
  /** Completed and cancelled tasks in the order they ended (retention). */
  readonly finishedOrder = new Deque<Task>();
  /** Failed tasks in the order they failed (the dead-letter queue). */
  readonly dlq = new Map<number, Task>();
  readonly workers = new Map<number, WorkerState>();
  /** Parents on other shards that tasks here wait on, by id. */
  readonly foreignParents = new Map<number, ForeignParent>();
  workerRotation = 0;
  nextSeq = 1;
  /** Tasks not ended: waiting, delayed, queued or leased (the queue limit counts these). */
  unfinished = 0;
  leasedCount = 0;
  waitingCount = 0;
  delayedCount = 0;

  constructor(agingMs: number) {
    this.ready = new ReadyQueue(agingMs);
  }

  /** Everything as plain data, in the orders that make replay after restore identical. */
  exportState(): SchedulerState {
    return {
      nextSeq: this.nextSeq,
      workerRotation: this.workerRotation,
      counters: { ...this.counters },
      tasks: [...this.tasks.values()].map(taskCopy),
      ready: this.ready.ordered().map((t) => t.id),
      finished: [...this.finishedOrder].map((t) => t.id),
      dlq: [...this.dlq.keys()],
      foreignParents: this.foreignParentsCopy(),
      workers: this.workersCopy(),
    };
  }

  foreignParentsCopy(): ForeignParent[] {
    return [...this.foreignParents.values()].map((p) => ({ id: p.id, dependants: [...p.dependants] }));
  }

  workersCopy(): SchedulerState["workers"] {
    return [...this.workers.values()].map((w) => ({
      id: w.id, slots: w.slots, tags: [...w.tags], ...(w.types === undefined ? {} : { types: [...w.types] }), free: w.free, lastSeenAt: w.lastSeenAt,
      done: w.done, failed: w.failed, leased: [...w.leased].map((t) => t.id), draining: w.draining,
    }));
  }

  /**
   * Exports being streamed (snapshot-export.ts): each keeps the state of a task from
   * when it started, so whatever changes a task calls touch() first.
   */
  readonly exports = new Set<{ touch(task: Task): void }>();

  /** A task is about to change or leave the table (see exports). */
  touch(task: Task): void {
    if (this.exports.size === 0) return;
    for (const e of this.exports) e.touch(task);
  }

  /**
   * Tables in exactly the state `exportState()` described, once they pass the
   * full consistency check. Throws SnapshotRefused, saying why, for a state that
   * cannot be built or breaks an invariant: loading it would serve from a state
   * no sequence of moves can reach (a task both queued and leased runs twice).
   */
  static fromState(agingMs: number, state: SchedulerState): SchedulerTables {
    try {
      const tables = SchedulerTables.build(agingMs, state);
      checkSchedulerTables(tables);
      return tables;
    } catch (err) {
      throw new SnapshotRefused(`snapshot refused, not loaded: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  private static build(agingMs: number, state: SchedulerState): SchedulerTables {
    const s = new SchedulerTables(agingMs);
    s.restoreScalars(state);
    s.restoreTasks(state.tasks);
    s.restoreOrders(state.ready, state.finished, state.dlq);
    s.restoreLinks(state.foreignParents ?? [], state.workers);
    return s;
  }

  // The restore runs in these four steps, in this order, so a snapshot that arrives in
  // parts (snapshot-parts.ts) is applied as it comes: tasks first, then what refers to them.

  restoreScalars(state: Pick<SchedulerState, "nextSeq" | "workerRotation" | "counters">): void {
    this.nextSeq = state.nextSeq;
    this.workerRotation = state.workerRotation;
    Object.assign(this.counters, state.counters);
  }

  restoreTasks(records: readonly Task[]): void {
    for (const record of records) {
      const task: Task = {
        ...record, errors: record.errors.length === 0 ? copiedList(record.errors) : record.errors.map(storedAttemptError), watchers: copiedList(record.watchers), dependants: copiedList(record.dependants),
        foreignOutputs: copiedList(record.foreignOutputs ?? []),
      };
      this.tasks.add(task);
      if (!isFinal(task.state)) this.unfinished++;
      if (task.state === "waiting") this.waitingCount++;
      if (task.state === "delayed") {
        this.delayedCount++;
        this.delayed.push(task);
      }
    }
  }

  /** Queued, finished and dead-lettered ids, each list in its order (any of them may come in several calls). */
  restoreOrders(ready: readonly number[], finished: readonly number[], dlq: readonly number[]): void {
    for (const id of ready) this.ready.restore(this.lookup(id));
    for (const id of finished) this.finishedOrder.push(this.lookup(id));
    for (const id of dlq) this.dlq.set(id, this.lookup(id));
  }

  /** The last step: foreign parents and workers (with their leases), then the table's own tidying. */
  restoreLinks(foreignParents: readonly ForeignParent[], workers: SchedulerState["workers"]): void {
    this.tasks.sparsenAll();
    for (const p of foreignParents) this.foreignParents.set(p.id, { id: p.id, dependants: copiedList(p.dependants) });
    for (const w of workers) {
      const leased = new Set(w.leased.map((id) => this.lookup(id)));
      this.workers.set(w.id, {
        id: w.id, slots: w.slots, tags: w.tags, tagSet: new Set(w.tags), types: w.types, typeSet: w.types === undefined ? undefined : new Set(w.types),
        free: w.free, lastSeenAt: w.lastSeenAt,
        done: w.done, failed: w.failed, leased, draining: w.draining ?? false,
      });
      this.leasedCount += leased.size;
    }
  }

  private lookup(id: number): Task {
    const task = this.tasks.get(id);
    if (task === undefined) throw new Error(`snapshot names task ${id} but does not hold it`);
    return task;
  }
}

/** A task as a snapshot holds it: its lists copied (they change in place), the rest shared (never changed in place). */
export function taskCopy(t: Task): Task {
  return { ...t, errors: copiedList(t.errors), watchers: copiedList(t.watchers), dependants: copiedList(t.dependants), foreignOutputs: copiedList(t.foreignOutputs) };
}
