// A Bun Worker for the cross-thread ring test: writes `count` records whose
// length and bytes follow from their index (see ringRecord), publishing in
// batches, then reports "done". It never waits for correctness: when the ring
// is full it publishes and pauses 50 us until the consumer frees space.

import { SpscRing } from "../../src/ring/spsc-ring.ts";
import { ringRecord } from "./ring-record.ts";

declare const self: Worker;

export interface ProducerInit {
  buffer: SharedArrayBuffer;
  count: number;
  seed: number;
  /** Records per publish(): batching as the real worker does. */
  batch: number;
}

self.onmessage = (event: MessageEvent<ProducerInit>) => {
  const { buffer, count, seed, batch } = event.data;
  const ring = new SpscRing(buffer);
  const backoff = new Int32Array(new SharedArrayBuffer(4));
  let fullWaits = 0;
  for (let i = 0; i < count; i++) {
    const record = ringRecord(seed, i, ring.recordBytesMax);
    while (!ring.tryWrite(record)) {
      ring.publish();
      fullWaits++;
      Atomics.wait(backoff, 0, 0, 0.05);
    }
    if ((i + 1) % batch === 0) ring.publish();
  }
  ring.publish();
  self.postMessage({ done: true, fullWaits });
};
