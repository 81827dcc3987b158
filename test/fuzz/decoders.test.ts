// Bounded fuzzing of everything that reads bytes from a peer: FrameDecoder,
// forEachMessage and every message reader, fed random bytes and mutated valid
// streams. The only exception allowed is ProtocolError; fixed seeds keep it
// reproducible, and every failure names its seed and case.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { forEachMessage, readAssign, readControl, readResult, readSubmit, readSubmitted, readTaskDone, Reader } from "../../src/protocol/codec.ts";
import { readSubmitBatch, readSubmittedBatch } from "../../src/protocol/batch-codec.ts";
import { SUBMIT_BATCH_TASKS_MAX } from "../../src/protocol/messages.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { checkEventBatch, checkSubscribe, EventCursor } from "../../src/protocol/events.ts";
import { encode } from "@msgpack/msgpack";
import { encodeMessages, randomMessage, readMessage } from "../support/codec-fixtures.ts";
import { concatBytes, randomBytes, randomInt } from "../support/helpers.ts";

const FRAME_BYTES_MAX = 16 * 1024;
const READERS: Array<(r: Reader) => unknown> = [
  readSubmit, readSubmitted, readAssign, readResult, readTaskDone, (r) => readControl(r),
  (r) => checkSubscribe(readControl(r)), (r) => checkEventBatch(readControl(r)),
  (r) => readSubmitBatch(r, SUBMIT_BATCH_TASKS_MAX), (r) => readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX),
];

interface Outcome {
  messages: number;
  protocolErrors: number;
}

function hex(bytes: Uint8Array, max = 96): string {
  const shown = [...bytes.subarray(0, max)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return bytes.length > max ? `${shown}... (${bytes.length} bytes)` : shown;
}

/**
 * Feeds `stream` in random chunks through a decoder; each frame's messages are
 * read with the reader for their kind, then with every reader (on a second Reader). Returns how far
 * it got; throws if anything but a ProtocolError escapes.
 */
function feed(stream: Uint8Array, prng: Prng, where: string, readerFor?: () => Reader): Outcome {
  const outcome: Outcome = { messages: 0, protocolErrors: 0 };
  // One Reader for the stream, as a Connection has, unless the caller shares one wider.
  const streamReader = new Reader();
  const readerOf = readerFor ?? (() => streamReader);
  const other = new Reader();
  const decoder = new FrameDecoder(FRAME_BYTES_MAX);
  try {
    for (let at = 0; at < stream.length; ) {
      const n = Math.min(stream.length - at, 1 + prng.int(prng.int(2) === 0 ? 8 : 512));
      decoder.push(stream.subarray(at, at + n), (body) => {
        forEachMessage(body, readerOf(), (kind, r) => {
          const start = r.pos;
          const end = r.end;
          try {
            readMessage(kind, r);
            outcome.messages++;
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            outcome.protocolErrors++;
          }
          for (const read of READERS) {
            try {
              read(other.reset(r.bytes, start, end));
            } catch (err) {
              if (!(err instanceof ProtocolError)) throw err;
              outcome.protocolErrors++;
            }
          }
        });
      });
      at += n;
    }
  } catch (err) {
    if (err instanceof ProtocolError) {
      outcome.protocolErrors++;
      return outcome;
    }
    throw new Error(`${where}: ${String(err)} on input ${hex(stream)}`, { cause: err });
  }
  return outcome;
}

/** A frame header with the given body length, then the body. */
function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

/** A frame body of random messages: valid headers, random kinds and bodies. */
function randomFrameBody(prng: Prng): Uint8Array {
  const parts: Uint8Array[] = [];
  const count = prng.int(6);
  for (let i = 0; i < count; i++) {
    const body = randomBytes(prng, prng.int(48));
    const header = new Uint8Array(5);
    header[0] = prng.int(3) === 0 ? prng.int(256) : [1, 2, 3, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24][prng.int(13)]!;
    new DataView(header.buffer).setUint32(1, prng.int(10) === 0 ? prng.int(2 ** 32) : body.length + randomInt(prng, -2, 2) * (prng.int(4) === 0 ? 1 : 0), true);
    parts.push(header, body);
  }
  if (prng.int(5) === 0) parts.push(randomBytes(prng, prng.int(5))); // a torn header
  return concatBytes(parts);
}

function mutate(stream: Uint8Array, prng: Prng): Uint8Array {
  const out = stream.slice();
  const view = new DataView(out.buffer);
  switch (prng.int(7)) {
    case 0: // bit flips
      for (let k = 1 + prng.int(8); k > 0 && out.length > 0; k--) out[prng.int(out.length)]! ^= 1 << prng.int(8);
      return out;
    case 1: // truncation
      return out.subarray(0, prng.int(out.length + 1));
    case 2: // frame length prefix changed (the first frame's, at offset 0)
      if (out.length >= 4) view.setUint32(0, [0, 1, view.getUint32(0, true) - 1, view.getUint32(0, true) + 1, prng.int(2 ** 32), FRAME_BYTES_MAX + 1][prng.int(6)]! >>> 0, true);
      return out;
    case 3: // a message length changed (first message of the first frame, at offset 5)
      if (out.length >= 9) view.setUint32(5, [0, view.getUint32(5, true) - 1, view.getUint32(5, true) + 1, prng.int(2 ** 32), prng.int(64)][prng.int(5)]! >>> 0, true);
      return out;
    case 4: // random bytes spliced in
      return concatBytes([out.subarray(0, prng.int(out.length + 1)), randomBytes(prng, 1 + prng.int(16)), out.subarray(prng.int(out.length + 1))]);
    case 5: // a stretch overwritten with 0x00 or 0xff (extreme lengths)
      if (out.length > 0) out.fill(prng.int(2) === 0 ? 0 : 0xff, prng.int(out.length), prng.int(out.length + 1));
      return out;
    default: // a byte deleted
      if (out.length === 0) return out;
      {
        const at = prng.int(out.length);
        return concatBytes([out.subarray(0, at), out.subarray(at + 1)]);
      }
  }
}

const SEEDS = [1, 2, 3, 0xc0ffee];

describe("decoder fuzzing: only ProtocolError may escape", () => {
  for (const seed of SEEDS) {
    test(`random bytes (seed=${seed})`, () => {
      const prng = new Prng(seed);
      let errors = 0;
      for (let i = 0; i < 800; i++) errors += feed(randomBytes(prng, prng.int(300)), prng, `seed=${seed} case=${i}`).protocolErrors;
      expect(errors).toBeGreaterThan(0);
    });

    test(`random frames of random messages (seed=${seed})`, () => {
      const prng = new Prng(seed);
      const total: Outcome = { messages: 0, protocolErrors: 0 };
      for (let i = 0; i < 800; i++) {
        const stream = concatBytes(Array.from({ length: 1 + prng.int(4) }, () => frame(randomFrameBody(prng))));
        const o = feed(stream, prng, `seed=${seed} case=${i}`);
        total.messages += o.messages;
        total.protocolErrors += o.protocolErrors;
      }
      // The generator must reach the readers, not only the framing checks.
      expect(total.messages).toBeGreaterThan(0);
      expect(total.protocolErrors).toBeGreaterThan(100);
    });

    test(`mutated valid streams (seed=${seed})`, () => {
      const prng = new Prng(seed);
      let errors = 0;
      for (let i = 0; i < 800; i++) {
        const valid = encodeMessages(Array.from({ length: 1 + prng.int(6) }, () => randomMessage(prng)));
        let stream = valid;
        for (let m = 1 + prng.int(3); m > 0; m--) stream = mutate(stream, prng);
        errors += feed(stream, prng, `seed=${seed} case=${i}`).protocolErrors;
      }
      expect(errors).toBeGreaterThan(100);
    });
  }

  test("valid streams decode with no error at all (the fuzz harness is not the source of errors)", () => {
    const prng = new Prng(99);
    for (let i = 0; i < 300; i++) {
      const messages = Array.from({ length: 1 + prng.int(6) }, () => randomMessage(prng));
      const o = feed(encodeMessages(messages), prng, `seed=99 case=${i}`);
      expect(o.messages).toBe(messages.length);
    }
  });

  test("each reader alone on random bodies (seed=7)", () => {
    const prng = new Prng(7);
    const reader = new Reader();
    for (let i = 0; i < 3000; i++) {
      const body = randomBytes(prng, prng.int(80));
      for (const read of READERS) {
        try {
          read(reader.reset(body));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw new Error(`seed=7 case=${i}: ${String(err)} on body ${hex(body)}`, { cause: err });
        }
      }
    }
  });

  test("huge declared lengths are refused without allocating or hanging", () => {
    const start = performance.now();
    const lying = new Uint8Array(4 + 5 + 8 + 2 + 1 + 4);
    const view = new DataView(lying.buffer);
    view.setUint32(0, lying.length - 4, true);
    lying[4] = 14; // RESULT
    view.setUint32(5, lying.length - 9, true);
    view.setUint32(4 + 5 + 8 + 2 + 1, 0xffffffff, true); // output bytes32 length
    const o = feed(lying, new Prng(1), "huge bytes32");
    expect(o.protocolErrors).toBeGreaterThan(0);
    for (const body of [Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xff]), Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), Uint8Array.from([0xdf, 0x7f, 0xff, 0xff, 0xff])]) {
      const stream = frame(concatBytes([Uint8Array.from([1, body.length, 0, 0, 0]), body]));
      expect(feed(stream, new Prng(2), "huge msgpack").protocolErrors).toBeGreaterThan(0);
    }
    expect(performance.now() - start).toBeLessThan(1000);
  });

  // Connection keeps one Reader for its whole stream; frames reassembled from
  // several chunks share the decoder's pending buffer (see codec.test.ts, "Reader shared across frames").
  test("mutated valid streams of several frames with one shared Reader, as a Connection decodes (seed=5)", () => {
    const prng = new Prng(5);
    const shared = new Reader();
    for (let i = 0; i < 800; i++) {
      // Several frames per stream, so the decoder reassembles more than one in its pending buffer.
      const frames = Array.from({ length: 2 + prng.int(3) }, () => encodeMessages(Array.from({ length: 1 + prng.int(3) }, () => randomMessage(prng))));
      const valid = concatBytes(frames);
      feed(prng.int(2) === 0 ? valid : mutate(valid, prng), prng, `seed=5 case=${i}`, () => shared);
    }
  });

  // SUBSCRIBE and EVENTS are msgpack maps: random bytes rarely decode as one, so their
  // checks get valid maps with fields replaced by random values of any type.
  test("SUBSCRIBE and EVENTS maps with random field values, and random event ids (seed=11)", () => {
    const prng = new Prng(11);
    const anyValue = (): unknown => {
      const values: unknown[] = [
        null, undefined, true, -1, 0, 1.5, 2 ** 53, NaN, "", "completed", "gap", "x".repeat(prng.int(40)), [], [prng.int(9)], ["a", 1],
        { shard: 0, term: 1, seq: 2 }, { kind: "completed" }, new Uint8Array(3), Array.from({ length: 1100 }, () => "t"),
      ];
      return values[prng.int(values.length)];
    };
    const event = () => ({ kind: "completed", shard: 0, term: 5, seq: 1 + prng.int(9), at: 1, taskId: 3, type: "noop", attempt: 1 });
    const validSubscribe = () => ({ requestId: 1 + prng.int(9), filter: { kinds: ["completed"], types: ["noop"], tags: ["a"], taskIds: [1] }, after: [{ shard: 0, term: 5, seq: 1 }] });
    const validBatch = () => ({ requestId: 1, shard: 0, term: 5, seq: 9, events: [event(), event()] });
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const subscribe = validSubscribe() as Record<string, unknown>;
      const batch = validBatch() as Record<string, unknown>;
      const filter = subscribe.filter as Record<string, unknown>;
      const events = batch.events as Array<Record<string, unknown>>;
      const targets: Array<[Record<string, unknown>, string[]]> = [
        [subscribe, ["requestId", "filter", "after", "extra"]], [filter, ["kinds", "types", "tags", "taskIds", "colour"]],
        [batch, ["requestId", "shard", "term", "seq", "events"]], [events[0]!, ["kind", "shard", "term", "seq", "at", "taskId", "tags", "output", "progress"]],
      ];
      for (let k = 1 + prng.int(3); k > 0; k--) {
        const [target, fields] = targets[prng.int(targets.length)]!;
        target[fields[prng.int(fields.length)]!] = anyValue();
      }
      for (const [read, value] of [[checkSubscribe, subscribe], [checkEventBatch, batch]] as const) {
        const body = encode(value, { ignoreUndefined: true });
        try {
          read(readControl(new Reader().reset(body)));
          accepted++;
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw new Error(`seed=11 case=${i}: ${String(err)} on ${JSON.stringify(value)}`, { cause: err });
          refused++;
        }
      }
      const id = ["0.5.9_1.6.7", "", "0.5", "a.b.c", "0.5.9__1.6.7", "99999999.1.1", "0.99999999999.1"][prng.int(7)]!;
      const mutated = id.slice(0, prng.int(id.length + 1)) + randomBytes(prng, prng.int(3)).reduce((t, b) => t + String.fromCharCode(b), "") + id.slice(prng.int(id.length + 1));
      try {
        EventCursor.parse(mutated);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw new Error(`seed=11 case=${i}: ${String(err)} on id ${JSON.stringify(mutated)}`, { cause: err });
      }
    }
    // Both sides of each check are reached.
    expect(refused).toBeGreaterThan(500);
    expect(accepted).toBeGreaterThan(500);
  });
});
