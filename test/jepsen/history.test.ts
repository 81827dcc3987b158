// The history checker on small hand-made histories: one clean, then each violation alone.

import { describe, expect, test } from "bun:test";
import { checkHistory, describeViolations, type HistoryEvent } from "./history.ts";

const clean: HistoryEvent[] = [
  { kind: "ack", key: "k1", taskId: "t1", at: 10 },
  { kind: "ack", key: "k2", taskId: "t2", at: 12 },
  // The client retried k1 after a timeout and was given the same task: not a second task.
  { kind: "ack", key: "k1", taskId: "t1", at: 40 },
  { kind: "completed", key: "k1", taskId: "t1", at: 90 },
  { kind: "completed", taskId: "t2", at: 95 },
  // Handover: c1 stops acknowledging before c2 starts.
  { kind: "primary-ack", shard: 0, node: "c1", epoch: 1, from: 0, to: 100 },
  { kind: "primary-ack", shard: 0, node: "c2", epoch: 2, from: 101, to: 300 },
  // The same node over overlapping intervals is one primary, not two.
  { kind: "primary-ack", shard: 0, node: "c2", epoch: 2, from: 250, to: 400 },
  // Another shard's primary at the same time is fine.
  { kind: "primary-ack", shard: 1, node: "c1", epoch: 1, from: 50, to: 350 },
];

describe("checkHistory", () => {
  test("a clean history has no violations", () => {
    expect(checkHistory(clean)).toEqual([]);
    expect(describeViolations([])).toBe("history is clean");
  });

  test("an acknowledged task never completed is lost", () => {
    const violations = checkHistory([...clean, { kind: "ack", key: "k3", taskId: "t3", at: 70 }]);
    expect(violations).toEqual([{ kind: "lost-task", message: "task t3 (key k3) was acknowledged at 70 but never seen completed" }]);
  });

  test("a task acknowledged twice and never completed is reported once", () => {
    const violations = checkHistory([
      { kind: "ack", key: "k", taskId: "t", at: 1 },
      { kind: "ack", key: "k", taskId: "t", at: 2 },
    ]);
    expect(violations.map((v) => v.kind)).toEqual(["lost-task"]);
  });

  test("a completion without an ack is not a violation (the client may have timed out)", () => {
    expect(checkHistory([{ kind: "completed", key: "k", taskId: "t", at: 5 }])).toEqual([]);
  });

  test("one idempotency key acknowledged as two task ids", () => {
    const violations = checkHistory([
      ...clean,
      { kind: "ack", key: "k2", taskId: "t2-again", at: 60 },
      { kind: "completed", key: "k2", taskId: "t2-again", at: 99 },
    ]);
    expect(violations).toEqual([
      { kind: "key-with-two-tasks", message: "key k2 maps to 2 task ids: t2 (acknowledged at 12), t2-again (acknowledged at 60)" },
    ]);
  });

  test("a key completed under a task id other than the acknowledged one: duplicate and lost", () => {
    const violations = checkHistory([
      { kind: "ack", key: "k", taskId: "t1", at: 1 },
      { kind: "completed", key: "k", taskId: "t2", at: 9 },
    ]);
    expect(violations.map((v) => v.kind)).toEqual(["lost-task", "key-with-two-tasks"]);
    expect(violations[1]!.message).toBe("key k maps to 2 task ids: t1 (acknowledged at 1), t2 (completed at 9)");
  });

  test("two nodes acknowledging as primary of one shard in overlapping intervals", () => {
    const violations = checkHistory([
      ...clean,
      { kind: "primary-ack", shard: 0, node: "c3", epoch: 3, from: 380, to: 500 },
    ]);
    expect(violations).toEqual([
      {
        kind: "two-primaries",
        message: "shard 0 had two primaries at once: c2 (epoch 2) over [250, 400] and c3 (epoch 3) over [380, 500], overlapping over [380, 400]",
      },
    ]);
  });

  test("intervals are closed: sharing one instant is an overlap", () => {
    const violations = checkHistory([
      { kind: "primary-ack", shard: 2, node: "a", epoch: 1, from: 0, to: 100 },
      { kind: "primary-ack", shard: 2, node: "b", epoch: 2, from: 100, to: 200 },
    ]);
    expect(violations.map((v) => v.kind)).toEqual(["two-primaries"]);
  });

  test("a long interval overlapping two later ones is reported for each", () => {
    const violations = checkHistory([
      { kind: "primary-ack", shard: 0, node: "a", epoch: 1, from: 0, to: 1000 },
      { kind: "primary-ack", shard: 0, node: "b", epoch: 2, from: 10, to: 20 },
      { kind: "primary-ack", shard: 0, node: "c", epoch: 3, from: 900, to: 950 },
    ]);
    expect(violations.map((v) => v.message.replace(/ over .*/, "").split(": ")[1])).toEqual(["a (epoch 1)", "a (epoch 1)"]);
    expect(violations[0]!.message).toContain("and b (epoch 2)");
    expect(violations[1]!.message).toContain("and c (epoch 3)");
  });

  test("every violation at once, in a readable summary", () => {
    const summary = describeViolations(
      checkHistory([
        { kind: "ack", key: "k", taskId: "t1", at: 1 },
        { kind: "ack", key: "k", taskId: "t2", at: 2 },
        { kind: "completed", taskId: "t2", at: 3 },
        { kind: "primary-ack", shard: 0, node: "a", epoch: 1, from: 0, to: 10 },
        { kind: "primary-ack", shard: 0, node: "b", epoch: 1, from: 5, to: 15 },
      ]),
    );
    expect(summary.split("\n")).toEqual([
      "3 violation(s):",
      "- [lost-task] task t1 (key k) was acknowledged at 1 but never seen completed",
      "- [key-with-two-tasks] key k maps to 2 task ids: t1 (acknowledged at 1), t2 (acknowledged at 2)",
      "- [two-primaries] shard 0 had two primaries at once: a (epoch 1) over [0, 10] and b (epoch 1) over [5, 15], overlapping over [5, 10]",
    ]);
  });

  test("a malformed interval is a bug in the test, not a violation", () => {
    expect(() => checkHistory([{ kind: "primary-ack", shard: 0, node: "a", epoch: 1, from: 10, to: 5 }])).toThrow(/from is after to/);
  });
});
