// FrameDecoder: the stream may be cut anywhere (TCP gives no boundaries), so the
// frames out must not depend on how the bytes were chunked.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { FRAME_HEADER_BYTES, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { concatBytes, expectProtocolError, randomBytes } from "../support/helpers.ts";

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/** Feeds the chunks and returns a copy of every frame body (views die after the callback). */
function decode(chunks: readonly Uint8Array[], frameBytesMax = 1 << 20, decoder = new FrameDecoder(frameBytesMax)): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (const chunk of chunks) decoder.push(chunk, (body) => frames.push(body.slice()));
  return frames;
}

function bytesOf(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

// Bodies chosen to cover: empty, 1 byte, smaller and bigger than the header, and one that needs the pending buffer to grow.
const BODIES = [bytesOf(1, 2, 3), new Uint8Array(0), bytesOf(9), bytesOf(4, 5, 6, 7, 8), new Uint8Array(0), randomBytes(new Prng(7), 300)];
const STREAM = concatBytes(BODIES.map(frame));

describe("FrameDecoder", () => {
  test("one chunk with every frame", () => {
    expect(decode([STREAM])).toEqual(BODIES);
  });

  test("one byte at a time gives the same frames", () => {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < STREAM.length; i++) chunks.push(STREAM.subarray(i, i + 1));
    expect(decode(chunks)).toEqual(BODIES);
  });

  test("every 2-way split gives the same frames", () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const frames = decode([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
      if (frames.length !== BODIES.length) throw new Error(`cut=${cut}: ${frames.length} frames`);
      expect(frames).toEqual(BODIES);
    }
  });

  test("every 3-way split of a short stream gives the same frames", () => {
    const bodies = BODIES.slice(0, 5);
    const stream = concatBytes(bodies.map(frame));
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b++) {
        expect(decode([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)])).toEqual(bodies);
      }
    }
  });

  test("random chunkings of a long stream give the same frames", () => {
    const prng = new Prng(42);
    const bodies = Array.from({ length: 200 }, () => randomBytes(prng, prng.int(3) === 0 ? 0 : prng.int(700)));
    const stream = concatBytes(bodies.map(frame));
    for (let round = 0; round < 50; round++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = Math.min(stream.length - at, prng.int(round % 2 === 0 ? 9 : 2000));
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      expect(decode(chunks)).toEqual(bodies);
    }
  });

  test("frames are delivered in order, each body a view of exactly its bytes", () => {
    const seen: number[][] = [];
    new FrameDecoder(100).push(concatBytes([frame(bytesOf(1)), frame(bytesOf(2, 2)), frame(bytesOf(3, 3, 3))]), (body) => seen.push([...body]));
    expect(seen).toEqual([[1], [2, 2], [3, 3, 3]]);
  });

  test("zero-length frames, alone and in a run", () => {
    expect(decode([frame(new Uint8Array(0))])).toEqual([new Uint8Array(0)]);
    const run = concatBytes(Array.from({ length: 10 }, () => frame(new Uint8Array(0))));
    expect(decode([run])).toHaveLength(10);
    const bytewise: Uint8Array[] = [];
    for (let i = 0; i < run.length; i++) bytewise.push(run.subarray(i, i + 1));
    expect(decode(bytewise)).toHaveLength(10);
  });

  test("many frames in one chunk", () => {
    const bodies = Array.from({ length: 10_000 }, (_, i) => bytesOf(i & 255, (i >> 8) & 255));
    expect(decode([concatBytes(bodies.map(frame))])).toEqual(bodies);
  });

  test("a partial frame is buffered, and bufferedBytes says how much", () => {
    const decoder = new FrameDecoder(1000);
    const f = frame(bytesOf(1, 2, 3, 4, 5, 6));
    const got: Uint8Array[] = [];
    decoder.push(f.subarray(0, 2), (b) => got.push(b.slice()));
    expect(decoder.bufferedBytes).toBe(2);
    decoder.push(f.subarray(2, 7), (b) => got.push(b.slice()));
    expect(decoder.bufferedBytes).toBe(7);
    expect(got).toHaveLength(0);
    decoder.push(f.subarray(7), (b) => got.push(b.slice()));
    expect(decoder.bufferedBytes).toBe(0);
    expect(got).toEqual([bytesOf(1, 2, 3, 4, 5, 6)]);
  });

  test("an empty chunk changes nothing", () => {
    const decoder = new FrameDecoder(1000);
    const f = frame(bytesOf(7, 8));
    expect(decode([new Uint8Array(0), f.subarray(0, 1), new Uint8Array(0), f.subarray(1), new Uint8Array(0)], 1000, decoder)).toEqual([bytesOf(7, 8)]);
  });

  test("a frame larger than the initial pending buffer (64 KiB) is reassembled", () => {
    const big = randomBytes(new Prng(3), 200_000);
    const f = frame(big);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < f.length; at += 1000) chunks.push(f.subarray(at, at + 1000));
    expect(decode(chunks, 1 << 20)).toEqual([big]);
  });

  test("a body of exactly frameBytesMax is accepted", () => {
    const body = randomBytes(new Prng(1), 64);
    expect(decode([frame(body)], 64)).toEqual([body]);
    const f = frame(body);
    expect(decode([f.subarray(0, 3), f.subarray(3)], 64)).toEqual([body]);
  });

  test("a length prefix over frameBytesMax throws E_TOO_LARGE, in one chunk", () => {
    const err = expectProtocolError(() => decode([frame(new Uint8Array(65))], 64), "E_TOO_LARGE");
    expect(err.message).toContain("65");
  });

  test("a length prefix over frameBytesMax throws as soon as the header is complete, before the body arrives", () => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 0xffffffff, true);
    const decoder = new FrameDecoder(1024);
    decoder.push(header.subarray(0, 3), () => {});
    expectProtocolError(() => decoder.push(header.subarray(3), () => {}), "E_TOO_LARGE");
    // Also when the whole header comes at once after a good frame.
    expectProtocolError(() => decode([concatBytes([frame(bytesOf(1)), header])], 1024), "E_TOO_LARGE");
  });

  test("frames before an oversized one are still delivered", () => {
    const frames: Uint8Array[] = [];
    const decoder = new FrameDecoder(8);
    expectProtocolError(() => decoder.push(concatBytes([frame(bytesOf(1)), frame(bytesOf(2)), frame(new Uint8Array(9))]), (b) => frames.push(b.slice())), "E_TOO_LARGE");
    expect(frames).toEqual([bytesOf(1), bytesOf(2)]);
  });

  test("chunks that are views into a larger buffer (non-zero byteOffset) decode correctly", () => {
    const backing = new Uint8Array(STREAM.length + 10);
    backing.set(STREAM, 7);
    const view = backing.subarray(7, 7 + STREAM.length);
    expect(decode([view])).toEqual(BODIES);
    expect(decode([view.subarray(0, 5), view.subarray(5)])).toEqual(BODIES);
  });
});
