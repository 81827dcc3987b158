// Dependencies between tasks (dependsOn) and workflows (submitWorkflow), with an
// explicit `now`: a child waits until every parent completed, fails with
// E_DEPENDENCY when one did not, and a workflow is created whole or not at all.

import { describe, expect, test } from "bun:test";
import { makeTaskId } from "../../src/core/task.ts";
import { complete, failAttempt, finishedIds, leaseNow, makeScheduler, node, request, state, submitOk } from "../support/scheduler-fixtures.ts";

describe("dependencies", () => {
  test("a child waits while its parent runs and is queued when it completes, with the parent's output as input", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const parent = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [parent] });
    expect(s.task(child)).toMatchObject({ state: "waiting", waitingOn: 1, dependsOn: [parent] });
    expect([s.waitingTotal, s.queuedCount]).toEqual([1, 1]);
    expect(leaseNow(s, 0, 1)).toEqual([parent]);
    complete(s, parent, 5, Uint8Array.from([42]));
    expect(state(s, child)).toBe("queued");
    expect(s.waitingTotal).toBe(0);
    expect(s.inputsOf(s.task(child)!)).toEqual([Uint8Array.from([42])]);
    expect(leaseNow(s, 5, 1)).toEqual([child]);
  });

  test("a child of several parents is released only when all of them completed", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const a = submitOk(s, 0);
    const b = submitOk(s, 0);
    const c = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [c, a, b] });
    expect(leaseNow(s, 0, 1)).toEqual([a, b, c]);
    complete(s, a, 1, Uint8Array.from([1]));
    complete(s, c, 2, Uint8Array.from([3]));
    expect(s.task(child)).toMatchObject({ state: "waiting", waitingOn: 1 });
    complete(s, b, 3, Uint8Array.from([2]));
    expect(state(s, child)).toBe("queued");
    expect(s.inputsOf(s.task(child)!)).toEqual([3, 1, 2].map((x) => Uint8Array.from([x])));
  });

  test("a 3-level DAG is released level by level", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const root = submitOk(s, 0);
    const left = submitOk(s, 0, { dependsOn: [root] });
    const right = submitOk(s, 0, { dependsOn: [root] });
    const leaf = submitOk(s, 0, { dependsOn: [left, right] });
    const waves: number[][] = [];
    for (let now = 1; now <= 5; now++) {
      const wave = leaseNow(s, now, 1);
      waves.push(wave);
      for (const id of wave) complete(s, id, now);
    }
    expect(waves).toEqual([[root], [left, right], [leaf], [], []]);
    expect(s.counters.completed).toBe(4);
  });

  test("a parent already completed does not hold the child; one already failed fails it at once", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const good = submitOk(s, 0);
    const bad = submitOk(s, 0, { maxAttempts: 1 });
    leaseNow(s, 0, 1);
    complete(s, good, 1);
    failAttempt(s, bad, 1, "no");
    finishedIds(s);
    expect(state(s, submitOk(s, 2, { dependsOn: [good] }))).toBe("queued");
    const doomed = submitOk(s, 2, { dependsOn: [good, bad] });
    expect(s.task(doomed)!.state).toBe("failed");
    expect(s.task(doomed)!.errors).toEqual([{ attempt: 0, workerId: 0, at: 2, code: "E_DEPENDENCY", message: `parent task ${bad} failed` }]);
    expect(finishedIds(s)).toEqual([doomed]);
  });

  test("a parent failed for good fails its child and grandchild with E_DEPENDENCY", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const parent = submitOk(s, 0, { maxAttempts: 1 });
    const sibling = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [parent, sibling] });
    const grandchild = submitOk(s, 0, { dependsOn: [child], watcher: 5, watchRequestId: 50 });
    leaseNow(s, 0, 1);
    failAttempt(s, parent, 10, "broken");
    const ready = s.takeReady();
    expect(ready.finished.map((t) => t.id)).toEqual([parent, child, grandchild]);
    expect(ready.notices.map((n) => n.task.id)).toEqual([grandchild]);
    expect(s.task(child)).toMatchObject({ state: "failed", attempt: 0, errors: [{ attempt: 0, workerId: 0, at: 10, code: "E_DEPENDENCY", message: `parent task ${parent} failed` }] });
    expect(s.task(grandchild)).toMatchObject({ state: "failed", errors: [{ attempt: 0, workerId: 0, at: 10, code: "E_DEPENDENCY", message: `parent task ${child} failed` }] });
    expect(s.waitingTotal).toBe(0);
    expect(s.counters).toMatchObject({ failed: 3, submitted: 4 });
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual([parent, child, grandchild]);
    // The sibling is not affected, and its completion does not revive the child.
    complete(s, sibling, 11);
    expect(state(s, child)).toBe("failed");
  });

  test("a cancelled parent fails its child with E_DEPENDENCY", () => {
    const s = makeScheduler();
    const parent = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [parent] });
    s.cancel(parent, 3);
    expect(s.task(child)!.errors[0]).toMatchObject({ code: "E_DEPENDENCY", message: `parent task ${parent} cancelled` });
    expect(state(s, child)).toBe("failed");
  });

  test("an unknown parent is E_UNKNOWN_TASK and nothing is created", () => {
    const s = makeScheduler();
    const known = submitOk(s, 0);
    const outcome = s.submit(request({ dependsOn: [known, known + 1000] }), 0);
    expect(outcome).toMatchObject({ ok: false, code: "E_UNKNOWN_TASK" });
    expect(s.counters.submitted).toBe(1);
    expect(s.task(known)!.dependants).toEqual([]);
  });
});

describe("workflows", () => {
  test("all nodes are created at once, references by node and by task id resolved", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const existing = submitOk(s, 0);
    const outcome = s.submitWorkflow([
      node({ type: "fetch" }),
      node({ type: "parse", dependsOn: [{ node: 0 }] }),
      node({ type: "index", dependsOn: [{ node: 1 }, { taskId: existing }] }),
      node({ type: "notify", dependsOn: [{ node: 2 }, { node: 0 }] }),
    ], 1);
    if (!outcome.ok) throw new Error(outcome.message);
    const [fetch, parse, index, notify] = outcome.taskIds as [number, number, number, number];
    expect(new Set(outcome.taskIds).size).toBe(4);
    expect(outcome.taskIds.map((id) => s.task(id)!.type)).toEqual(["fetch", "parse", "index", "notify"]);
    expect(s.task(parse)!.dependsOn).toEqual([fetch]);
    expect(s.task(index)!.dependsOn).toEqual([parse, existing]);
    expect(s.task(notify)!.dependsOn).toEqual([index, fetch]);
    expect(outcome.taskIds.map((id) => state(s, id))).toEqual(["queued", "waiting", "waiting", "waiting"]);
    expect(s.counters.submitted).toBe(5);
    const waves: number[][] = [];
    for (let now = 2; now <= 6; now++) {
      const wave = leaseNow(s, now, 1);
      waves.push(wave);
      for (const id of wave) complete(s, id, now);
    }
    expect(waves).toEqual([[existing, fetch], [parse], [index], [notify], []]);
  });

  test("a cycle is E_CYCLE and nothing is created", () => {
    for (const nodes of [
      [node({ dependsOn: [{ node: 1 }] }), node({ dependsOn: [{ node: 0 }] })],
      [node(), node({ dependsOn: [{ node: 2 }] }), node({ dependsOn: [{ node: 3 }] }), node({ dependsOn: [{ node: 1 }] })],
      [node({ dependsOn: [{ node: 0 }] })],
    ]) {
      const s = makeScheduler();
      expect(s.submitWorkflow(nodes, 0)).toMatchObject({ ok: false, code: "E_CYCLE" });
      expect(s.counters.submitted).toBe(0);
      expect(s.queuedCount + s.waitingTotal).toBe(0);
      expect(submitOk(s, 0)).toBe(3 * 2 ** 40 + 1); // no id was used up
    }
  });

  test("a reference to a missing node is E_BAD_REQUEST; to an unknown task E_UNKNOWN_TASK; an empty workflow E_BAD_REQUEST", () => {
    const s = makeScheduler();
    expect(s.submitWorkflow([node(), node({ dependsOn: [{ node: 2 }] })], 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.submitWorkflow([node(), node({ dependsOn: [{ taskId: makeTaskId(3, 12345) }] })], 0)).toMatchObject({ ok: false, code: "E_UNKNOWN_TASK" });
    expect(s.submitWorkflow([node(), node({ type: "" })], 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.submitWorkflow([], 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.counters.submitted).toBe(0);
  });

  test("the queue limit counts every node: a workflow that does not fit entirely is refused whole", () => {
    const s = makeScheduler({ queueMax: 5 });
    for (let i = 0; i < 3; i++) submitOk(s, 0);
    const three = [node(), node({ dependsOn: [{ node: 0 }] }), node()];
    expect(s.submitWorkflow(three, 0)).toMatchObject({ ok: false, code: "E_QUEUE_FULL" });
    expect(s.counters).toMatchObject({ submitted: 3, rejectedQueueFull: 1 });
    expect(s.submitWorkflow(three.slice(0, 2), 0)).toMatchObject({ ok: true });
    expect(s.counters.submitted).toBe(5);
    expect(s.submit(request(), 0)).toMatchObject({ ok: false, code: "E_QUEUE_FULL" });
  });

  test("a node depending on a task that already failed fails at once, and so do its dependants in the workflow", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const bad = submitOk(s, 0, { maxAttempts: 1 });
    leaseNow(s, 0, 1);
    failAttempt(s, bad, 1, "x");
    const outcome = s.submitWorkflow([node({ dependsOn: [{ taskId: bad }] }), node({ dependsOn: [{ node: 0 }] }), node()], 2);
    if (!outcome.ok) throw new Error(outcome.message);
    expect(outcome.taskIds.map((id) => state(s, id))).toEqual(["failed", "failed", "queued"]);
  });
});

// Idempotency keys in a workflow (workflow-submit.ts, docs/scheduling.md): a
// retry whose keys name the tasks an earlier submission of the same workflow
// created gets the original ids, unkeyed nodes included, and creates nothing;
// any other use of a key that names a held task refuses the whole workflow, so
// a node never takes a key over.
describe("workflow idempotency keys", () => {
  test("a retried workflow with the same keys creates no new task", () => {
    const s = makeScheduler();
    const nodes = [node({ idempotencyKey: "w0" }), node({ idempotencyKey: "w1", dependsOn: [{ node: 0 }] })];
    const first = s.submitWorkflow(nodes, 0);
    const retry = s.submitWorkflow(nodes, 1);
    expect(s.counters.submitted).toBe(2);
    expect(retry).toEqual(first);
  });

  test("a node does not take over the key of an existing task", () => {
    const s = makeScheduler();
    const mine = submitOk(s, 0, { idempotencyKey: "k" });
    expect(s.submitWorkflow([node({ idempotencyKey: "k" }), node({ idempotencyKey: "other" })], 1)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.submit(request({ idempotencyKey: "k" }), 2)).toEqual({ ok: true, taskId: mine, duplicate: true });
    expect(s.counters.submitted).toBe(1);
    // Nor does the refused workflow's other key name anything: a later workflow may use it.
    expect(s.submitWorkflow([node({ idempotencyKey: "other" })], 3)).toMatchObject({ ok: true });
  });

  test("a retry gets every original id, unkeyed nodes too, in node order, while the tasks run; it is counted as a duplicate", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const existing = submitOk(s, 0);
    const nodes = [
      node({ type: "c", dependsOn: [{ node: 2 }, { taskId: existing }] }),
      node({ type: "b", idempotencyKey: "b", dependsOn: [{ node: 2 }] }),
      node({ type: "a" }),
      node({ type: "d", idempotencyKey: "d", dependsOn: [{ node: 0 }, { node: 1 }] }),
    ];
    const first = s.submitWorkflow(nodes, 1);
    if (!first.ok) throw new Error(first.message);
    const a = first.taskIds[2]!;
    expect(leaseNow(s, 2, 1)).toEqual([existing, a]);
    complete(s, a, 3);
    for (const now of [4, 5]) expect(s.submitWorkflow(nodes, now)).toEqual(first);
    expect(s.counters).toMatchObject({ submitted: 5, duplicates: 2 });
    expect(s.queuedCount + s.waitingTotal).toBe(3);
  });

  test("a retry is answered even when the queue is full, like a retried submit", () => {
    const s = makeScheduler({ queueMax: 2 });
    const nodes = [node({ idempotencyKey: "x" }), node({ idempotencyKey: "y" })];
    const first = s.submitWorkflow(nodes, 0);
    expect(first).toMatchObject({ ok: true });
    expect(s.submitWorkflow(nodes, 1)).toEqual(first);
    expect(s.counters.rejectedQueueFull).toBe(0);
  });

  test("a workflow that is not the same as the earlier one under its keys is refused whole", () => {
    const s = makeScheduler();
    const nodes = [node({ idempotencyKey: "w0" }), node({ idempotencyKey: "w1", dependsOn: [{ node: 0 }] })];
    s.submitWorkflow(nodes, 0);
    const variants = [
      [nodes[0]!, node({ idempotencyKey: "fresh", dependsOn: [{ node: 0 }] })], // one key changed
      [nodes[0]!, node({ idempotencyKey: "w1" })], // other dependencies
      [nodes[0]!, { ...nodes[1]!, type: "other" }], // another type
      [...nodes, node({ idempotencyKey: "w2" })], // a node more
      [nodes[1]!, nodes[0]!].map((n) => ({ ...n, dependsOn: [] })), // same keys, nodes swapped
    ];
    for (const variant of variants) {
      const outcome = s.submitWorkflow(variant, 1);
      expect(outcome).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
      if (!outcome.ok) expect(outcome.message).toContain('idempotency key "w');
    }
    expect(s.counters).toMatchObject({ submitted: 2, duplicates: 0 });
  });

  test("keys repeated within one workflow are refused", () => {
    const s = makeScheduler();
    const outcome = s.submitWorkflow([node({ idempotencyKey: "k" }), node(), node({ idempotencyKey: "k" })], 0);
    expect(outcome).toMatchObject({ ok: false, code: "E_BAD_REQUEST", message: 'nodes 0 and 2 have the same idempotency key "k"; keys must be distinct' });
    expect(s.counters.submitted).toBe(0);
  });

  test("a retry is refused once part of the earlier workflow is no longer held: its ids cannot all be vouched for", () => {
    const s = makeScheduler({ retainedMs: 100 });
    s.workerJoined(1, 10, [], 0);
    const nodes = [node(), node({ idempotencyKey: "w1", dependsOn: [{ node: 0 }] })];
    const first = s.submitWorkflow(nodes, 0);
    if (!first.ok) throw new Error(first.message);
    complete(s, leaseNow(s, 0, 1)[0]!, 1); // the unkeyed root; its child stays queued
    s.tick(150);
    expect([s.task(first.taskIds[0]!), state(s, first.taskIds[1]!)]).toEqual([undefined, "queued"]);
    const refused = s.submitWorkflow(nodes, 150);
    expect(refused).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    if (!refused.ok) expect(refused.message).toContain(`(${first.taskIds[0]}: no longer held)`);
  });

  test("once every task of the earlier workflow is evicted its keys are free again, as for a submit", () => {
    const s = makeScheduler({ retainedMs: 100 });
    s.workerJoined(1, 10, [], 0);
    const nodes = [node({ idempotencyKey: "w0" })];
    const first = s.submitWorkflow(nodes, 0);
    complete(s, leaseNow(s, 0, 1)[0]!, 1);
    s.tick(150);
    const later = s.submitWorkflow(nodes, 150);
    expect(later).toMatchObject({ ok: true });
    expect(later).not.toEqual(first);
    expect(s.counters).toMatchObject({ submitted: 2, duplicates: 0 });
  });
});
