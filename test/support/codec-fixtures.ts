// Shared by the codec unit tests and the decoder fuzz tests: write a list of
// messages, and decode a byte stream back into plain values (views copied out).

import { Prng } from "../../src/core/prng.ts";
import { makeTaskId } from "../../src/core/task.ts";
import { FrameWriter, forEachMessage, readAssign, readControl, readResult, readSubmit, readSubmitted, readTaskDone, Reader, writeAssign, writeControl, writeResult, writeSubmit, writeSubmitted, writeTaskDone } from "../../src/protocol/codec.ts";
import { readSubmitBatch, readSubmittedBatch, writeSubmitBatch, writeSubmittedBatch } from "../../src/protocol/batch-codec.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_EXTRAS, Kind, type AssignFields, type SubmittedBatchFields, type ResultFields, type SubmitFields, type SubmittedFields, type TaskDoneFields } from "../../src/protocol/messages.ts";
import { randomBytes } from "./helpers.ts";

export type Message =
  | { kind: typeof Kind.SUBMIT; fields: SubmitFields }
  | { kind: typeof Kind.SUBMITTED; fields: SubmittedFields }
  | { kind: typeof Kind.ASSIGN; fields: AssignFields }
  | { kind: typeof Kind.RESULT; fields: ResultFields }
  | { kind: typeof Kind.TASK_DONE; fields: TaskDoneFields }
  | { kind: typeof Kind.SUBMIT_BATCH; fields: { requestId: number; tasks: SubmitFields[] } }
  | { kind: typeof Kind.SUBMITTED_BATCH; fields: SubmittedBatchFields }
  | { kind: number; control: unknown };

export function writeMessage(w: FrameWriter, m: Message): void {
  if ("control" in m) return writeControl(w, m.kind, m.control);
  switch (m.kind) {
    case Kind.SUBMIT:
      return writeSubmit(w, m.fields as SubmitFields);
    case Kind.SUBMITTED: {
      const f = m.fields as SubmittedFields;
      return writeSubmitted(w, f.requestId, f.taskId);
    }
    case Kind.ASSIGN: {
      const f = m.fields as AssignFields;
      return writeAssign(w, f.taskId, f.attempt, f.timeoutMs, f.type, f.payload, f.inputs);
    }
    case Kind.RESULT: {
      const f = m.fields as ResultFields;
      return writeResult(w, f.taskId, f.attempt, f.status, f.output);
    }
    case Kind.TASK_DONE: {
      const f = m.fields as TaskDoneFields;
      return writeTaskDone(w, f.requestId, f.taskId, f.status, f.attempts, f.output);
    }
    case Kind.SUBMIT_BATCH: {
      const f = m.fields as { requestId: number; tasks: SubmitFields[] };
      return writeSubmitBatch(w, f.requestId, f.tasks);
    }
    case Kind.SUBMITTED_BATCH: {
      const f = m.fields as SubmittedBatchFields;
      return writeSubmittedBatch(w, f.requestId, f.outcomes);
    }
  }
  throw new Error(`no writer for kind ${(m as Message).kind}`);
}

export function encodeMessages(messages: readonly Message[], w = new FrameWriter(1024)): Uint8Array {
  w.reset();
  for (const m of messages) writeMessage(w, m);
  return w.finish().slice();
}

/** Decodes one message body with the reader for its kind; byte fields are copied out of the frame. */
export function readMessage(kind: number, r: Reader): Message {
  switch (kind) {
    case Kind.SUBMIT: {
      const f = readSubmit(r);
      return { kind, fields: { ...f, payload: f.payload.slice() } };
    }
    case Kind.SUBMITTED:
      return { kind, fields: readSubmitted(r) };
    case Kind.ASSIGN: {
      const f = readAssign(r);
      return { kind, fields: { ...f, payload: f.payload.slice(), inputs: f.inputs.map((x) => x.slice()) } };
    }
    case Kind.RESULT: {
      const f = readResult(r);
      return { kind, fields: { ...f, output: f.output.slice() } };
    }
    case Kind.TASK_DONE: {
      const f = readTaskDone(r);
      return { kind, fields: { ...f, output: f.output.slice() } };
    }
    case Kind.SUBMIT_BATCH: {
      const f = readSubmitBatch(r, SUBMIT_BATCH_TASKS_MAX);
      return { kind, fields: { requestId: f.requestId, tasks: f.tasks.map((t) => ({ ...t, payload: t.payload.slice() })) } };
    }
    case Kind.SUBMITTED_BATCH:
      return { kind, fields: readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX) };
    default:
      return { kind, control: readControl(r) };
  }
}

export interface DecodeOptions {
  frameBytesMax?: number;
  /** One Reader for the whole stream, as a Connection has; default: a new Reader per frame. */
  sharedReader?: Reader;
  onFrame?: (body: Uint8Array) => void;
}

/** Decodes a byte stream given as chunks into messages, in order. */
export function decodeStream(chunks: readonly Uint8Array[], options: DecodeOptions = {}): Message[] {
  const decoder = new FrameDecoder(options.frameBytesMax ?? 16 << 20);
  const out: Message[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk, (body) => {
      options.onFrame?.(body);
      forEachMessage(body, options.sharedReader ?? new Reader(), (kind, r) => out.push(readMessage(kind, r)));
    });
  }
  return out;
}

export function byteChunks(bytes: Uint8Array, size = 1): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

const TYPES = ["noop", "sleep", "cpu", "wordcount", "épée", "日本語", "", "x".repeat(255)];

/** One random valid message of any kind. */
export function randomMessage(prng: Prng): Message {
  const str = (): string => TYPES[prng.int(TYPES.length)]!;
  const bytes = (): Uint8Array => randomBytes(prng, prng.int(4) === 0 ? 0 : prng.int(64));
  const taskId = makeTaskId(prng.int(4096), 1 + prng.int(1_000_000));
  const u32 = (): number => prng.int(2 ** 32);
  const submit = (): SubmitFields => (
    { requestId: u32(), priority: prng.int(256), flags: prng.int(256) & ~SUBMIT_FLAG_EXTRAS, maxAttempts: prng.int(65536), timeoutMs: u32(), type: str(), idempotencyKey: str(), payload: bytes() }
  );
  switch (prng.int(8)) {
    case 0:
      return { kind: Kind.SUBMIT, fields: submit() };
    case 6:
      return { kind: Kind.SUBMIT_BATCH, fields: { requestId: u32(), tasks: Array.from({ length: 1 + prng.int(4) }, submit) } };
    case 7:
      return {
        kind: Kind.SUBMITTED_BATCH,
        fields: { requestId: u32(), outcomes: Array.from({ length: prng.int(4) }, () => (prng.int(2) === 0 ? { ok: true as const, taskId } : { ok: false as const, code: "E_QUEUE_FULL", message: `refused ${str()} é` })) },
      };
    case 1:
      return { kind: Kind.SUBMITTED, fields: { requestId: u32(), taskId } };
    case 2:
      return { kind: Kind.ASSIGN, fields: { taskId, attempt: prng.int(65536), timeoutMs: u32(), type: str(), payload: bytes(), inputs: Array.from({ length: prng.int(3) }, bytes) } };
    case 3:
      return { kind: Kind.RESULT, fields: { taskId, attempt: prng.int(65536), status: prng.int(2), output: bytes() } };
    case 4:
      return { kind: Kind.TASK_DONE, fields: { requestId: u32(), taskId, status: prng.int(2), attempts: prng.int(65536), output: bytes() } };
    default:
      return { kind: Kind.HEARTBEAT, control: { running: prng.int(100), done: u32(), failed: prng.int(10), note: str() } };
  }
}
