// Bytes as a coordinator sees them, for the replication simulation: SUBMIT and
// RESULT bodies exactly as the shell logs them, REPL_APPEND / REPL_SNAPSHOT
// frames, TCP-like splitting of a byte stream, and a structural diff of two
// exported scheduler states that names the first difference.

import { writeAppend, encodeSnapshot } from "../../src/coordinator/replication-codec.ts";
import { Prng } from "../../src/core/prng.ts";
import type { SchedulerState } from "../../src/core/scheduler-state.ts";
import { isFinal } from "../../src/core/task.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { FrameWriter, forEachMessage, Reader, writeResultBody, writeSubmit } from "../../src/protocol/codec.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame-decoder.ts";
import { Kind, SUBMIT_FLAG_NOTIFY, TaskStatus, type SubmitFields } from "../../src/protocol/messages.ts";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const submitWriter = new FrameWriter(1024);
const bodyReader = new Reader();

/**
 * The body of a SUBMIT message (what follows the message header): the bytes
 * the coordinator appends to its log as they came off the wire.
 */
export function submitBody(fields: Partial<SubmitFields> & { requestId: number; idempotencyKey: string; payload: Uint8Array }): Uint8Array {
  submitWriter.reset();
  writeSubmit(submitWriter, { priority: 0, flags: SUBMIT_FLAG_NOTIFY, maxAttempts: 0, timeoutMs: 0, type: "sim", ...fields });
  let body: Uint8Array | undefined;
  forEachMessage(submitWriter.finish().subarray(FRAME_HEADER_BYTES), bodyReader, (_kind, r) => {
    body = r.bytes.slice(r.pos, r.end);
  });
  return body!;
}

/** The body of a RESULT message, as a worker's executor writes it. */
export function resultBody(taskId: number, attempt: number, ok: boolean, output: Uint8Array): Uint8Array {
  const w = new ByteWriter(32 + output.length);
  writeResultBody(w, taskId, attempt, ok ? TaskStatus.OK : TaskStatus.FAILED, output);
  return w.toBytes();
}

/** What a simulated handler returns for a payload: a result names the work it came from. */
export function outputFor(payload: Uint8Array): Uint8Array {
  return utf8.encode(`done:${fromUtf8.decode(payload)}`);
}

export function text(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? "(none)" : fromUtf8.decode(bytes);
}

/** One REPL_APPEND frame (frame header included) holding a batch from EventLog.take(). */
export function appendFrame(epoch: number, firstIndex: number, count: number, entries: Uint8Array): Uint8Array {
  const w = new FrameWriter(64 + entries.length);
  writeAppend(w, epoch, firstIndex, count, entries);
  return w.finish().slice();
}

/** One REPL_SNAPSHOT frame, as the coordinator writes it: `u32 epoch | f64 index | msgpack state`. */
export function snapshotFrame(epoch: number, index: number, state: SchedulerState): Uint8Array {
  const body = encodeSnapshot(state);
  const w = new FrameWriter(64 + body.length, 1 << 30);
  w.begin(Kind.REPL_SNAPSHOT);
  w.u32(epoch);
  w.f64(index);
  w.raw(body);
  w.end();
  return w.finish().slice();
}

/** TCP keeps order but not boundaries: a frame may arrive in several chunks. Up to `piecesMax` pieces. */
export function splitChunks(prng: Prng, bytes: Uint8Array, piecesMax = 3): Uint8Array[] {
  const cuts = new Set<number>();
  for (let n = prng.int(piecesMax); n > 0; n--) cuts.add(1 + prng.int(bytes.length - 1));
  const sorted = [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...sorted, bytes.length]) {
    chunks.push(bytes.slice(at, cut));
    at = cut;
  }
  return chunks;
}

/**
 * The first difference between two plain values (exported states), as
 * ".path: a != b", or undefined when equal. A key holding undefined equals a
 * missing key (msgpack drops undefined); byte arrays compare by content.
 * Paths are built only on a difference: the equal case allocates nothing.
 */
export function diffState(a: unknown, b: unknown): string | undefined {
  if (a === b) return undefined;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return `: ${show(a)} != ${show(b)}`;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `: ${show(a)} != ${show(b)} (byte ${i})`;
    return undefined;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return `: ${show(a)} != ${show(b)}`;
    if (a.length !== b.length) return `.length: ${a.length} != ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = diffState(a[i], b[i]);
      if (d !== undefined) return `[${i}${idOf(a[i])}]${d}`;
    }
    return undefined;
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    for (const k in x) {
      const d = diffState(x[k], y[k]);
      if (d !== undefined) return `.${k}${d}`;
    }
    for (const k in y) {
      if (k in x) continue;
      const d = diffState(undefined, y[k]);
      if (d !== undefined) return `.${k}${d}`;
    }
    return undefined;
  }
  return `: ${show(a)} != ${show(b)}`;
}

/**
 * diffState for two exported scheduler states. Tasks that ended are by far the
 * most and change no more; `full: false` compares only their id and state,
 * everything else in full (the caller still compares in full now and then).
 */
export function diffSchedulerStates(a: SchedulerState, b: SchedulerState, full: boolean): string | undefined {
  const { tasks: ta, ...restA } = a;
  const { tasks: tb, ...restB } = b;
  const d = diffState(restA, restB);
  if (d !== undefined) return d;
  if (ta.length !== tb.length) return `.tasks.length: ${ta.length} != ${tb.length}`;
  for (let i = 0; i < ta.length; i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (!full && x.id === y.id && x.state === y.state && isFinal(x.state)) continue;
    const dt = diffState(x, y);
    if (dt !== undefined) return `.tasks[${i} id=${x.id}]${dt}`;
  }
  return undefined;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function idOf(v: unknown): string {
  return typeof v === "object" && v !== null && "id" in v ? ` id=${String((v as { id: unknown }).id)}` : "";
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `bytes "${fromUtf8.decode(v.subarray(0, 40))}"${v.length > 40 ? "..." : ""} (${v.length})`;
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 120)}...` : s;
}
