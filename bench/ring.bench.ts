// SPSC ring microbenchmark: the per-record cost of the worker's hand-off path
// (tryWrite + publish on one side, drain on the other), measured on one thread.
//   bun bench/ring.bench.ts

import { bench, group, run } from "mitata";
import { SpscRing } from "../src/ring/spsc-ring.ts";

const ring = SpscRing.create(4 * 1024 * 1024);
for (const size of [40, 1024]) {
  const record = new Uint8Array(size).fill(1);
  group(`256 records of ${size} bytes`, () => {
    bench("tryWrite x256, publish, drain", () => {
      for (let i = 0; i < 256; i++) ring.tryWrite(record);
      ring.publish();
      let n = 0;
      ring.drain((_d, _s, len) => (n += len));
      return n;
    });
  });
}
await run();
