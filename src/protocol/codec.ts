// Encoding and decoding of messages. Writers append to a FrameWriter that is
// reused between flushes; readers walk a frame body with bounds checks, so a
// malformed frame becomes an E_BAD_FRAME error instead of garbage state.

import { Decoder, Encoder } from "@msgpack/msgpack";
import { ByteWriter } from "./byte-writer.ts";
import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER_BYTES } from "./frame-decoder.ts";
import { Kind, SUBMIT_FLAG_EXTRAS, type AssignFields, type SubmitExtras, type ResultFields, type SubmitFields, type SubmittedFields, type TaskDoneFields } from "./messages.ts";

const MESSAGE_HEADER_BYTES = 5;
/** A frame is closed once its body passes this many bytes, so one huge batch still streams. */
export const FRAME_SOFT_BYTES = 256 * 1024;
/**
 * ... or holds this many messages, so no sender of ours exceeds a receiver's
 * --frame-batch-max (whose smallest allowed value this is).
 */
export const FRAME_SOFT_MESSAGES = 4096;

/** Appends messages, grouped into frames, to one reusable buffer. */
export class FrameWriter extends ByteWriter {
  private frameStart = -1;
  private messageStart = -1;
  private frameMessages = 0;
  messages = 0;

  begin(kind: number): void {
    if (this.frameStart < 0) {
      this.frameStart = this.length;
      this.u32(0);
    }
    this.messageStart = this.length;
    this.u8(kind);
    this.u32(0);
  }

  end(): void {
    this.view.setUint32(this.messageStart + 1, this.length - this.messageStart - MESSAGE_HEADER_BYTES, true);
    this.messageStart = -1;
    this.messages++;
    if (++this.frameMessages >= FRAME_SOFT_MESSAGES || this.length - this.frameStart > FRAME_SOFT_BYTES) this.closeFrame();
  }

  /** Drops a message begun but not ended (its encoding failed). */
  abandon(): void {
    if (this.messageStart >= 0) this.length = this.messageStart;
    this.messageStart = -1;
  }

  /** Closes the open frame; returns everything written since the last reset. */
  finish(): Uint8Array {
    this.closeFrame();
    return this.bytes.subarray(0, this.length);
  }

  override reset(): void {
    super.reset();
    this.frameStart = -1;
    this.messageStart = -1;
    this.messages = 0;
  }

  private closeFrame(): void {
    if (this.frameStart < 0) return;
    const bodyBytes = this.length - this.frameStart - FRAME_HEADER_BYTES;
    if (bodyBytes === 0) this.length = this.frameStart;
    else this.view.setUint32(this.frameStart, bodyBytes, true);
    this.frameStart = -1;
    this.frameMessages = 0;
  }
}

// ---------------------------------------------------------------- writers

export function writeSubmit(w: FrameWriter, f: SubmitFields): void {
  w.begin(Kind.SUBMIT);
  writeSubmitBody(w, f);
  w.end();
}

/** The body of one SUBMIT, without its message header (SUBMIT and each task of a SUBMIT_BATCH). */
export function writeSubmitBody(w: ByteWriter, f: SubmitFields): void {
  w.u32(f.requestId);
  w.u8(f.priority);
  w.u8(f.extras === undefined ? f.flags & ~SUBMIT_FLAG_EXTRAS : f.flags | SUBMIT_FLAG_EXTRAS);
  w.u16(f.maxAttempts);
  w.u32(f.timeoutMs);
  w.str8(f.type);
  w.str8(f.idempotencyKey);
  w.bytes32(f.payload);
  if (f.extras !== undefined) writeExtras(w, f.extras);
}

function writeExtras(w: ByteWriter, x: SubmitExtras): void {
  w.u32(x.delayMs);
  w.u32(x.deadlineMs);
  w.u8(x.backoffType);
  w.u32(x.backoffDelayMs);
  w.u32(x.backoffMaxDelayMs);
  if (x.tags.length > 255) throw new ProtocolError("E_TOO_LARGE", "at most 255 tags");
  w.u8(x.tags.length);
  for (const tag of x.tags) w.str8(tag);
  if (x.dependsOn.length > 65535) throw new ProtocolError("E_TOO_LARGE", "at most 65535 dependencies");
  w.u16(x.dependsOn.length);
  for (const id of x.dependsOn) w.f64(id);
}

function readExtras(r: Reader): SubmitExtras {
  const x: SubmitExtras = {
    delayMs: r.u32(), deadlineMs: r.u32(), backoffType: r.u8(), backoffDelayMs: r.u32(), backoffMaxDelayMs: r.u32(),
    tags: [], dependsOn: [],
  };
  for (let n = r.u8(); n > 0; n--) x.tags.push(r.str8());
  for (let n = r.u16(); n > 0; n--) x.dependsOn.push(r.f64());
  return x;
}

export function writeSubmitted(w: FrameWriter, requestId: number, taskId: number): void {
  w.begin(Kind.SUBMITTED);
  w.u32(requestId);
  w.f64(taskId);
  w.end();
}

const NO_INPUTS: readonly Uint8Array[] = [];

export function writeAssign(w: FrameWriter, taskId: number, attempt: number, timeoutMs: number, type: string, payload: Uint8Array, inputs: readonly Uint8Array[] = NO_INPUTS): void {
  w.begin(Kind.ASSIGN);
  writeAssignBody(w, taskId, attempt, timeoutMs, type, payload, inputs);
  w.end();
}

/** The ASSIGN body alone (`... | bytes32 payload | u16 n | bytes32 input * n`): the worker copies it into an executor's ring as it is. */
export function writeAssignBody(w: ByteWriter, taskId: number, attempt: number, timeoutMs: number, type: string, payload: Uint8Array, inputs: readonly Uint8Array[] = NO_INPUTS): void {
  w.f64(taskId);
  w.u16(attempt);
  w.u32(timeoutMs);
  w.str8(type);
  w.bytes32(payload);
  w.u16(inputs.length);
  for (const input of inputs) w.bytes32(input);
}

/** The RESULT body alone: executors write it into their result ring; the worker forwards it unchanged. */
export function writeResultBody(w: ByteWriter, taskId: number, attempt: number, status: number, output: Uint8Array): void {
  w.f64(taskId);
  w.u16(attempt);
  w.u8(status);
  w.bytes32(output);
}

export function writeResult(w: FrameWriter, taskId: number, attempt: number, status: number, output: Uint8Array): void {
  w.begin(Kind.RESULT);
  writeResultBody(w, taskId, attempt, status, output);
  w.end();
}

/** Wraps an already encoded body, body[start, end) (from a ring), as one message. */
export function writeRaw(w: FrameWriter, kind: number, body: Uint8Array, start = 0, end = body.length): void {
  w.begin(kind);
  w.rawRange(body, start, end);
  w.end();
}

export function writeTaskDone(w: FrameWriter, requestId: number, taskId: number, status: number, attempts: number, output: Uint8Array): void {
  w.begin(Kind.TASK_DONE);
  w.u32(requestId);
  w.f64(taskId);
  w.u8(status);
  w.u16(attempts);
  w.bytes32(output);
  w.end();
}

const encoder = new Encoder({ ignoreUndefined: true });

/** A control message: msgpack body. */
export function writeControl(w: FrameWriter, kind: number, value: unknown): void {
  const body = encoder.encodeSharedRef(value);
  w.begin(kind);
  w.raw(body);
  w.end();
}

// ---------------------------------------------------------------- readers

const utf8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

/** Bounds-checked reads over one message body. */
export class Reader {
  bytes: Uint8Array<ArrayBufferLike> = EMPTY;
  view: DataView<ArrayBufferLike> = new DataView(EMPTY.buffer);
  pos = 0;
  end = 0;
  private readonly strings = new StringCache();

  reset(bytes: Uint8Array, start = 0, end = bytes.length): this {
    // A new view per distinct array: the messages of one frame share it, and two
    // arrays at the same offset of one buffer may differ in length.
    if (bytes !== this.bytes) this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    return this;
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new ProtocolError("E_BAD_FRAME", `message truncated: wanted ${n} bytes at ${at}, body ends at ${this.end}`);
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.bytes[this.need(1)]!;
  }
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.need(8), true);
  }
  /** A view into the frame: copy it to keep it past the callback. */
  /** A view of the bytes (copy to keep them); the shared empty array when there are none, the common payload and output. */
  bytes32(): Uint8Array {
    const n = this.u32();
    const at = this.need(n);
    return n === 0 ? EMPTY : this.bytes.subarray(at, at + n);
  }
  /** A str8 that repeats (a task type, a tag): looked up in a small cache of recent strings first. */
  str8(): string {
    const n = this.u8();
    const at = this.need(n);
    return this.strings.get(this.bytes, at, n);
  }
  /** A str8 that is new each time (an idempotency key): the cache would only miss, after comparing. */
  str8Unique(): string {
    const n = this.u8();
    const at = this.need(n);
    return decodeUtf8(this.bytes, at, n);
  }
  /** Every byte of the message must be consumed: trailing bytes mean a malformed message. */
  done(): void {
    if (this.pos !== this.end) throw new ProtocolError("E_BAD_FRAME", `message has ${this.end - this.pos} trailing bytes`);
  }
}

/**
 * Node's Buffer#latin1Slice called on a plain Uint8Array: a string from a byte
 * range without making a view of it first (the view cost more than the
 * decoding: a key took 165 ns through TextDecoder, 60 ns this way).
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

export function decodeUtf8(bytes: Uint8Array, at: number, n: number): string {
  if (n === 0) return "";
  // ASCII is the same in Latin-1 and UTF-8: most keys and type names take this path.
  if (latin1Slice !== undefined && n <= 64 && isAscii(bytes, at, n)) return latin1Slice.call(bytes, at, at + n);
  try {
    return utf8.decode(bytes.subarray(at, at + n));
  } catch {
    throw new ProtocolError("E_BAD_FRAME", "string is not valid UTF-8");
  }
}

function isAscii(bytes: Uint8Array, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/**
 * Task type names repeat endlessly; decoding each one anew is the biggest
 * allocation on the hot path. A small cache of recent strings, compared byte by byte.
 */
class StringCache {
  private readonly keys: Uint8Array[] = [];
  private readonly values: string[] = [];
  private next = 0;
  private static readonly SIZE = 32;

  get(bytes: Uint8Array, at: number, n: number): string {
    if (n === 0) return "";
    outer: for (let i = 0; i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (key.length !== n) continue;
      for (let j = 0; j < n; j++) if (key[j] !== bytes[at + j]) continue outer;
      return this.values[i]!;
    }
    const value = decodeUtf8(bytes, at, n);
    if (n <= 64) {
      this.keys[this.next] = bytes.slice(at, at + n);
      this.values[this.next] = value;
      this.next = (this.next + 1) % StringCache.SIZE;
    }
    return value;
  }
}

/**
 * Walks the messages of one frame body. The handler gets the kind and a Reader
 * positioned on that message's body (bounded to it).
 */
export function forEachMessage(body: Uint8Array, reader: Reader, onMessage: (kind: number, r: Reader) => void, messagesMax = Infinity): void {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  let count = 0;
  while (at < body.length) {
    if (++count > messagesMax) throw new ProtocolError("E_TOO_LARGE", `frame holds more than ${messagesMax} messages`);
    if (body.length - at < MESSAGE_HEADER_BYTES) throw new ProtocolError("E_BAD_FRAME", "frame ends inside a message header");
    const kind = body[at]!;
    const bytes = view.getUint32(at + 1, true);
    const start = at + MESSAGE_HEADER_BYTES;
    const end = start + bytes;
    if (end > body.length) throw new ProtocolError("E_BAD_FRAME", `message of ${bytes} bytes overruns its frame`);
    onMessage(kind, reader.reset(body, start, end));
    at = end;
  }
}

export function readSubmit(r: Reader): SubmitFields {
  const f: SubmitFields = {
    requestId: r.u32(),
    priority: r.u8(),
    flags: r.u8(),
    maxAttempts: r.u16(),
    timeoutMs: r.u32(),
    type: r.str8(),
    idempotencyKey: r.str8Unique(),
    payload: r.bytes32(),
  };
  if (f.flags & SUBMIT_FLAG_EXTRAS) f.extras = readExtras(r);
  r.done();
  return f;
}

/** Where a SUBMIT body's flags byte is (after u32 requestId, u8 priority): routers and coordinators peek at it. */
export const SUBMIT_FLAGS_AT = 5;

/**
 * The payload length of the SUBMIT body at r.pos..r.end, without decoding the
 * rest (the coordinator checks its limit before logging the raw body).
 * Leaves r where it was; throws E_BAD_FRAME if the body ends too soon.
 */
export function submitPayloadBytes(r: Reader): number {
  const start = r.pos;
  try {
    r.pos += 12; // requestId u32 | priority u8 | flags u8 | maxAttempts u16 | timeoutMs u32
    const typeBytes = r.u8();
    r.pos += typeBytes;
    const keyBytes = r.u8();
    r.pos += keyBytes;
    return r.u32();
  } finally {
    r.pos = start;
  }
}

export function readSubmitted(r: Reader): SubmittedFields {
  const f = { requestId: r.u32(), taskId: r.f64() };
  r.done();
  return f;
}

export function readAssign(r: Reader): AssignFields {
  const f: AssignFields = { taskId: r.f64(), attempt: r.u16(), timeoutMs: r.u32(), type: r.str8(), payload: r.bytes32(), inputs: [] };
  for (let n = r.u16(); n > 0; n--) f.inputs.push(r.bytes32());
  r.done();
  return f;
}

export function readResult(r: Reader): ResultFields {
  const f = { taskId: r.f64(), attempt: r.u16(), status: r.u8(), output: r.bytes32() };
  r.done();
  return f;
}

export function readTaskDone(r: Reader): TaskDoneFields {
  const f = { requestId: r.u32(), taskId: r.f64(), status: r.u8(), attempts: r.u16(), output: r.bytes32() };
  r.done();
  return f;
}

/**
 * Control messages are small: these caps stop a 5-byte body that declares a
 * 64-million-element array from allocating it before the decode fails.
 */
export const CONTROL_LIMITS = { maxArrayLength: 100_000, maxMapLength: 10_000, maxStrLength: 1 << 20, maxBinLength: 16 << 20 };
const decoder = new Decoder(CONTROL_LIMITS);

/**
 * Map keys that would shadow what String(), Number(), templates and JSON call
 * on a value ({toString: 1} makes String(value) throw): a peer's map holding
 * one is refused at decode, so no handler ever converts a hostile value.
 */
const SHADOWING_KEYS = new Set(["toString", "valueOf", "toJSON", "__proto__", "constructor"]);

function checkNoShadowingKeys(value: unknown, depth = 0): void {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return;
  if (depth > 64) throw new ProtocolError("E_BAD_FRAME", "msgpack body nests deeper than 64 levels");
  if (Array.isArray(value)) {
    for (const item of value) checkNoShadowingKeys(item, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) throw new ProtocolError("E_BAD_FRAME", "msgpack value is not a plain map");
  for (const key of Object.keys(value)) {
    if (SHADOWING_KEYS.has(key)) throw new ProtocolError("E_BAD_FRAME", `msgpack map key "${key}" is not allowed`);
    checkNoShadowingKeys((value as Record<string, unknown>)[key], depth + 1);
  }
}

/** Any msgpack value from a peer, within CONTROL_LIMITS and without shadowing keys; E_BAD_FRAME otherwise. */
export function decodePeerMsgpack(bytes: Uint8Array): unknown {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (err) {
    throw new ProtocolError("E_BAD_FRAME", `bad msgpack body: ${(err as Error).message}`);
  }
  checkNoShadowingKeys(value);
  return value;
}

/** A control message's msgpack body, checked to be a map. */
export function readControl<T>(r: Reader): T {
  const value = decodePeerMsgpack(r.bytes.subarray(r.pos, r.end));
  r.pos = r.end;
  if (value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new ProtocolError("E_BAD_FRAME", "control message body must be a map");
  }
  return value as T;
}

/** Appends a message whose body is data[start, end) with its first u32 (the request id) replaced. */
export function copyWithRequestId(w: FrameWriter, kind: number, data: Uint8Array, start: number, end: number, requestId: number): void {
  w.begin(kind);
  const at = w.length;
  w.rawRange(data, start, end);
  w.view.setUint32(at, requestId, true);
  w.end();
}
