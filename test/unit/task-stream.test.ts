// TaskStream (the load client's path through one connection): each task sent
// ends exactly once, whatever order a batch's answers come back in.

import { expect, test } from "bun:test";
import { TaskStream } from "../../src/sdk/task-stream.ts";
import { FrameWriter, forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { writeSubmittedBatch } from "../../src/protocol/batch-codec.ts";
import { Kind, type BatchItemOutcome } from "../../src/protocol/messages.ts";

/** A stream with request ids from 1 and every end recorded as [token, code]. */
function recorded() {
  let nextId = 1;
  const stream = new TaskStream(() => nextId++);
  const ends: Array<[number, string | undefined]> = [];
  stream.ends = { taskEnded: (token, _ok, _output, code) => void ends.push([token, code]) };
  return { stream, ends };
}

/** Hands the stream a SUBMITTED_BATCH for `batchId`, as the connection would. */
function answerBatch(stream: TaskStream, batchId: number, outcomes: BatchItemOutcome[]): boolean {
  const w = new FrameWriter(1024);
  writeSubmittedBatch(w, batchId, outcomes);
  let handled = false;
  forEachMessage(w.finish().subarray(4), new Reader(), (kind, r) => {
    expect(kind).toBe(Kind.SUBMITTED_BATCH);
    handled = stream.batchAnswered(r);
  });
  return handled;
}

test("a notify task of a batch refused by its own ERROR first is not ended again by the batch's answer", () => {
  const { stream, ends } = recorded();
  // Batch id 1; tasks 10 and 11 wait for their TASK_DONE under request ids 2 and 3.
  stream.send(new FrameWriter(1024), 2, (k) => 10 + k, true, true);
  // The router lost task 11's shard: its done-route is failed before the other shard's part is answered.
  expect(stream.refused(3, "E_UNAVAILABLE")).toBe(true);
  const unavailable: BatchItemOutcome = { ok: false, code: "E_UNAVAILABLE", message: "coordinator lost" };
  expect(answerBatch(stream, 1, [{ ok: true, taskId: 5 }, unavailable])).toBe(true);
  expect(ends).toEqual([[11, "E_UNAVAILABLE"]]);
  expect(stream.answered(2, true, new Uint8Array(0))).toBe(true);
  expect(ends).toEqual([[11, "E_UNAVAILABLE"], [10, undefined]]);
});

test("a batch without notify ends each task once, at its answer", () => {
  const { stream, ends } = recorded();
  stream.send(new FrameWriter(1024), 2, (k) => 20 + k, false, true);
  expect(answerBatch(stream, 1, [{ ok: true, taskId: 1 }, { ok: false, code: "E_QUEUE_FULL", message: "full" }])).toBe(true);
  expect(ends).toEqual([[20, undefined], [21, "E_QUEUE_FULL"]]);
  expect(answerBatch(stream, 1, [{ ok: true, taskId: 1 }, { ok: true, taskId: 2 }])).toBe(false);
});
