// How submitBatch cuts a list of tasks into SUBMIT_BATCH messages
// (batch-submit.ts), without a connection: by task count, by payload bytes,
// with refused tasks kept in place and outcomes back in the caller's order.

import { expect, test } from "bun:test";
import { acceptedIds, BATCH_PAYLOAD_BYTES_MAX, BatchSubmitError, submitInBatches, type BatchTask } from "../../src/sdk/batch-submit.ts";
import { SUBMIT_BATCH_TASKS_MAX, type BatchItemOutcome, type SubmitFields } from "../../src/protocol/messages.ts";

function fieldsOf(t: BatchTask): SubmitFields | string {
  if (t.type === "bad") return "refused here";
  const payload = t.payload instanceof Uint8Array ? t.payload : new Uint8Array(0);
  return { requestId: 0, priority: 100, flags: 0, maxAttempts: 0, timeoutMs: 0, type: t.type, idempotencyKey: String(t.options?.idempotencyKey ?? ""), payload };
}

/** Accepts every task, naming it by its key, and records each batch's size. */
function recorder(): { batches: number[]; send(tasks: SubmitFields[]): Promise<BatchItemOutcome[]> } {
  const batches: number[] = [];
  return {
    batches,
    send: async (tasks) => {
      batches.push(tasks.length);
      return tasks.map((t) => ({ ok: true, taskId: Number(t.idempotencyKey) }));
    },
  };
}

test("a list longer than SUBMIT_BATCH_TASKS_MAX goes as several batches, outcomes in order", async () => {
  const tasks: BatchTask[] = Array.from({ length: SUBMIT_BATCH_TASKS_MAX + 3 }, (_, i) => ({ type: "noop", options: { idempotencyKey: String(i) } }));
  const r = recorder();
  const outcomes = await submitInBatches(tasks, fieldsOf, r.send);
  expect(r.batches).toEqual([SUBMIT_BATCH_TASKS_MAX, 3]);
  expect(acceptedIds(outcomes)).toEqual(tasks.map((_, i) => i));
});

test("payload bytes past BATCH_PAYLOAD_BYTES_MAX start a new batch", async () => {
  const half = new Uint8Array(BATCH_PAYLOAD_BYTES_MAX / 2 + 1);
  const tasks: BatchTask[] = [0, 1, 2].map((i) => ({ type: "noop", payload: half, options: { idempotencyKey: String(i) } }));
  const r = recorder();
  await submitInBatches(tasks, fieldsOf, r.send);
  expect(r.batches).toEqual([1, 1, 1]);
});

test("a task refused before sending keeps its place; acceptedIds names the first refused", async () => {
  const tasks: BatchTask[] = [{ type: "noop", options: { idempotencyKey: "7" } }, { type: "bad" }, { type: "noop", options: { idempotencyKey: "9" } }];
  const r = recorder();
  const outcomes = await submitInBatches(tasks, fieldsOf, r.send);
  expect(r.batches).toEqual([2]);
  expect(outcomes).toEqual([{ ok: true, taskId: 7 }, { ok: false, code: "E_BAD_REQUEST", message: "refused here" }, { ok: true, taskId: 9 }]);
  expect(() => acceptedIds(outcomes)).toThrow(BatchSubmitError);
  try {
    acceptedIds(outcomes);
  } catch (err) {
    expect((err as BatchSubmitError).code).toBe("E_BAD_REQUEST");
    expect((err as BatchSubmitError).message).toContain("task 1 of the batch: refused here (1 of 3 refused");
  }
});
