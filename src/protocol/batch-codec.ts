// SUBMIT_BATCH and SUBMITTED_BATCH: many tasks in one message, each a whole
// SUBMIT body, and one outcome per task back (docs/protocol.md, "Batches").
// Readers check the framing before anything is allocated for the tasks.

import { decodeUtf8, readSubmit, writeSubmitBody, type FrameWriter, type Reader } from "./codec.ts";
import { ProtocolError, type ErrorCode } from "./errors.ts";
import { Kind, type BatchItemOutcome, type SubmitFields, type SubmittedBatchFields } from "./messages.ts";

/**
 * A SUBMIT_BATCH of these tasks: each task is a whole SUBMIT body (its own
 * requestId is what its TASK_DONE carries when it has the notify flag).
 */
export function writeSubmitBatch(w: FrameWriter, requestId: number, tasks: readonly SubmitFields[]): void {
  w.begin(Kind.SUBMIT_BATCH);
  try {
    w.u32(requestId);
    w.u32(tasks.length);
    for (const task of tasks) {
      const lengthAt = w.length;
      w.u32(0);
      writeSubmitBody(w, task);
      w.view.setUint32(lengthAt, w.length - lengthAt - 4, true);
    }
  } catch (err) {
    w.abandon();
    throw err;
  }
  w.end();
}

/** A SUBMITTED_BATCH: one outcome per task of the batch, in its order. */
export function writeSubmittedBatch(w: FrameWriter, requestId: number, outcomes: readonly BatchItemOutcome[]): void {
  w.begin(Kind.SUBMITTED_BATCH);
  w.u32(requestId);
  w.u32(outcomes.length);
  for (const o of outcomes) {
    if (o.ok) {
      w.u8(0);
      w.f64(o.taskId);
    } else {
      w.u8(1);
      w.str8(o.code.slice(0, 64));
      const message = utf8Prefix(textEncoder.encode(o.message), BATCH_MESSAGE_BYTES_MAX);
      w.u16(message.length);
      w.raw(message);
    }
  }
  w.end();
}

const textEncoder = new TextEncoder();
/** A refused task's message is cut to this (a batch of 10,000 refusals stays small). */
const BATCH_MESSAGE_BYTES_MAX = 1024;

/** At most `max` bytes of UTF-8 text, cut before a character, never inside one (the reader checks it is valid). */
function utf8Prefix(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // a continuation byte: the character began before
  return bytes.subarray(0, end);
}

/** Where each task of a SUBMIT_BATCH lies in the frame: body[starts[i], ends[i]) is one SUBMIT body. */
export interface SubmitBatchSpans {
  requestId: number;
  starts: number[];
  ends: number[];
}

/** The request id at the head of a SUBMIT_BATCH body, r left where it is (E_BAD_FRAME when the body is shorter). */
export function peekSubmitBatchRequestId(r: Reader): number {
  if (r.end - r.pos < 4) throw new ProtocolError("E_BAD_FRAME", "SUBMIT_BATCH shorter than its request id");
  return r.view.getUint32(r.pos, true);
}

/**
 * readSubmitBatchSpans for a server: a batch whose framing is broken is handed
 * to `refuse` (to answer on the batch's own request, the connection staying
 * open) and gives undefined; anything else thrown goes on up.
 */
export function readSubmitBatchSpansOr(r: Reader, tasksMax: number, refuse: (code: ErrorCode, message: string) => void): SubmitBatchSpans | undefined {
  try {
    return readSubmitBatchSpans(r, tasksMax);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    refuse(err.code, err.message);
    return undefined;
  }
}

/**
 * Walks a SUBMIT_BATCH's framing without decoding its tasks: a count from 1 to
 * `tasksMax` (E_BAD_REQUEST / E_TOO_LARGE), each task's length within the body,
 * at least a request id long, and nothing after the last (E_BAD_FRAME).
 * Leaves r at the end of the message.
 */
export function readSubmitBatchSpans(r: Reader, tasksMax: number): SubmitBatchSpans {
  const requestId = r.u32();
  const count = r.u32();
  if (count === 0) throw new ProtocolError("E_BAD_REQUEST", "a SUBMIT_BATCH holds at least one task");
  if (count > tasksMax) throw new ProtocolError("E_TOO_LARGE", `a SUBMIT_BATCH holds at most ${tasksMax} tasks, not ${count}`);
  // Each task takes at least 4 + 17 bytes: a count the body cannot hold is refused before any array grows.
  if (count * 21 > r.end - r.pos) throw new ProtocolError("E_BAD_FRAME", `a SUBMIT_BATCH of ${r.end - r.pos} bytes cannot hold ${count} tasks`);
  const spans: SubmitBatchSpans = { requestId, starts: new Array(count), ends: new Array(count) };
  for (let i = 0; i < count; i++) {
    const bytes = r.u32();
    if (bytes < 4) throw new ProtocolError("E_BAD_FRAME", `task ${i} of a SUBMIT_BATCH is shorter than its request id`);
    const at = r.pos;
    r.pos += bytes; // u8() below, or done(), catches a length past the end
    if (r.pos > r.end) throw new ProtocolError("E_BAD_FRAME", `task ${i} of a SUBMIT_BATCH overruns the message`);
    spans.starts[i] = at;
    spans.ends[i] = at + bytes;
  }
  r.done();
  return spans;
}

/** Decodes task i of a batch (r over the batch's frame); r is left bounded to the batch again. */
export function readBatchTask(r: Reader, spans: SubmitBatchSpans, i: number): SubmitFields {
  const end = r.end;
  r.pos = spans.starts[i]!;
  r.end = spans.ends[i]!;
  try {
    return readSubmit(r);
  } finally {
    r.end = end;
  }
}

/** A whole SUBMIT_BATCH, every task decoded (tests and tools; the coordinator logs task bodies as they are). */
export function readSubmitBatch(r: Reader, tasksMax: number): { requestId: number; tasks: SubmitFields[] } {
  const spans = readSubmitBatchSpans(r, tasksMax);
  const tasks = spans.starts.map((_, i) => readBatchTask(r, spans, i));
  r.pos = r.end;
  return { requestId: spans.requestId, tasks };
}

export function readSubmittedBatch(r: Reader, tasksMax: number): SubmittedBatchFields {
  const requestId = r.u32();
  const count = r.u32();
  if (count > tasksMax) throw new ProtocolError("E_TOO_LARGE", `a SUBMITTED_BATCH holds at most ${tasksMax} outcomes, not ${count}`);
  if (count * 9 > r.end - r.pos) throw new ProtocolError("E_BAD_FRAME", `a SUBMITTED_BATCH of ${r.end - r.pos} bytes cannot hold ${count} outcomes`);
  const outcomes: BatchItemOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const status = r.u8();
    if (status === 0) outcomes.push({ ok: true, taskId: r.f64() });
    else if (status === 1) {
      const code = r.str8();
      const n = r.u16();
      const at = r.pos;
      r.pos += n;
      if (r.pos > r.end) throw new ProtocolError("E_BAD_FRAME", "a refused task's message overruns the message");
      outcomes.push({ ok: false, code, message: decodeUtf8(r.bytes, at, n) });
    } else throw new ProtocolError("E_BAD_FRAME", `task outcome status ${status} is neither 0 (accepted) nor 1 (refused)`);
  }
  r.done();
  return { requestId, outcomes };
}
