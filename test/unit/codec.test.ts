// Codec: every message survives FrameWriter -> FrameDecoder -> forEachMessage
// -> reader, however the stream is cut; malformed bodies are E_BAD_FRAME,
// never garbage values or other exceptions.

import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { Prng } from "../../src/core/prng.ts";
import { makeTaskId, SHARD_MAX } from "../../src/core/task.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { FRAME_SOFT_BYTES, FrameWriter, forEachMessage, readAssign, readControl, readResult, readSubmit, readSubmitted, readTaskDone, Reader, submitPayloadBytes, writeAssign, writeAssignBody, writeControl, writeRaw, writeResult, writeResultBody, writeSubmit, writeSubmitted, writeTaskDone } from "../../src/protocol/codec.ts";
import { readSubmitBatch, readSubmitBatchSpans, readSubmittedBatch, writeSubmitBatch, writeSubmittedBatch } from "../../src/protocol/batch-codec.ts";
import { FRAME_HEADER_BYTES, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind, KIND_NAMES, SUBMIT_BATCH_TASKS_MAX, type SubmitFields } from "../../src/protocol/messages.ts";
import { byteChunks, decodeStream, encodeMessages, randomMessage, readMessage, type Message } from "../support/codec-fixtures.ts";
import { concatBytes, expectProtocolError, randomBytes } from "../support/helpers.ts";

const BIG_TASK_ID = makeTaskId(SHARD_MAX, 2 ** 40 - 1);

const SUBMIT: SubmitFields = {
  requestId: 0xffffffff, priority: 255, flags: 1, maxAttempts: 65535, timeoutMs: 0xfffffffe,
  type: "wordcount", idempotencyKey: "key-ü-日本", payload: Uint8Array.from([0, 1, 2, 255]),
};

const EVERY_KIND: Message[] = [
  { kind: Kind.SUBMIT, fields: SUBMIT },
  { kind: Kind.SUBMIT, fields: { ...SUBMIT, requestId: 0, priority: 0, flags: 0, maxAttempts: 0, timeoutMs: 0, type: "t", idempotencyKey: "", payload: new Uint8Array(0) } },
  { kind: Kind.SUBMITTED, fields: { requestId: 7, taskId: BIG_TASK_ID } },
  { kind: Kind.ASSIGN, fields: { taskId: makeTaskId(3, 99), attempt: 65535, timeoutMs: 60_000, type: "x".repeat(255), payload: randomBytes(new Prng(1), 500), inputs: [] } },
  { kind: Kind.ASSIGN, fields: { taskId: 5, attempt: 1, timeoutMs: 1, type: "reduce", payload: new Uint8Array(0), inputs: [encode({ a: 1 }), new Uint8Array(0), randomBytes(new Prng(2), 70)] } },
  { kind: Kind.SUBMIT, fields: { ...SUBMIT, flags: 2, extras: { delayMs: 5, deadlineMs: 9, backoffType: 2, backoffDelayMs: 100, backoffMaxDelayMs: 5000, tags: ["gpu", "ü"], dependsOn: [makeTaskId(1, 2), 7] } } },
  { kind: Kind.RESULT, fields: { taskId: BIG_TASK_ID, attempt: 2, status: 1, output: new TextEncoder().encode("E_HANDLER: boom") } },
  { kind: Kind.RESULT, fields: { taskId: 1, attempt: 1, status: 0, output: new Uint8Array(0) } },
  { kind: Kind.TASK_DONE, fields: { requestId: 12, taskId: makeTaskId(1, 1), status: 0, attempts: 3, output: encode({ words: 42 }) } },
  { kind: Kind.SUBMIT_BATCH, fields: { requestId: 9, tasks: [SUBMIT, { ...SUBMIT, requestId: 0, flags: 2, extras: { delayMs: 1, deadlineMs: 0, backoffType: 0, backoffDelayMs: 0, backoffMaxDelayMs: 0, tags: [], dependsOn: [BIG_TASK_ID] } }] } },
  { kind: Kind.SUBMITTED_BATCH, fields: { requestId: 9, outcomes: [{ ok: true, taskId: BIG_TASK_ID }, { ok: false, code: "E_QUEUE_FULL", message: "full: ü" }] } },
  { kind: Kind.HELLO, control: { role: "worker", version: 1, nodeId: "w-1", slots: 4, tags: ["gpu", "ssd"] } },
  { kind: Kind.ERROR, control: { requestId: 0, code: "E_BAD_FRAME", message: "bad" } },
  { kind: Kind.STATS, control: { nested: { list: [1, 2.5, "three", null, true] }, bin: Uint8Array.from([9, 8]) } },
];

/** A frame body holding one message of `kind` with exactly `body` as its bytes. */
function oneMessageFrame(kind: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, body.length, true);
  out.set(body, 5);
  return out;
}

/** The body of the first message the writer produced (after frame and message headers). */
function bodyOf(write: (w: FrameWriter) => void): Uint8Array {
  const w = new FrameWriter(256);
  write(w);
  return w.finish().slice(4 + 5);
}

function readOne<T>(frameBody: Uint8Array, read: (r: Reader) => T): T {
  let value: T | undefined;
  forEachMessage(frameBody, new Reader(), (_kind, r) => (value = read(r)));
  return value as T;
}

describe("round trips through FrameWriter, FrameDecoder and forEachMessage", () => {
  test("every kind, in one chunk", () => {
    expect(decodeStream([encodeMessages(EVERY_KIND)])).toEqual(EVERY_KIND);
  });

  test("every kind, one message per frame, fed one byte at a time", () => {
    const frames = EVERY_KIND.map((m) => encodeMessages([m]));
    expect(decodeStream(byteChunks(concatBytes(frames)))).toEqual(EVERY_KIND);
  });

  test("every kind, every 2-way split of the stream", () => {
    const stream = encodeMessages(EVERY_KIND);
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(decodeStream([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(EVERY_KIND);
    }
  });

  test("random batches in random chunkings", () => {
    const prng = new Prng(2024);
    for (let round = 0; round < 40; round++) {
      const messages = Array.from({ length: 1 + prng.int(60) }, () => randomMessage(prng));
      const stream = encodeMessages(messages);
      expect(decodeStream(byteChunks(stream, 1 + prng.int(97)))).toEqual(messages);
    }
  });

  test("each reader's fields equal what was written, including f64 task ids up to 2^53", () => {
    const got = decodeStream([encodeMessages([{ kind: Kind.SUBMITTED, fields: { requestId: 1, taskId: BIG_TASK_ID } }])]);
    expect(got[0]).toEqual({ kind: Kind.SUBMITTED, fields: { requestId: 1, taskId: BIG_TASK_ID } });
    expect(Number.isSafeInteger(BIG_TASK_ID)).toBe(true);
  });

  test("byte fields are views into the frame, not copies (zero-copy read)", () => {
    const w = new FrameWriter();
    writeResult(w, 5, 1, 0, Uint8Array.from([1, 2, 3]));
    const body = w.finish().subarray(4);
    forEachMessage(body, new Reader(), (_k, r) => {
      const f = readResult(r);
      expect(f.output.buffer).toBe(body.buffer);
      expect([...f.output]).toEqual([1, 2, 3]);
    });
  });

  test("writeRaw of writeAssignBody / writeResultBody equals writeAssign / writeResult", () => {
    const payload = randomBytes(new Prng(5), 40);
    const a = new FrameWriter();
    writeAssign(a, 77, 2, 1000, "cpu", payload);
    writeResult(a, 77, 2, 1, payload);
    const b = new FrameWriter();
    const body = new ByteWriter(16);
    writeAssignBody(body, 77, 2, 1000, "cpu", payload);
    writeRaw(b, Kind.ASSIGN, body.toBytes());
    body.reset();
    writeResultBody(body, 77, 2, 1, payload);
    writeRaw(b, Kind.RESULT, body.toBytes());
    expect(b.finish()).toEqual(a.finish());
  });

  test("writeControl drops undefined fields", () => {
    const [m] = decodeStream([encodeMessages([{ kind: Kind.HELLO, control: { role: "client", token: undefined } }])]);
    expect(m).toEqual({ kind: Kind.HELLO, control: { role: "client" } });
  });

  test("the writer is reusable after reset, and counts messages", () => {
    const w = new FrameWriter(64);
    writeSubmitted(w, 1, 1);
    writeSubmitted(w, 2, 2);
    expect(w.messages).toBe(2);
    w.finish();
    w.reset();
    expect(w.messages).toBe(0);
    expect(w.length).toBe(0);
    writeSubmitted(w, 3, 3);
    expect(decodeStream([w.finish()])).toEqual([{ kind: Kind.SUBMITTED, fields: { requestId: 3, taskId: 3 } }]);
  });

  test("finish() with no message gives no bytes (no empty frame)", () => {
    const w = new FrameWriter();
    expect(w.finish().length).toBe(0);
  });

  test("one frame holds every message written between flushes", () => {
    const frames: number[] = [];
    decodeStream([encodeMessages(EVERY_KIND)], { onFrame: (b) => frames.push(b.length) });
    expect(frames).toHaveLength(1);
  });
});

describe("FrameWriter closes a frame past FRAME_SOFT_BYTES", () => {
  test("a large batch streams as several frames, every message decoded in order", () => {
    const prng = new Prng(9);
    const messages: Message[] = [];
    for (let i = 0; i < 3000; i++) {
      messages.push({ kind: Kind.RESULT, fields: { taskId: i + 1, attempt: 1, status: 0, output: randomBytes(prng, 100 + prng.int(400)) } });
    }
    const stream = encodeMessages(messages);
    expect(stream.length).toBeGreaterThan(3 * FRAME_SOFT_BYTES);
    const frameSizes: number[] = [];
    const got = decodeStream(byteChunks(stream, 65_536), { onFrame: (b) => frameSizes.push(b.length) });
    expect(got).toEqual(messages);
    expect(frameSizes.length).toBeGreaterThanOrEqual(3);
    // A frame is closed by the first message that takes it past the soft limit, so it overshoots by at most one message.
    for (const size of frameSizes) expect(size).toBeLessThanOrEqual(FRAME_SOFT_BYTES + 5 + 8 + 2 + 1 + 4 + 500);
    // The writer closes a frame once header + body pass the soft limit.
    for (const size of frameSizes.slice(0, -1)) expect(size + FRAME_HEADER_BYTES).toBeGreaterThan(FRAME_SOFT_BYTES);
  });

  test("a single message over the soft limit is a frame of its own", () => {
    const big = randomBytes(new Prng(4), FRAME_SOFT_BYTES + 10);
    const messages: Message[] = [
      { kind: Kind.SUBMITTED, fields: { requestId: 1, taskId: 1 } },
      { kind: Kind.RESULT, fields: { taskId: 2, attempt: 1, status: 0, output: big } },
      { kind: Kind.SUBMITTED, fields: { requestId: 3, taskId: 3 } },
    ];
    const frameSizes: number[] = [];
    expect(decodeStream([encodeMessages(messages)], { onFrame: (b) => frameSizes.push(b.length) })).toEqual(messages);
    // The first frame is closed after the big message (they share it); the last message starts a new frame.
    expect(frameSizes).toHaveLength(2);
  });
});

describe("abandon", () => {
  test("a message whose encoding failed (str8 too long) is dropped and the frame stays valid", () => {
    const w = new FrameWriter(64);
    writeSubmitted(w, 1, 1);
    expectProtocolError(() => writeSubmit(w, { ...SUBMIT, type: "y".repeat(256) }), "E_TOO_LARGE");
    w.abandon();
    writeSubmitted(w, 2, 2);
    expect(decodeStream([w.finish()])).toEqual([
      { kind: Kind.SUBMITTED, fields: { requestId: 1, taskId: 1 } },
      { kind: Kind.SUBMITTED, fields: { requestId: 2, taskId: 2 } },
    ]);
  });

  test("abandoning the only message of a frame leaves no bytes", () => {
    const w = new FrameWriter(64);
    expectProtocolError(() => writeAssign(w, 1, 1, 1, "z".repeat(300), new Uint8Array(0)), "E_TOO_LARGE");
    w.abandon();
    expect(w.finish().length).toBe(0);
  });

  test("abandon with no open message does nothing", () => {
    const w = new FrameWriter(64);
    writeSubmitted(w, 1, 1);
    w.abandon();
    expect(decodeStream([w.finish()])).toHaveLength(1);
  });
});

describe("malformed message bodies are E_BAD_FRAME", () => {
  const bodies: Array<[string, number, Uint8Array, (r: Reader) => unknown]> = [
    ["SUBMIT", Kind.SUBMIT, bodyOf((w) => writeSubmit(w, SUBMIT)), readSubmit],
    ["SUBMITTED", Kind.SUBMITTED, bodyOf((w) => writeSubmitted(w, 1, 2)), readSubmitted],
    ["ASSIGN", Kind.ASSIGN, bodyOf((w) => writeAssign(w, 1, 1, 10, "cpu", Uint8Array.from([1, 2]))), readAssign],
    ["RESULT", Kind.RESULT, bodyOf((w) => writeResult(w, 1, 1, 0, Uint8Array.from([1, 2]))), readResult],
    ["TASK_DONE", Kind.TASK_DONE, bodyOf((w) => writeTaskDone(w, 1, 1, 0, 1, Uint8Array.from([1, 2]))), readTaskDone],
    ["SUBMIT_BATCH", Kind.SUBMIT_BATCH, bodyOf((w) => writeSubmitBatch(w, 1, [SUBMIT, SUBMIT])), (r) => readSubmitBatch(r, SUBMIT_BATCH_TASKS_MAX)],
    ["SUBMITTED_BATCH", Kind.SUBMITTED_BATCH, bodyOf((w) => writeSubmittedBatch(w, 1, [{ ok: true, taskId: 5 }, { ok: false, code: "E_CYCLE", message: "a cycle" }])), (r) => readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX)],
  ];

  for (const [name, kind, body, read] of bodies) {
    test(`${name}: the intact body decodes`, () => {
      expect(() => readOne(oneMessageFrame(kind, body), read)).not.toThrow();
    });

    test(`${name}: every truncation is E_BAD_FRAME`, () => {
      for (let n = 0; n < body.length; n++) {
        expectProtocolError(() => readOne(oneMessageFrame(kind, body.subarray(0, n)), read), "E_BAD_FRAME");
      }
    });

    test(`${name}: trailing bytes are E_BAD_FRAME`, () => {
      for (const extra of [1, 2, 7]) {
        const err = expectProtocolError(() => readOne(oneMessageFrame(kind, concatBytes([body, new Uint8Array(extra)])), read), "E_BAD_FRAME");
        expect(err.message).toContain(`${extra} trailing`);
      }
    });
  }

  test("a bytes32 length past the message end is E_BAD_FRAME, even when the frame has more bytes after", () => {
    const body = bodyOf((w) => writeResult(w, 1, 1, 0, Uint8Array.from([1, 2])));
    new DataView(body.buffer, body.byteOffset).setUint32(11, 1000, true);
    const frame = concatBytes([oneMessageFrame(Kind.RESULT, body), new Uint8Array(2000)]);
    expectProtocolError(() => forEachMessage(frame, new Reader(), (_k, r) => readResult(r)), "E_BAD_FRAME");
  });

  test("a frame ending inside a message header is E_BAD_FRAME", () => {
    const frame = oneMessageFrame(Kind.SUBMITTED, bodyOf((w) => writeSubmitted(w, 1, 2)));
    for (let extra = 1; extra < 5; extra++) {
      const err = expectProtocolError(() => forEachMessage(concatBytes([frame, new Uint8Array(extra)]), new Reader(), () => {}), "E_BAD_FRAME");
      expect(err.message).toContain("header");
    }
  });

  test("a message length overrunning its frame is E_BAD_FRAME", () => {
    const frame = oneMessageFrame(Kind.SUBMITTED, bodyOf((w) => writeSubmitted(w, 1, 2)));
    new DataView(frame.buffer).setUint32(1, 13, true);
    expectProtocolError(() => forEachMessage(frame, new Reader(), () => {}), "E_BAD_FRAME");
    new DataView(frame.buffer).setUint32(1, 0xffffffff, true);
    expectProtocolError(() => forEachMessage(frame, new Reader(), () => {}), "E_BAD_FRAME");
  });

  test("an empty frame body holds no message", () => {
    let calls = 0;
    forEachMessage(new Uint8Array(0), new Reader(), () => calls++);
    expect(calls).toBe(0);
  });

  test("a reader cannot read past its message into the next one", () => {
    const w = new FrameWriter();
    writeSubmitted(w, 1, 2);
    writeSubmitted(w, 3, 4);
    const body = w.finish().subarray(4);
    let first = true;
    forEachMessage(body, new Reader(), (_k, r) => {
      if (!first) return;
      first = false;
      r.u32();
      r.f64();
      expectProtocolError(() => r.u8(), "E_BAD_FRAME");
    });
  });
});

describe("strings", () => {
  const assignWithType = (typeBytes: Uint8Array): Uint8Array => {
    const w = new ByteWriter(64);
    w.f64(1);
    w.u16(1);
    w.u32(10);
    w.u8(typeBytes.length);
    w.raw(typeBytes);
    w.bytes32(new Uint8Array(0));
    return oneMessageFrame(Kind.ASSIGN, w.toBytes());
  };

  test("invalid UTF-8 in a str8 is E_BAD_FRAME", () => {
    for (const bad of [[0xff], [0xc3], [0xe6, 0x97], [0xed, 0xa0, 0x80], [0x80, 0x41], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const err = expectProtocolError(() => readOne(assignWithType(Uint8Array.from(bad)), readAssign), "E_BAD_FRAME");
      expect(err.message).toContain("UTF-8");
    }
  });

  test("an invalid string is rejected every time, not cached", () => {
    const reader = new Reader();
    const frame = assignWithType(Uint8Array.from([0x61, 0xff]));
    for (let i = 0; i < 3; i++) expectProtocolError(() => forEachMessage(frame, reader, (_k, r) => readAssign(r)), "E_BAD_FRAME");
  });

  test("the string cache returns the right string for same-length and repeated names, past its 32 entries", () => {
    const reader = new Reader();
    const names = Array.from({ length: 80 }, (_, i) => `t${String(i).padStart(3, "0")}`);
    const w = new FrameWriter();
    for (let round = 0; round < 3; round++) for (const name of names) writeAssign(w, 1, 1, 1, name, new Uint8Array(0));
    const got: string[] = [];
    forEachMessage(w.finish().subarray(4), reader, (_k, r) => got.push(readAssign(r).type));
    expect(got).toEqual([...names, ...names, ...names]);
  });

  test("multi-byte strings and strings of exactly 255 bytes round-trip", () => {
    const w = new FrameWriter();
    const names = ["é".repeat(127), "a" + "é".repeat(127), "日".repeat(85), "🙂".repeat(63), "x".repeat(255), ""];
    for (const name of names) expect(new TextEncoder().encode(name).length).toBeLessThanOrEqual(255);
    for (const name of names) writeAssign(w, 1, 1, 1, name, new Uint8Array(0));
    const got: string[] = [];
    forEachMessage(w.finish().subarray(4), new Reader(), (_k, r) => got.push(readAssign(r).type));
    expect(got).toEqual(names);
  });

  test("every ASCII character, and ASCII next to non-ASCII, round-trips in short and long strings", () => {
    const ascii = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join("");
    const names = [ascii.slice(0, 64), ascii.slice(64), ascii, "abc\u0080", "\u00ffabc", "a".repeat(64) + "é", "é" + "a".repeat(63)];
    const w = new FrameWriter();
    for (const name of names) writeAssign(w, 1, 1, 1, name, new Uint8Array(0));
    const got: string[] = [];
    forEachMessage(w.finish().subarray(4), new Reader(), (_k, r) => got.push(readAssign(r).type));
    expect(got).toEqual(names);
  });
});

describe("control messages", () => {
  const controlFrame = (body: Uint8Array): Uint8Array => oneMessageFrame(Kind.HELLO, body);

  test("a map decodes", () => {
    expect(readOne(controlFrame(encode({ a: 1, b: [2] })), (r) => readControl(r))).toEqual({ a: 1, b: [2] });
  });

  test("a non-map body (array, number, string, nil, bool) is E_BAD_FRAME", () => {
    for (const value of [[1, 2], 5, "text", null, true, -1.5]) {
      const err = expectProtocolError(() => readOne(controlFrame(encode(value)), (r) => readControl(r)), "E_BAD_FRAME");
      expect(err.message).toContain("map");
    }
  });

  test("broken msgpack is E_BAD_FRAME", () => {
    for (const body of [new Uint8Array(0), Uint8Array.from([0xc1]), Uint8Array.from([0x82, 0xa1, 0x61]), Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff])]) {
      expectProtocolError(() => readOne(controlFrame(body), (r) => readControl(r)), "E_BAD_FRAME");
    }
  });

  test("msgpack followed by extra bytes is E_BAD_FRAME", () => {
    expectProtocolError(() => readOne(controlFrame(concatBytes([encode({ a: 1 }), Uint8Array.from([0])])), (r) => readControl(r)), "E_BAD_FRAME");
  });

  test("readControl consumes the whole message, so the next one is read from its start", () => {
    const w = new FrameWriter();
    writeControl(w, Kind.HEARTBEAT, { running: 1, done: 2, failed: 3 });
    writeSubmitted(w, 9, 10);
    expect(decodeStream([w.finish()])).toEqual([
      { kind: Kind.HEARTBEAT, control: { running: 1, done: 2, failed: 3 } },
      { kind: Kind.SUBMITTED, fields: { requestId: 9, taskId: 10 } },
    ]);
  });

  // BUG (src/protocol/codec.ts, readControl): the "must be a map" check is
  // `typeof value !== "object" || Array.isArray(value)`, so msgpack bin (decoded
  // as a Uint8Array) and the timestamp extension (decoded as a Date) pass as maps.
  test("a bin or timestamp body is not a map: E_BAD_FRAME", () => {
    for (const value of [Uint8Array.from([1, 2, 3]), new Date(5)]) {
      expectProtocolError(() => readOne(controlFrame(encode(value)), (r) => readControl(r)), "E_BAD_FRAME");
    }
  });
});

describe("control messages: resource limits", () => {
  test("a declared length past the body is refused (the decoder does not read out of the body)", () => {
    for (const body of [[0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xc6, 0x7f, 0xff, 0xff, 0xff], [0xdb, 0x00, 0x01, 0x00, 0x00]]) {
      expectProtocolError(() => readOne(oneMessageFrame(Kind.HELLO, Uint8Array.from(body)), (r) => readControl(r)), "E_BAD_FRAME");
    }
  });

  // BUG (src/protocol/codec.ts, `const decoder = new Decoder()` used by
  // readControl): the msgpack Decoder keeps its default maxArrayLength and
  // maxMapLength of 2^32-1 and allocates the declared array before it checks the
  // body holds that many elements. A 5-byte control body `dd 04 00 00 00`
  // (array32 of 64 Mi elements) takes 0.2-0.7 s and ~550 MB of RSS before it fails
  // with E_BAD_FRAME; `dd 06 a9 2e b8` takes ~1 s and ~900 MB. Any peer can send
  // it as its HELLO, before authentication. Expected: refused at once, e.g. with
  // Decoder({ maxArrayLength, maxMapLength, maxStrLength, maxBinLength }) bounded
  // by the body length (an element takes at least one byte).
  test("a control body declaring a huge array is refused in bounded time (no up-front allocation)", () => {
    const body = Uint8Array.from([0xdd, 0x04, 0x00, 0x00, 0x00]);
    const start = performance.now();
    expectProtocolError(() => readOne(oneMessageFrame(Kind.HELLO, body), (r) => readControl(r)), "E_BAD_FRAME");
    expect(performance.now() - start).toBeLessThan(20);
  });
});

describe("Reader shared across frames, as a Connection holds one", () => {
  test("messages of frames decoded from one chunk", () => {
    const prng = new Prng(11);
    const frames = Array.from({ length: 30 }, () => encodeMessages([randomMessage(prng)]));
    const messages = frames.map((f) => decodeStream([f])[0]!);
    expect(decodeStream([concatBytes(frames)], { sharedReader: new Reader() })).toEqual(messages);
  });

  // Regression: Reader.reset used to rebuild its DataView only when the buffer or
  // byteOffset changed. Frames reassembled by FrameDecoder are all views of its
  // `pending` buffer at byteOffset 4, so after a short frame a longer one was read
  // through the old, shorter view: `RangeError: Out of bounds access`, and
  // Connection closed a valid connection with E_BAD_FRAME.
  test("a short frame then a longer one, both split across chunks", () => {
    const messages: Message[] = [
      { kind: Kind.SUBMITTED, fields: { requestId: 1, taskId: 2 } },
      { kind: Kind.RESULT, fields: { taskId: 5, attempt: 1, status: 0, output: new Uint8Array(100) } },
    ];
    const stream = concatBytes(messages.map((m) => encodeMessages([m])));
    expect(decodeStream(byteChunks(stream, 3), { sharedReader: new Reader() })).toEqual(messages);
    expect(decodeStream(byteChunks(stream, 1), { sharedReader: new Reader() })).toEqual(messages);
  });

  test("random batches of several frames, every chunking, one Reader for the whole stream", () => {
    const prng = new Prng(12);
    const reader = new Reader();
    for (let round = 0; round < 100; round++) {
      const batches = Array.from({ length: 2 + prng.int(4) }, () => Array.from({ length: 1 + prng.int(4) }, () => randomMessage(prng)));
      const stream = concatBytes(batches.map((b) => encodeMessages(b)));
      expect(decodeStream(byteChunks(stream, 1 + prng.int(40)), { sharedReader: reader })).toEqual(batches.flat());
    }
  });
});

describe("incremental decoding feeds forEachMessage every frame exactly once", () => {
  test("frames decoded from byte chunks hand the same bodies to forEachMessage as from one chunk", () => {
    const prng = new Prng(77);
    const messages = Array.from({ length: 50 }, () => randomMessage(prng));
    const stream = concatBytes(messages.map((m) => encodeMessages([m])));
    const bodiesWhole: Uint8Array[] = [];
    const bodiesBytewise: Uint8Array[] = [];
    const dec1 = new FrameDecoder(1 << 20);
    dec1.push(stream, (b) => bodiesWhole.push(b.slice()));
    const dec2 = new FrameDecoder(1 << 20);
    for (const c of byteChunks(stream)) dec2.push(c, (b) => bodiesBytewise.push(b.slice()));
    expect(bodiesBytewise).toEqual(bodiesWhole);
    expect(bodiesWhole.flatMap((b) => {
      const out: Message[] = [];
      forEachMessage(b, new Reader(), (k, r) => out.push(readMessage(k, r)));
      return out;
    })).toEqual(messages);
  });
});

describe("submitPayloadBytes", () => {
  test("reads the payload length of a SUBMIT without moving the reader, for any type and key length", () => {
    const rng = new Prng(11);
    for (let i = 0; i < 200; i++) {
      const w = new FrameWriter();
      const payload = randomBytes(rng, rng.int(3000));
      writeSubmit(w, {
        requestId: i, priority: 1, flags: 0, maxAttempts: 3, timeoutMs: 100,
        type: "t".repeat(1 + rng.int(200)), idempotencyKey: "k".repeat(rng.int(201)), payload,
      } as SubmitFields);
      const frame = w.finish();
      forEachMessage(frame.subarray(FRAME_HEADER_BYTES), new Reader(), (_kind, r) => {
        const at = r.pos;
        expect(submitPayloadBytes(r)).toBe(payload.length);
        expect(r.pos).toBe(at);
        expect(readSubmit(r).payload).toEqual(payload);
      });
    }
  });

  test("a body that ends before the payload length is E_BAD_FRAME", () => {
    const r = new Reader().reset(new Uint8Array([1, 0, 0, 0, 5, 0, 3, 0, 100, 0, 0, 0, 4, 110, 111]));
    expectProtocolError(() => submitPayloadBytes(r), "E_BAD_FRAME");
    expect(r.pos).toBe(0);
  });
});

test("every message kind has a code of its own", () => {
  const codes = Object.values(Kind);
  const repeated = codes.filter((code, i) => codes.indexOf(code) !== i);
  expect(repeated).toEqual([]);
  expect(Object.keys(KIND_NAMES).length).toBe(codes.length);
});

describe("SUBMIT_BATCH bounds", () => {
  const header = (requestId: number, count: number, rest: Uint8Array = new Uint8Array(0)) => {
    const w = new ByteWriter(16);
    w.u32(requestId);
    w.u32(count);
    return concatBytes([w.toBytes(), rest]);
  };
  const spans = (body: Uint8Array, max = SUBMIT_BATCH_TASKS_MAX) => readOne(oneMessageFrame(Kind.SUBMIT_BATCH, body), (r) => readSubmitBatchSpans(r, max));

  test("no task is E_BAD_REQUEST; more than the limit is E_TOO_LARGE, before anything is allocated for them", () => {
    expectProtocolError(() => spans(header(1, 0)), "E_BAD_REQUEST");
    expectProtocolError(() => spans(header(1, SUBMIT_BATCH_TASKS_MAX + 1)), "E_TOO_LARGE");
    expectProtocolError(() => spans(header(1, 0xffffffff)), "E_TOO_LARGE");
    expectProtocolError(() => spans(bodyOf((w) => writeSubmitBatch(w, 1, [SUBMIT, SUBMIT, SUBMIT])), 2), "E_TOO_LARGE");
  });

  test("a count the body cannot hold, or a task shorter than its request id, is E_BAD_FRAME", () => {
    expectProtocolError(() => spans(header(1, 1000, new Uint8Array(100))), "E_BAD_FRAME");
    const tiny = new ByteWriter(64);
    tiny.u32(3);
    tiny.raw(new Uint8Array(3));
    expectProtocolError(() => spans(header(1, 1, concatBytes([tiny.toBytes(), new Uint8Array(20)]))), "E_BAD_FRAME");
  });

  test("the spans cover each task's SUBMIT body exactly", () => {
    const body = bodyOf((w) => writeSubmitBatch(w, 77, [SUBMIT, { ...SUBMIT, requestId: 5, payload: new Uint8Array(300) }]));
    const s = spans(body);
    expect(s.requestId).toBe(77);
    expect(s.ends[0]! - s.starts[0]!).toBe(bodyOf((w) => writeSubmit(w, SUBMIT)).length);
    expect(s.starts[1]).toBe(s.ends[0]! + 4);
    expect(s.ends[1]).toBe(5 + body.length); // positions in the frame body, after its 5-byte message header
  });

  test("a refused task's message is cut to 1,024 bytes; its code to 64", () => {
    const body = bodyOf((w) => writeSubmittedBatch(w, 1, [{ ok: false, code: "E_BAD_REQUEST", message: "x".repeat(5000) }]));
    const outcome = readOne(oneMessageFrame(Kind.SUBMITTED_BATCH, body), (r) => readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX)).outcomes[0]!;
    expect(outcome).toEqual({ ok: false, code: "E_BAD_REQUEST", message: "x".repeat(1024) });
    // Cut before a character, never inside one: "é" is 2 bytes, and 1,024 of them would split at an odd count.
    const accented = bodyOf((w) => writeSubmittedBatch(w, 1, [{ ok: false, code: "E_BAD_REQUEST", message: "a" + "é".repeat(1000) }]));
    const cut = readOne(oneMessageFrame(Kind.SUBMITTED_BATCH, accented), (r) => readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX)).outcomes[0]!;
    expect(cut).toEqual({ ok: false, code: "E_BAD_REQUEST", message: "a" + "é".repeat(511) });
  });

  test("a task that cannot be encoded drops the whole batch message and leaves the frame valid", () => {
    const w = new FrameWriter(256);
    writeSubmitted(w, 1, 2);
    expectProtocolError(() => writeSubmitBatch(w, 3, [SUBMIT, { ...SUBMIT, type: "y".repeat(300) }]), "E_TOO_LARGE");
    expect(decodeStream([w.finish()]).map((m) => m.kind)).toEqual([Kind.SUBMITTED]);
  });
});
