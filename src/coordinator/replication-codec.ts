// Binary bodies of the replication messages between a primary and its backups.

import { Decoder, Encoder } from "@msgpack/msgpack";
import type { SchedulerState } from "../core/scheduler-state.ts";
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

/** msgpack with every declared length bounded by the input's (each element takes at least a byte). */
function decodeBounded(body: Uint8Array, what: string): unknown {
  const limit = body.length;
  try {
    return new Decoder({ maxArrayLength: limit, maxMapLength: limit, maxStrLength: limit, maxBinLength: limit }).decode(body);
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
