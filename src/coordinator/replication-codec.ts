// Binary bodies of the replication messages between a primary and its backups.

import { Decoder, Encoder } from "@msgpack/msgpack";
import type { SchedulerState } from "../core/scheduler-state.ts";
import type { SnapshotPart } from "../core/snapshot-parts.ts";
import type { Task } from "../core/task.ts";
import { Reader, type FrameWriter } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind } from "../protocol/messages.ts";

const encoder = new Encoder({ ignoreUndefined: true });

export function encodeSnapshot(state: SchedulerState): Uint8Array {
  return encoder.encode(state);
}

/** REPL_SNAPSHOT: `u32 epoch | f64 index | msgpack state` (state as encodeSnapshot gives it). */
export function writeSnapshot(w: FrameWriter, epoch: number, index: number, state: Uint8Array): void {
  w.begin(Kind.REPL_SNAPSHOT);
  w.u32(epoch);
  w.f64(index);
  w.raw(state);
  w.end();
}

/** REPL_SNAPSHOT: `u32 epoch | f64 index | msgpack state`. */
export function decodeSnapshot(r: Reader): { epoch: number; index: number; state: SchedulerState } {
  const epoch = r.u32();
  const index = r.f64();
  // A private copy: msgpack hands back payloads as views into its input, and the
  // frame buffer this body lives in is reused by the next frames on the connection.
  const state = decodeSnapshotBody(r.bytes.slice(r.pos, r.end));
  r.pos = r.end;
  return { epoch, index, state };
}

/** A whole msgpack state as encodeSnapshot gives it; `body` must be owned (payloads stay views into it). */
export function decodeSnapshotBody(body: Uint8Array): SchedulerState {
  const state = decodeBounded(body, "snapshot") as SchedulerState;
  if (state === null || typeof state !== "object" || !Array.isArray(state.tasks) || !Array.isArray(state.workers)) {
    throw new ProtocolError("E_BAD_FRAME", "snapshot is not a scheduler state");
  }
  return state;
}

/**
 * Parts up to this size share one decoder whose declared lengths are bounded by it. A
 * decoder made per part (with the part's own length as the bound) cost more than the
 * decoding: 770 ms instead of 320 ms for 200,000 tasks.
 */
const SHARED_DECODER_BYTES_MAX = 16 * 1024 * 1024;
const sharedDecoder = boundedDecoder(SHARED_DECODER_BYTES_MAX);

function boundedDecoder(limit: number): Decoder {
  return new Decoder({ maxArrayLength: limit, maxMapLength: limit, maxStrLength: limit, maxBinLength: limit });
}

/** msgpack with every declared length bounded by the input's (each element takes at least a byte), or by the shared decoder's. */
function decodeBounded(body: Uint8Array, what: string): unknown {
  try {
    return (body.length <= SHARED_DECODER_BYTES_MAX ? sharedDecoder : boundedDecoder(body.length)).decode(body);
  } catch (err) {
    throw new ProtocolError("E_BAD_FRAME", `bad ${what}: ${(err as Error).message}`);
  }
}

/**
 * REPL_APPEND: `u32 epoch | f64 firstIndex | u32 count | f64 clockMs | entries` (entries as
 * EventLog.take() gives them). clockMs is the sender's wall clock (NaN: not given), so a
 * backup knows how far its clock is from the primary's (--max-clock-offset-ms).
 */
export function writeAppend(w: FrameWriter, epoch: number, firstIndex: number, count: number, entries: Uint8Array, clockMs = NaN): void {
  w.begin(Kind.REPL_APPEND);
  w.u32(epoch);
  w.f64(firstIndex);
  w.u32(count);
  w.f64(clockMs);
  w.raw(entries);
  w.end();
}

export interface AppendBatch {
  epoch: number;
  firstIndex: number;
  count: number;
  /** The primary's wall clock when it sent the batch (NaN: unknown, e.g. read back from disk). */
  clockMs: number;
  /** The entries as sent (`u32 bytes | entry` each): what a write-ahead log stores. */
  entries: Uint8Array;
  /** Calls `apply` with each entry's bytes (a view, valid during the call); checks the count. */
  forEachEntry(apply: (entry: Uint8Array) => void): void;
  /** The same without a view per entry (the hot path): `reader` is set on each entry in turn. */
  readEachEntry(reader: Reader, apply: (r: Reader) => void): void;
}

/** Entries stored as `u32 bytes | entry`, one after another (a log batch, as on the wire and on disk). */
export function readEntries(epoch: number, firstIndex: number, count: number, entries: Uint8Array): AppendBatch {
  return readAppendBody(new Reader().reset(entries), epoch, firstIndex, count, NaN);
}

function readAppendBody(r: Reader, epoch: number, firstIndex: number, count: number, clockMs: number): AppendBatch {
  const bytes = r.bytes;
  const start = r.pos;
  const end = r.end;
  r.pos = end;
  return {
    epoch, firstIndex, count, clockMs, entries: bytes.subarray(start, end),
    forEachEntry(apply) {
      walkEntries(bytes, start, end, count, (from, to) => apply(bytes.subarray(from, to)));
    },
    readEachEntry(reader, apply) {
      walkEntries(bytes, start, end, count, (from, to) => apply(reader.reset(bytes, from, to)));
    },
  };
}

/** Each `u32 bytes | entry` of bytes[start, end) as its entry's extent; checks the framing and the count. */
function walkEntries(bytes: Uint8Array, start: number, end: number, count: number, each: (from: number, to: number) => void): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = start;
  let seen = 0;
  while (at < end) {
    if (end - at < 4) throw new ProtocolError("E_BAD_FRAME", "log batch ends inside an entry length");
    const n = view.getUint32(at, true);
    if (at + 4 + n > end) throw new ProtocolError("E_BAD_FRAME", "log entry overruns its batch");
    each(at + 4, at + 4 + n);
    at += 4 + n;
    seen++;
  }
  if (seen !== count) throw new ProtocolError("E_BAD_FRAME", `log batch says ${count} entries, holds ${seen}`);
}

export function readAppend(r: Reader): AppendBatch {
  const epoch = r.u32();
  const firstIndex = r.f64();
  const count = r.u32();
  const clockMs = r.f64();
  return readAppendBody(r, epoch, firstIndex, count, clockMs);
}

/** REPL_ACK: `u32 epoch | f64 index | f64 clockMs` (the backup's wall clock, NaN: not given). */
export function writeAck(w: FrameWriter, epoch: number, index: number, clockMs = NaN): void {
  w.begin(Kind.REPL_ACK);
  w.u32(epoch);
  w.f64(index);
  w.f64(clockMs);
  w.end();
}

export function readAck(r: Reader): { epoch: number; index: number; clockMs: number } {
  const ack = { epoch: r.u32(), index: r.f64(), clockMs: r.f64() };
  r.done();
  return ack;
}

/** REPL_SNAPSHOT_PART: `u32 epoch | f64 index | u32 seq | u8 last | msgpack SnapshotPart`. */
export function writeSnapshotPart(w: FrameWriter, epoch: number, index: number, seq: number, last: boolean, part: Uint8Array): void {
  w.begin(Kind.REPL_SNAPSHOT_PART);
  w.u32(epoch);
  w.f64(index);
  w.u32(seq);
  w.u8(last ? 1 : 0);
  w.raw(part);
  w.end();
}

/**
 * A task's fields in the order a snapshot part lists them: a part of tasks holds one
 * array of values per task, no names, which is about half the bytes of msgpack maps
 * and about half the time to encode and decode. Every field of Task must be here
 * (a test checks); `output` is the one that may be absent (nil).
 */
export const TASK_FIELDS = [
  "id", "type", "payload", "priority", "maxAttempts", "timeoutMs", "idempotencyKey", "submittedAt", "deadline", "backoff",
  "tags", "dependsOn", "state", "waitingOn", "dependants", "runAt", "band", "attempt", "attemptBase", "workerId",
  "leasedAt", "leaseExpiresAt", "watchers", "output", "errors", "finishedAt", "foreignOutputs",
] as const satisfies ReadonlyArray<keyof Task>;

/** Parts have an encoder of their own, whose buffer each part's bytes are a view into. */
const partEncoder = new Encoder({ ignoreUndefined: true });

/**
 * A part's bytes: a view into a buffer the next part overwrites, so write it into its
 * frame at once (a stream encodes a million tasks' worth; copies of each would be garbage).
 */
export function encodeSnapshotPart(part: SnapshotPart): Uint8Array {
  if (part.k !== "tasks") return partEncoder.encodeSharedRef(part);
  const tasks = part.tasks;
  // The row arrays are reused from part to part: fresh ones were ~800 arrays of garbage per
  // part, a million at 1M tasks, and the collections they caused stalled the primary for
  // tens of ms mid-stream. (A row holds on to its last task's values until it is reused.)
  while (rowPool.length < tasks.length) rowPool.push(new Array(TASK_FIELDS.length));
  rowsOfPart.length = tasks.length;
  for (let i = 0; i < tasks.length; i++) {
    const row = rowPool[i]!;
    const t = tasks[i]!;
    for (let f = 0; f < TASK_FIELDS.length; f++) row[f] = t[TASK_FIELDS[f]!];
    rowsOfPart[i] = row;
  }
  return partEncoder.encodeSharedRef(tasksPart);
}

const rowPool: unknown[][] = [];
const rowsOfPart: unknown[][] = [];
const tasksPart = { k: "tasks", rows: rowsOfPart };

/** Tasks back from the rows of a part (values are checked by the restore, shapes here). */
function tasksOfRows(rows: unknown): Task[] {
  if (!Array.isArray(rows)) throw new ProtocolError("E_BAD_FRAME", "snapshot part of tasks holds no rows");
  return rows.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== TASK_FIELDS.length) throw new ProtocolError("E_BAD_FRAME", `snapshot task row is not ${TASK_FIELDS.length} fields`);
    return taskOfRow(row);
  });
}

/**
 * A row back into a task, as one object literal in TASK_FIELDS order (a test checks the
 * order): filling an empty object field by field took longer than decoding the row.
 */
export function taskOfRow(r: unknown[]): Task {
  return {
    id: r[0], type: r[1], payload: r[2], priority: r[3], maxAttempts: r[4], timeoutMs: r[5],
    idempotencyKey: r[6], submittedAt: r[7], deadline: r[8], backoff: r[9], tags: r[10], dependsOn: r[11],
    state: r[12], waitingOn: r[13], dependants: r[14], runAt: r[15], band: r[16], attempt: r[17],
    attemptBase: r[18], workerId: r[19], leasedAt: r[20], leaseExpiresAt: r[21], watchers: r[22], output: r[23] ?? undefined,
    errors: r[24], finishedAt: r[25], foreignOutputs: r[26],
  } as unknown as Task;
}

export interface SnapshotPartFrame {
  epoch: number;
  index: number;
  seq: number;
  last: boolean;
  part: SnapshotPart;
}

/** REPL_SNAPSHOT_PART; the part is decoded from a private copy (its payloads are views into it). */
export function readSnapshotPart(r: Reader): SnapshotPartFrame {
  const epoch = r.u32();
  const index = r.f64();
  const seq = r.u32();
  const last = r.u8() === 1;
  const part = decodeBounded(r.bytes.slice(r.pos, r.end), "snapshot part") as Record<string, unknown> | null;
  r.pos = r.end;
  const k = part !== null && typeof part === "object" ? part.k : undefined;
  if (k === "tasks") return { epoch, index, seq, last, part: { k, tasks: tasksOfRows(part!.rows) } };
  const shaped = (k === "head" && typeof part!.head === "object" && part!.head !== null)
    || ((k === "finished" || k === "dlq") && Array.isArray(part!.ids));
  if (!shaped) throw new ProtocolError("E_BAD_FRAME", "snapshot part is not a part of a scheduler state");
  return { epoch, index, seq, last, part: part as unknown as SnapshotPart };
}

/** REPL_SNAPSHOT_ACK: `u32 epoch | f64 index | u32 parts` restored of the snapshot at `index`. */
export function writeSnapshotAck(w: FrameWriter, epoch: number, index: number, parts: number): void {
  w.begin(Kind.REPL_SNAPSHOT_ACK);
  w.u32(epoch);
  w.f64(index);
  w.u32(parts);
  w.end();
}

export function readSnapshotAck(r: Reader): { epoch: number; index: number; parts: number } {
  const ack = { epoch: r.u32(), index: r.f64(), parts: r.u32() };
  r.done();
  return ack;
}

/** Frames a backup takes from the primary it follows. */
export function isReplicationKind(kind: number): boolean {
  return kind === Kind.REPL_SNAPSHOT || kind === Kind.REPL_SNAPSHOT_PART || kind === Kind.REPL_APPEND;
}
