// Codec and framing microbenchmarks: the hand-written binary codec against
// generic msgpack for the hot SUBMIT message, and frame decoding of a batch.
//   bun bench/codec.bench.ts

import { decode, encode } from "@msgpack/msgpack";
import { bench, group, run, summary } from "mitata";
import { forEachMessage, FrameWriter, Reader, readSubmit, writeSubmit } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frame-decoder.ts";
import type { SubmitFields } from "../src/protocol/messages.ts";

const submit: SubmitFields = {
  requestId: 12345, priority: 100, flags: 1, maxAttempts: 3, timeoutMs: 60000,
  type: "resize", idempotencyKey: "client-1-abc-98765", payload: new Uint8Array(64).fill(7),
};
const BATCH = 256;

const writer = new FrameWriter(1 << 20);
const reader = new Reader();

summary(() => {
  group(`encode ${BATCH} SUBMITs`, () => {
    bench("binary codec into a reused FrameWriter", () => {
      writer.reset();
      for (let i = 0; i < BATCH; i++) writeSubmit(writer, submit);
      return writer.finish().length;
    });
    bench("msgpack encode, one object each", () => {
      let n = 0;
      for (let i = 0; i < BATCH; i++) n += encode(submit).length;
      return n;
    });
  });
});

writer.reset();
for (let i = 0; i < BATCH; i++) writeSubmit(writer, submit);
const frames = writer.finish().slice();
const packed = Array.from({ length: BATCH }, () => encode(submit));

summary(() => {
  group(`decode ${BATCH} SUBMITs`, () => {
    bench("frame decoder + binary codec", () => {
      const decoder = new FrameDecoder(1 << 24);
      let n = 0;
      decoder.push(frames, (body) => forEachMessage(body, reader, (_k, r) => (n += readSubmit(r).payload.length)));
      return n;
    });
    bench("msgpack decode, one object each", () => {
      let n = 0;
      for (const p of packed) n += (decode(p) as SubmitFields).payload.length;
      return n;
    });
  });
});

group("framing under split reads", () => {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < frames.length; at += 1000) chunks.push(frames.subarray(at, at + 1000));
  bench(`decode ${BATCH} SUBMITs arriving in 1000-byte chunks`, () => {
    const decoder = new FrameDecoder(1 << 24);
    let n = 0;
    for (const c of chunks) decoder.push(c, (body) => forEachMessage(body, reader, () => n++));
    return n;
  });
});

await run();
