// Dependencies on tasks of other shards, in the pure core: the shard waits on
// a "foreign parent" until the router reports how it ended (foreignParentEnded).

import { describe, expect, test } from "bun:test";
import { Scheduler } from "../../src/core/scheduler.ts";
import { makeTaskId } from "../../src/core/task.ts";
import { complete, leaseNow, makeScheduler, node, state, submitOk, utf8 } from "../support/scheduler-fixtures.ts";

// makeScheduler() serves shard 3; these live on shard 5.
const FOREIGN_A = makeTaskId(5, 1);
const FOREIGN_B = makeTaskId(5, 2);

describe("foreign parents", () => {
  test("a task waits on a parent of another shard until its end is reported, then runs with its output as input", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const local = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [FOREIGN_A, local] });
    expect(state(s, child)).toBe("waiting");
    expect(s.foreignWaits()).toEqual([FOREIGN_A]);
    complete(s, leaseNow(s, 1, 1)[0]!, 2); // the local parent
    expect(state(s, child)).toBe("waiting");
    expect(s.foreignParentEnded(FOREIGN_A, "completed", utf8.encode("from shard 5"), 3)).toBe(true);
    expect(s.foreignWaits()).toEqual([]);
    expect(leaseNow(s, 3, 1)).toEqual([child]);
    expect(s.inputsOf(s.task(child)!).map((b) => new TextDecoder().decode(b))).toEqual(["from shard 5", ""]);
  });

  test("a failed or cancelled foreign parent fails its dependants with E_DEPENDENCY", () => {
    const s = makeScheduler();
    const a = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    const b = submitOk(s, 0, { dependsOn: [FOREIGN_B] });
    s.foreignParentEnded(FOREIGN_A, "failed", new Uint8Array(0), 1);
    s.foreignParentEnded(FOREIGN_B, "cancelled", new Uint8Array(0), 1);
    expect([state(s, a), state(s, b)]).toEqual(["failed", "failed"]);
    expect(s.task(a)!.errors.at(-1)).toMatchObject({ code: "E_DEPENDENCY", message: `parent task ${FOREIGN_A} failed` });
    expect(s.task(b)!.errors.at(-1)!.message).toContain(`parent task ${FOREIGN_B} cancelled`);
  });

  test("reports are idempotent: a repeated or unknown report changes nothing", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const child = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    expect(s.foreignParentEnded(FOREIGN_B, "completed", new Uint8Array(0), 1)).toBe(false);
    expect(s.foreignParentEnded(FOREIGN_A, "completed", new Uint8Array(0), 1)).toBe(true);
    expect(s.foreignParentEnded(FOREIGN_A, "failed", new Uint8Array(0), 2)).toBe(false);
    expect(leaseNow(s, 2, 1)).toEqual([child]);
  });

  test("many dependants share one wait; a workflow node may depend on a foreign task", () => {
    const s = makeScheduler();
    const one = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    const two = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    const flow = s.submitWorkflow([node({ dependsOn: [{ taskId: FOREIGN_A }] }), node({ dependsOn: [{ node: 0 }] })], 0);
    if (!flow.ok) throw new Error(flow.message);
    expect(s.foreignWaits()).toEqual([FOREIGN_A]);
    s.foreignParentEnded(FOREIGN_A, "completed", new Uint8Array(0), 1);
    expect([state(s, one), state(s, two), state(s, flow.taskIds[0]!), state(s, flow.taskIds[1]!)]).toEqual(["queued", "queued", "queued", "waiting"]);
  });

  test("waits survive a snapshot: the restored scheduler still waits, and settles the same", () => {
    const s = makeScheduler();
    const child = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    const restored = Scheduler.fromState(s.options, structuredClone(s.exportState()));
    expect(restored.foreignWaits()).toEqual([FOREIGN_A]);
    restored.foreignParentEnded(FOREIGN_A, "completed", utf8.encode("x"), 1);
    expect(restored.task(child)!.state).toBe("queued");
    expect(restored.task(child)!.foreignOutputs.map(([id]) => id)).toEqual([FOREIGN_A]);
  });

  test("a requeued dependant whose foreign parent failed waits on it again (the router reports it again)", () => {
    const s = makeScheduler();
    const child = submitOk(s, 0, { dependsOn: [FOREIGN_A] });
    s.foreignParentEnded(FOREIGN_A, "failed", new Uint8Array(0), 1);
    expect(state(s, child)).toBe("failed");
    expect(s.requeue(child, 2)).toBe(true);
    expect(state(s, child)).toBe("waiting");
    expect(s.foreignWaits()).toEqual([FOREIGN_A]);
    s.foreignParentEnded(FOREIGN_A, "completed", new Uint8Array(0), 3);
    expect(state(s, child)).toBe("queued");
  });

  test("a parent id on this shard that is not held is still E_UNKNOWN_TASK", () => {
    const s = makeScheduler();
    expect(s.submit({ ...nodeless(), dependsOn: [makeTaskId(3, 999)] }, 0)).toMatchObject({ ok: false, code: "E_UNKNOWN_TASK" });
  });
});

function nodeless() {
  return { type: "t", payload: new Uint8Array(0), priority: 100, maxAttempts: 1, timeoutMs: 1000, idempotencyKey: "", watcher: 0, watchRequestId: 0 };
}
