// The scheduler's full consistency check: every table against every other, in
// O(n) of the tasks held. Too slow for every move (the always-on checks in
// lifecycle.ts and scheduler.ts guard those), it runs where a whole state
// arrives or is worth proving: when a snapshot is restored (fromState refuses
// one that fails it) and after each step of the simulations and fuzzers.
//
// What it proves, together: each queued task is in the ready queue once, each
// delayed task in the delayed heap once, each leased task in the leases of the
// one live worker its record names; each ended task in the retention order or
// the dead-letter queue; the counts match what is held; no task is in two
// places; a waiting task waits on exactly the parents that list it.
//
// It walks with forEach callbacks rather than iterators: the simulations run it
// after every step, and a generator per task was most of its cost there.

import { assert } from "./assert.ts";
import type { SchedulerTables } from "./scheduler-tables.ts";
import { isFinal, seqOfTask, type Task, type TaskState } from "./task.ts";

type Counts = Record<TaskState, number>;

/** Throws an AssertionError naming the first invariant the tables break. */
export function checkSchedulerTables(t: SchedulerTables): void {
  const { counts, waiting, parents } = checkTasks(t);
  const unfinished = counts.waiting + counts.delayed + counts.queued + counts.leased;
  assert(unfinished === t.unfinished, "the unfinished count is the tasks not ended", "held", unfinished, "counted", t.unfinished);
  assert(counts.waiting === t.waitingCount, "the waiting count is the waiting tasks", "held", counts.waiting, "counted", t.waitingCount);
  checkQueues(t, counts);
  checkLeases(t, counts);
  checkEnded(t, counts);
  checkDependants(t, waiting, parents);
  const c = t.counters;
  for (const [name, value] of Object.entries(c)) assert(Number.isSafeInteger(value) && value >= 0, "counters are whole and never below zero", "counter", name, "value", value);
  assert(c.submitted === c.completed + c.failed + c.cancelled + unfinished, "every task submitted is unfinished or ended once",
    "submitted", c.submitted, "ended", c.completed + c.failed + c.cancelled, "unfinished", unfinished);
}

/**
 * Each task where its id says, under its own key, with a sequence number
 * already handed out; counts by state, the waiting tasks, and the tasks with
 * dependants (parents not ended: an ended one has told its dependants).
 */
function checkTasks(t: SchedulerTables): { counts: Counts; waiting: Task[]; parents: Task[] } {
  const counts: Counts = { waiting: 0, delayed: 0, queued: 0, leased: 0, completed: 0, failed: 0, cancelled: 0 };
  const waiting: Task[] = [];
  const parents: Task[] = [];
  let held = 0;
  t.tasks.forEach((task) => {
    held++;
    assert(t.tasks.get(task.id) === task, "the table finds each task under its id", "task", task.id);
    assert(seqOfTask(task.id) < t.nextSeq, "task ids only move forward: each held id was handed out", "task", task.id, "nextSeq", t.nextSeq);
    assert(counts[task.state] !== undefined, "a task is in a known state", "task", task.id, "state", task.state);
    counts[task.state]++;
    if (task.idempotencyKey !== "") assert(t.tasks.withKey(task.idempotencyKey) === task, "one held task per idempotency key", "task", task.id, "key", task.idempotencyKey);
    if (task.state === "waiting") {
      assert(task.waitingOn > 0, "a waiting task waits on a parent", "task", task.id);
      waiting.push(task);
    } else if (!isFinal(task.state)) {
      assert(task.waitingOn === 0, "a task past waiting waits on no parent", "task", task.id, "state", task.state, "waitingOn", task.waitingOn);
    } else {
      assert(task.dependants.length === 0, "an ended task has told its dependants", "task", task.id, "dependants", task.dependants.length);
    }
    if (task.dependants.length > 0) parents.push(task);
  });
  assert(held === t.tasks.size, "the table's size is the tasks it holds", "held", held, "size", t.tasks.size);
  return { counts, waiting, parents };
}

/** Every live entry of the ready queue and the delayed heap is a held task, once; together they are all queued and delayed tasks. */
function checkQueues(t: SchedulerTables, counts: Counts): void {
  const queued = new LiveOnce(t, "queued");
  const byPriority = new Map<number, number>();
  t.ready.forEachEntry((task) => {
    queued.see(task);
    if (task.state === "queued") byPriority.set(task.priority, (byPriority.get(task.priority) ?? 0) + 1);
  });
  assert(queued.count === counts.queued && queued.count === t.ready.length, "the ready queue holds every queued task",
    "queued", counts.queued, "in the queue", queued.count, "counted", t.ready.length);
  for (const { priority, queued: n } of t.ready.byPriority()) {
    assert(byPriority.get(priority) === n, "the ready queue counts each priority's queued tasks", "priority", priority, "counted", n, "in the queue", byPriority.get(priority) ?? 0);
  }
  assert(t.ready.byPriority().length === byPriority.size, "every queued priority is counted", "counted", t.ready.byPriority().length, "in the queue", byPriority.size);
  const delayed = new LiveOnce(t, "delayed");
  for (const task of t.delayed.values()) delayed.see(task);
  assert(delayed.count === counts.delayed && delayed.count === t.delayedCount, "the delayed heap holds every delayed task",
    "delayed", counts.delayed, "in the heap", delayed.count, "counted", t.delayedCount);
}

/** Counts the entries of a queue in `state` (the rest are stale, left by a cancel); each such one must be held, and seen once. */
class LiveOnce {
  private readonly seen = new Set<number>();

  constructor(private readonly t: SchedulerTables, private readonly state: TaskState) {}

  get count(): number {
    return this.seen.size;
  }

  readonly see = (task: Task): void => {
    if (task.state !== this.state) return;
    assert(this.t.tasks.get(task.id) === task, "a queued or delayed task is held", "task", task.id, "state", this.state);
    assert(!this.seen.has(task.id), "a task is queued or delayed once", "task", task.id, "state", this.state);
    this.seen.add(task.id);
  };
}

/**
 * Each worker's leases are held tasks leased to it; together they are every leased task.
 * Its free slots are its credit less its leases: below zero after its credit shrank under
 * what it runs (workerCredit), which only stops new leases until enough finish.
 */
function checkLeases(t: SchedulerTables, counts: Counts): void {
  let leases = 0;
  for (const [id, worker] of t.workers) {
    assert(worker.id === id, "a worker is kept under its id", "worker", worker.id, "key", id);
    assert(worker.slots >= 0 && worker.free === worker.slots - worker.leased.size, "a worker's free slots are its slots less its leases",
      "worker", id, "free", worker.free, "slots less leases", worker.slots - worker.leased.size);
    for (const task of worker.leased) {
      assert(task.state === "leased" && task.workerId === id, "a worker's lease is a task leased to it", "task", task.id, "state", task.state, "worker", task.workerId);
      assert(t.tasks.get(task.id) === task, "a leased task is held", "task", task.id);
      assert(task.attempt > task.attemptBase && task.attempt - task.attemptBase - 1 < task.maxAttempts, "a lease was given while attempts remained",
        "task", task.id, "attempt", task.attempt - task.attemptBase, "maxAttempts", task.maxAttempts);
      assert(task.leaseExpiresAt <= task.leasedAt + task.timeoutMs, "a lease never outlives its task's timeout", "task", task.id, "expires", task.leaseExpiresAt);
    }
    leases += worker.leased.size;
  }
  // Each lease names its worker, so no task is in two workers' leases: equal counts mean every leased task is in one.
  assert(leases === counts.leased && leases === t.leasedCount, "every leased task is in its live worker's leases",
    "leased", counts.leased, "in workers' leases", leases, "counted", t.leasedCount);
}

/** Completed and cancelled tasks are in the retention order, failed ones in the dead-letter queue, each once. */
function checkEnded(t: SchedulerTables, counts: Counts): void {
  const seen = new Set<number>();
  for (const task of t.finishedOrder) {
    assert(task.state === "completed" || task.state === "cancelled", "the retention order holds completed and cancelled tasks", "task", task.id, "state", task.state);
    assert(t.tasks.get(task.id) === task && !seen.has(task.id), "a retained task is held, once", "task", task.id);
    seen.add(task.id);
  }
  assert(seen.size === counts.completed + counts.cancelled, "the retention order holds every completed and cancelled task",
    "in order", seen.size, "held", counts.completed + counts.cancelled);
  for (const [id, task] of t.dlq) {
    assert(task.id === id && task.state === "failed" && t.tasks.get(id) === task, "a dead letter is a held failed task under its id", "task", id, "state", task.state);
  }
  assert(t.dlq.size === counts.failed, "the dead-letter queue holds every failed task", "dead letters", t.dlq.size, "failed", counts.failed);
}

/** A waiting task's waitingOn is how many not-ended parents (here or on another shard) list it. */
function checkDependants(t: SchedulerTables, waiting: readonly Task[], parents: readonly Task[]): void {
  if (waiting.length === 0) return;
  const listed = new Map<number, number>();
  const count = (dependants: readonly number[]) => {
    for (const id of dependants) listed.set(id, (listed.get(id) ?? 0) + 1);
  };
  for (const parent of parents) count(parent.dependants);
  for (const [id, parent] of t.foreignParents) {
    assert(parent.id === id, "a parent on another shard is kept under its id", "parent", parent.id, "key", id);
    count(parent.dependants);
  }
  for (const task of waiting) {
    const parents = listed.get(task.id) ?? 0;
    assert(parents === task.waitingOn, "a waiting task waits on the parents that list it", "task", task.id, "waitingOn", task.waitingOn, "listed by", parents);
  }
}
