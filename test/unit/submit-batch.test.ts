// The coordinator's handling of SUBMIT_BATCH (Commands.submitBatch) over a real
// event log and scheduler: each task is its own logged entry, the batch has one
// acknowledgement held at the index of its last entry (so it leaves only once
// every task is committed), refusals and repeated keys are per task, and a
// batch that is not well formed, or reaches a backup, is refused whole.

import { expect, test } from "bun:test";
import type { Scheduler } from "../../src/core/scheduler.ts";
import { applyEntry, EventLog } from "../../src/coordinator/event-log.ts";
import { Commands, type CommandPort } from "../../src/coordinator/commands.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter, forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { writeSubmitBatch } from "../../src/protocol/batch-codec.ts";
import { Kind, SUBMIT_FLAG_NOTIFY, type BatchItemOutcome, type SubmitFields } from "../../src/protocol/messages.ts";
import { makeTaskId } from "../../src/core/task.ts";
import { makeScheduler, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

const PAYLOAD_BYTES_MAX = 100;

function task(fields: Partial<SubmitFields> = {}): SubmitFields {
  return { requestId: 0, priority: 1, flags: 0, maxAttempts: 0, timeoutMs: 0, type: "noop", idempotencyKey: "", payload: new Uint8Array(0), ...fields };
}

/** A coordinator in miniature: the port logs each entry and applies it, as Coordinator.record does. */
function harness(primary = true) {
  const scheduler: Scheduler = makeScheduler();
  const log = new EventLog();
  const entryReader = new Reader();
  const calls: string[] = [];
  const acks: Array<{ index: number; requestId: number; outcomes: BatchItemOutcome[] }> = [];
  const errors: Array<{ requestId: number; code: string }> = [];
  let waits = 0;
  const conn = {
    id: 7,
    sendError: (requestId: number, code: string) => void errors.push({ requestId, code }),
    idle: { startWait: () => void waits++ },
  } as unknown as Connection;
  const port: CommandPort = {
    isPrimary: () => primary,
    refuseNotPrimary: (_c, requestId) => void errors.push({ requestId, code: "E_NOT_PRIMARY" }),
    record: (type, subject, body, start, end) => {
      calls.push("record");
      const at = log.append(type, 1000, subject, body, start, end);
      return applyEntry(scheduler, entryReader.reset(log.bytes, at, log.length));
    },
    replyWhenCommitted: () => {},
    submittedWhenCommitted: () => {},
    batchSubmittedWhenCommitted: (_c, requestId, outcomes) => {
      calls.push("ack");
      acks.push({ index: log.lastIndex, requestId, outcomes });
    },
    handingOver: () => undefined,
    scheduler: () => scheduler,
    progressOf: () => undefined,
  };
  const commands = new Commands(port, 0, PAYLOAD_BYTES_MAX);
  const deliver = (write: (w: FrameWriter) => void) => {
    const w = new FrameWriter(1024);
    write(w);
    forEachMessage(w.finish().subarray(4), new Reader(), (kind, r) => {
      expect(kind).toBe(Kind.SUBMIT_BATCH);
      commands.submitBatch(conn, r);
    });
  };
  return { scheduler, log, calls, acks, errors, deliver, waits: () => waits };
}

test("one acknowledgement per batch, after every task is logged, at the index of the last entry", () => {
  const h = harness();
  h.deliver((w) => writeSubmitBatch(w, 41, [task({ idempotencyKey: "a" }), task(), task({ idempotencyKey: "b" })]));
  expect(h.calls).toEqual(["record", "record", "record", "ack"]);
  expect(h.acks).toHaveLength(1);
  expect(h.acks[0]!.requestId).toBe(41);
  expect(h.acks[0]!.index).toBe(3);
  expect(h.acks[0]!.outcomes.every((o) => o.ok)).toBe(true);
  expect(h.scheduler.queuedCount).toBe(3);
});

test("refusals are per task; a key repeated inside the batch gets the first task's id; notify tasks keep the client waiting", () => {
  const h = harness();
  h.deliver((w) => writeSubmitBatch(w, 1, [
    task({ idempotencyKey: "k", flags: SUBMIT_FLAG_NOTIFY, requestId: 100 }),
    task({ payload: new Uint8Array(PAYLOAD_BYTES_MAX + 1) }),
    task({ idempotencyKey: "k" }),
    task({ flags: 2, extras: { delayMs: 0, deadlineMs: 0, backoffType: 0, backoffDelayMs: 0, backoffMaxDelayMs: 0, tags: [], dependsOn: [makeTaskId(TEST_OPTIONS.shard, 999_999)] } }),
    task(),
  ]));
  const [first, large, repeat, orphan, last] = h.acks[0]!.outcomes;
  expect(first!.ok).toBe(true);
  expect(large).toMatchObject({ ok: false, code: "E_TOO_LARGE" });
  expect(repeat).toEqual({ ok: true, taskId: (first as { taskId: number }).taskId });
  expect(orphan).toMatchObject({ ok: false, code: "E_UNKNOWN_TASK" });
  expect(last!.ok).toBe(true);
  expect(h.scheduler.queuedCount).toBe(2);
  expect(h.waits()).toBe(1);
  expect(h.errors).toEqual([]);
});

test("a backup refuses the whole batch on its request id, logging nothing", () => {
  const h = harness(false);
  h.deliver((w) => writeSubmitBatch(w, 9, [task(), task()]));
  expect(h.errors).toEqual([{ requestId: 9, code: "E_NOT_PRIMARY" }]);
  expect(h.calls).toEqual([]);
});

test("a batch with a broken framing is refused whole on its request id; nothing is logged", () => {
  const h = harness();
  h.deliver((w) => {
    w.begin(Kind.SUBMIT_BATCH);
    w.u32(5);
    w.u32(2);
    w.u32(1000); // a task longer than the message
    w.raw(new Uint8Array(40));
    w.end();
  });
  expect(h.errors).toEqual([{ requestId: 5, code: "E_BAD_FRAME" }]);
  expect(h.calls).toEqual([]);
});
