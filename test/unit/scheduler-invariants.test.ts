// The full consistency check (src/core/scheduler-invariants.ts): it passes on
// a scheduler holding tasks in every state, names the invariant a corrupted
// one breaks, and a snapshot that breaks one is refused, not loaded.

import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/core/assert.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { SnapshotRefused, type SchedulerState } from "../../src/core/scheduler-state.ts";
import { SchedulerTables } from "../../src/core/scheduler-tables.ts";
import { makeTaskId, type Task } from "../../src/core/task.ts";
import { complete, failAttempt, leaseNow, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

/** A scheduler holding a task in every state, a parent on another shard, a draining worker; and its ids. */
function busy() {
  const tables = new SchedulerTables(TEST_OPTIONS.agingMs);
  const s = new Scheduler(TEST_OPTIONS, tables);
  s.workerJoined(1, 2, [], 0);
  s.workerJoined(2, 1, ["gpu"], 0);
  const done = submitOk(s, 0, { idempotencyKey: "k-done" });
  const dead = submitOk(s, 0, { maxAttempts: 1 });
  const leased = submitOk(s, 0);
  leaseNow(s, 0, 1);
  complete(s, done, 1);
  failAttempt(s, dead, 1, "boom");
  const parent = submitOk(s, 1, { tags: ["gpu"], idempotencyKey: "k-parent" });
  const waiting = submitOk(s, 1, { dependsOn: [parent, makeTaskId(TEST_OPTIONS.shard + 1, 7)] });
  const delayed = submitOk(s, 1, { runAt: 5000 });
  const cancelled = submitOk(s, 1);
  s.cancel(cancelled, 2);
  const queued = submitOk(s, 2, { tags: ["tpu"] });
  s.workerDraining(2);
  s.takeReady();
  const ids = { done, dead, leased, parent, waiting, delayed, cancelled, queued };
  return { s, tables, ids };
}

/** `edit` applied to a copy of the busy scheduler's snapshot; the task records by id for it to change. */
function corruptedSnapshot(edit: (state: SchedulerState, task: (id: number) => Task, ids: ReturnType<typeof busy>["ids"]) => void): SchedulerState {
  const { s, ids } = busy();
  const state = structuredClone(s.exportState());
  edit(state, (id) => state.tasks.find((t) => t.id === id)!, ids);
  return state;
}

function refusal(state: SchedulerState): Error {
  try {
    Scheduler.fromState(TEST_OPTIONS, state);
  } catch (err) {
    return err as Error;
  }
  throw new Error("the snapshot was loaded");
}

describe("the full check passes on what the scheduler makes", () => {
  test("tasks in every state, and the same state after a snapshot round trip", () => {
    const { s, ids } = busy();
    expect(Object.values(ids).map((id) => s.task(id)!.state)).toEqual(["completed", "failed", "leased", "queued", "waiting", "delayed", "cancelled", "queued"]);
    s.checkInvariants();
    const restored = Scheduler.fromState(TEST_OPTIONS, structuredClone(s.exportState()));
    restored.checkInvariants();
    expect(restored.exportState()).toEqual(s.exportState());
  });
});

describe("a corrupted scheduler fails the full check, naming the invariant", () => {
  test("a leased count one too high", () => {
    const { s, tables } = busy();
    tables.leasedCount++;
    expect(() => s.checkInvariants()).toThrow(AssertionError);
    expect(() => s.checkInvariants()).toThrow(/every leased task is in its live worker's leases \(leased 1, in workers' leases 1, counted 2\)/);
  });

  test("a queued task that is not in the ready queue", () => {
    const { s, ids } = busy();
    s.task(ids.delayed)!.state = "queued"; // in the delayed heap, not the ready queue
    expect(() => s.checkInvariants()).toThrow(/the ready queue holds every queued task/);
  });

  test("a waiting task that waits on more parents than list it", () => {
    const { s, ids } = busy();
    s.task(ids.waiting)!.waitingOn++;
    expect(() => s.checkInvariants()).toThrow(new RegExp(`a waiting task waits on the parents that list it \\(task ${ids.waiting}, waitingOn 3, listed by 2\\)`));
  });
});

describe("a snapshot that breaks an invariant is refused, not loaded", () => {
  test("a task both queued and leased", () => {
    const state = corruptedSnapshot((st, _task, ids) => st.ready.push(ids.leased));
    const err = refusal(state);
    expect(err).toBeInstanceOf(SnapshotRefused);
    expect(err.message).toStartWith("snapshot refused, not loaded: invariant broken: ");
    expect(err.message).toMatch(/a worker's lease is a task leased to it/);
    expect(err.cause).toBeInstanceOf(AssertionError);
  });

  const cases: Array<[string, Parameters<typeof corruptedSnapshot>[0], RegExp]> = [
    ["a queued task left out of the ready queue", (st, _t, ids) => (st.ready = st.ready.filter((id) => id !== ids.queued)), /the ready queue holds every queued task/],
    ["a task listed twice in the ready queue", (st) => st.ready.push(st.ready[0]!), /a task is queued or delayed once/],
    ["a worker with a free slot too many", (st) => (st.workers[0]!.free += 1), /a worker's free slots are its slots less its leases/],
    ["a failed task left out of the dead-letter queue", (st) => (st.dlq = []), /the dead-letter queue holds every failed task/],
    ["a completed task left out of the retention order", (st) => (st.finished = []), /the retention order holds every completed and cancelled task/],
    ["a submitted count that does not add up", (st) => (st.counters.submitted += 1), /every task submitted is unfinished or ended once/],
    ["a counter below zero", (st) => (st.counters.retried = -1), /counters are whole and never below zero \(counter retried, value -1\)/],
    ["a waiting task waiting on one parent too few", (_st, task, ids) => task(ids.waiting).waitingOn--, /a waiting task waits on the parents that list it/],
    ["a task id past the sequence", (st) => (st.nextSeq = 2), /task ids only move forward/],
    ["two tasks under one idempotency key", (_st, task, ids) => ((task(ids.queued) as { idempotencyKey: string }).idempotencyKey = "k-parent"), /one held task per idempotency key/],
    ["a lease past its task's timeout", (_st, task, ids) => (task(ids.leased).leaseExpiresAt = task(ids.leased).leasedAt + task(ids.leased).timeoutMs + 1), /a lease never outlives its task's timeout/],
    ["a task in an unknown state", (_st, task, ids) => ((task(ids.done) as { state: string }).state = "running"), /a task is in a known state/],
    ["a ready list naming a task it does not hold", (st) => st.ready.push(makeTaskId(TEST_OPTIONS.shard, 999)), /names task \d+ but does not hold it/],
  ];
  test.each(cases)("%s", (_what, edit, invariant) => {
    const err = refusal(corruptedSnapshot(edit));
    expect(err).toBeInstanceOf(SnapshotRefused);
    expect(err.message).toMatch(invariant);
  });
});
