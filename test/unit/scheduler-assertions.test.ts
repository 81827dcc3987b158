// The always-on checks of the scheduler core (src/core/assert.ts): state
// corrupted on purpose must stop the very move that would build on it with an
// AssertionError naming the invariant and the values, never be carried on.

import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/core/assert.ts";
import { Lifecycle } from "../../src/core/lifecycle.ts";
import { ReadyQueue } from "../../src/core/ready-queue.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { SchedulerTables } from "../../src/core/scheduler-tables.ts";
import { leaseNow, makeTask, OK, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

/** A scheduler with its tables in reach, as a test that corrupts them needs, and one task leased to worker 1 (of two). */
function withLease() {
  const tables = new SchedulerTables(TEST_OPTIONS.agingMs);
  const s = new Scheduler(TEST_OPTIONS, tables);
  s.workerJoined(1, 1, [], 0);
  s.workerJoined(2, 1, [], 0);
  const id = submitOk(s, 0);
  const leasedTo = leaseNow(s, 0, 1).length === 1 ? 1 : 2;
  const task = s.task(id)!;
  expect(task).toMatchObject({ state: "leased", workerId: leasedTo, attempt: 1 });
  return { s, tables, task, holder: tables.workers.get(leasedTo)!, other: tables.workers.get(3 - leasedTo)! };
}

function expectAssertion(fn: () => void, invariant: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AssertionError);
  expect((thrown as Error).message).toMatch(/^invariant broken: /);
  expect((thrown as Error).message).toMatch(invariant);
}

describe("a lease is released only by its holder", () => {
  test("a result from another worker for a task whose record names that worker (but whose lease it does not hold) is an assertion", () => {
    const { s, task, holder, other } = withLease();
    task.workerId = other.id; // corrupt: the record and the worker's leases disagree
    expectAssertion(() => s.result(other.id, task.id, 1, OK, new Uint8Array(0), 1), /released only for the worker holding it|in its worker's leases/);
    expect(holder.leased.has(task)).toBe(true);
  });

  test("releasing with the wrong attempt is an assertion that names both attempts", () => {
    const { tables, task, holder } = withLease();
    const lifecycle = new Lifecycle(tables, TEST_OPTIONS);
    expectAssertion(() => lifecycle.releaseLease(task, holder, 2), /released only for the attempt holding it \(task \d+, attempt held 1, attempt released 2\)/);
    expect(holder).toMatchObject({ free: 0 });
    expect(tables.leasedCount).toBe(1);
  });

  test("releasing for a worker that is not the holder is an assertion that names both", () => {
    const { tables, task, holder, other } = withLease();
    const lifecycle = new Lifecycle(tables, TEST_OPTIONS);
    expectAssertion(() => lifecycle.releaseLease(task, other, 1), new RegExp(`held by worker ${holder.id}, released for worker ${other.id}`));
  });

  test("a leased task whose worker is gone is an assertion when cancelled (it used to leave the leased count one too high)", () => {
    const { s, tables, task, holder } = withLease();
    tables.workers.delete(holder.id); // corrupt: removed without ending its leases, as workerLeft() would
    expectAssertion(() => s.cancel(task.id, 1), /a leased task's worker is connected/);
  });
});

describe("counts never go below zero", () => {
  test("cancelling a queued task recorded as waiting takes the waiting count below zero: an assertion", () => {
    const tables = new SchedulerTables(TEST_OPTIONS.agingMs);
    const s = new Scheduler(TEST_OPTIONS, tables);
    const id = submitOk(s, 0);
    s.task(id)!.state = "waiting"; // corrupt: it is in the ready queue
    expectAssertion(() => s.cancel(id, 1), /the waiting count never goes below zero/);
  });

  test("a worker with more free slots than slots cannot have a lease released", () => {
    const { s, task, holder } = withLease();
    holder.free = holder.slots; // corrupt: the slot in use was given back already
    expectAssertion(() => s.result(holder.id, task.id, 1, OK, new Uint8Array(0), 1), /slots in use never go below zero \(worker \d+, free 1, slots 1\)/);
  });

  test("the ready queue refuses to count below zero", () => {
    const q = new ReadyQueue(TEST_OPTIONS.agingMs);
    expectAssertion(() => q.forget(makeTask({ id: 5 })), /the queued count never goes below zero \(task 5\)/);
  });
});

describe("no task in two places, ids only forward", () => {
  test("a task pushed to the ready queue twice is an assertion (it would be dispatched twice)", () => {
    const q = new ReadyQueue(TEST_OPTIONS.agingMs);
    const t = makeTask({ id: 9 });
    q.push(t, 0);
    expectAssertion(() => q.push(t, 0), /a task is queued once \(task 9\)/);
  });

  test("a lease of a task that is not queued is an assertion", () => {
    const { tables, task, other } = withLease();
    expectAssertion(() => new Lifecycle(tables, TEST_OPTIONS).lease(task, other, 1), /only a queued task is leased/);
  });

  test("a task id handed out again is an assertion, not a task silently replaced", () => {
    const tables = new SchedulerTables(TEST_OPTIONS.agingMs);
    const s = new Scheduler(TEST_OPTIONS, tables);
    submitOk(s, 0);
    tables.nextSeq = 1; // corrupt: the sequence went back
    expectAssertion(() => s.submit({ type: "t", payload: new Uint8Array(0), priority: 0, maxAttempts: 0, timeoutMs: 0, idempotencyKey: "", watcher: 0, watchRequestId: 0 }, 1), /a new task's id is not held already/);
  });
});
