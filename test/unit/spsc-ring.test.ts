// SpscRing: FIFO of variable-length records through a small ring, checked
// against a plain array as the reference, on one thread and across a real Worker.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { SpscRing } from "../../src/ring/spsc-ring.ts";
import { randomBytes } from "../support/helpers.ts";
import { checkRingRecord } from "../support/ring-record.ts";

const HEADER_BYTES = 128;

function drainAll(ring: SpscRing, limit = Infinity): Uint8Array[] {
  const out: Uint8Array[] = [];
  ring.drain((data, start, length) => out.push(data.slice(start, start + length)), limit);
  return out;
}

function bytesOf(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** A ring whose head and tail counters start at `position` (to test 32-bit wrap of the counters). */
function ringAt(capacity: number, position: number): SpscRing {
  const buffer = new SharedArrayBuffer(HEADER_BYTES + capacity);
  const header = new Int32Array(buffer);
  header[0] = position | 0; // HEAD
  header[16] = position | 0; // TAIL
  return new SpscRing(buffer);
}

describe("SpscRing geometry", () => {
  test("capacity rounds up to a power of two, at least 1024", () => {
    expect(SpscRing.create(1).capacity).toBe(1024);
    expect(SpscRing.create(1024).capacity).toBe(1024);
    expect(SpscRing.create(1025).capacity).toBe(2048);
    expect(SpscRing.create(100_000).capacity).toBe(131_072);
    expect(SpscRing.create(5000).buffer.byteLength).toBe(HEADER_BYTES + 8192);
  });

  test("over 1 GiB is refused", () => {
    expect(() => SpscRing.create(2 ** 30 + 1)).toThrow(RangeError);
  });

  test("attaching to a buffer whose data part is not a power of two is refused", () => {
    expect(() => new SpscRing(new SharedArrayBuffer(HEADER_BYTES + 1000))).toThrow(RangeError);
    expect(() => new SpscRing(new SharedArrayBuffer(HEADER_BYTES))).toThrow(RangeError);
  });

  test("recordBytesMax is half the capacity less 8", () => {
    expect(SpscRing.create(1024).recordBytesMax).toBe(504);
    expect(SpscRing.create(65_536).recordBytesMax).toBe(32_760);
  });
});

describe("SpscRing on one thread", () => {
  test("empty: drain returns 0 and calls nothing", () => {
    const ring = SpscRing.create(1024);
    expect(ring.isEmpty()).toBe(true);
    let calls = 0;
    expect(ring.drain(() => calls++)).toBe(0);
    expect(calls).toBe(0);
  });

  test("FIFO order, including empty records", () => {
    const ring = SpscRing.create(1024);
    const records = [bytesOf(1), new Uint8Array(0), bytesOf(2, 3), bytesOf(4, 5, 6), bytesOf(7, 8, 9, 10), new Uint8Array(0), bytesOf(11, 12, 13, 14, 15)];
    for (const r of records) expect(ring.tryWrite(r)).toBe(true);
    ring.publish();
    expect(drainAll(ring)).toEqual(records);
    expect(ring.isEmpty()).toBe(true);
  });

  test("records are only visible after publish()", () => {
    const ring = SpscRing.create(1024);
    expect(ring.tryWrite(bytesOf(1, 2))).toBe(true);
    expect(ring.isEmpty()).toBe(true);
    expect(drainAll(ring)).toEqual([]);
    ring.publish();
    expect(ring.isEmpty()).toBe(false);
    expect(ring.tryWrite(bytesOf(3))).toBe(true);
    // Only the published one.
    expect(drainAll(ring)).toEqual([bytesOf(1, 2)]);
    ring.publish();
    expect(drainAll(ring)).toEqual([bytesOf(3)]);
  });

  test("a consumer attached to the same buffer sees what the producer published", () => {
    const producer = SpscRing.create(1024);
    const consumer = new SpscRing(producer.buffer);
    producer.tryWrite(bytesOf(9, 9));
    expect(consumer.isEmpty()).toBe(true);
    producer.publish();
    expect(drainAll(consumer)).toEqual([bytesOf(9, 9)]);
    expect(producer.isEmpty()).toBe(true);
  });

  test("a producer attached later continues after the published records", () => {
    const first = SpscRing.create(1024);
    first.tryWrite(bytesOf(1));
    first.publish();
    const second = new SpscRing(first.buffer);
    second.tryWrite(bytesOf(2));
    second.publish();
    expect(drainAll(first)).toEqual([bytesOf(1), bytesOf(2)]);
  });

  test("full: tryWrite returns false, and succeeds after a drain", () => {
    const ring = SpscRing.create(1024);
    // 4-byte records take 8 bytes each (length prefix + body): exactly 128 fit.
    let written = 0;
    while (ring.tryWrite(bytesOf(written & 255, 0, 0, 0))) written++;
    expect(written).toBe(128);
    expect(ring.tryWrite(new Uint8Array(0))).toBe(false);
    ring.publish();
    expect(ring.drain(() => {}, 1)).toBe(1);
    expect(ring.tryWrite(bytesOf(1, 2, 3, 4))).toBe(true);
    expect(ring.tryWrite(bytesOf(1, 2, 3, 4))).toBe(false);
    ring.publish();
    const got = drainAll(ring);
    expect(got).toHaveLength(128);
    expect(got[0]).toEqual(bytesOf(1, 0, 0, 0));
    expect(got[127]).toEqual(bytesOf(1, 2, 3, 4));
  });

  test("drain limit bounds one drain, the rest stays for the next", () => {
    const ring = SpscRing.create(1024);
    for (let i = 0; i < 10; i++) ring.tryWrite(bytesOf(i));
    ring.publish();
    expect(drainAll(ring, 3)).toEqual([bytesOf(0), bytesOf(1), bytesOf(2)]);
    expect(ring.drain(() => {}, 0)).toBe(0);
    expect(drainAll(ring, 4)).toEqual([bytesOf(3), bytesOf(4), bytesOf(5), bytesOf(6)]);
    expect(drainAll(ring)).toEqual([bytesOf(7), bytesOf(8), bytesOf(9)]);
    expect(ring.isEmpty()).toBe(true);
  });

  test("recordBytesMax is enforced with a RangeError", () => {
    const ring = SpscRing.create(1024);
    expect(() => ring.tryWrite(new Uint8Array(ring.recordBytesMax + 1))).toThrow(RangeError);
    expect(ring.tryWrite(new Uint8Array(ring.recordBytesMax))).toBe(true);
  });

  test("a record of recordBytesMax fits an empty ring at every position (wrap marker included)", () => {
    const max = randomBytes(new Prng(1), 504);
    for (let offset = 0; offset < 1024; offset += 4) {
      const ring = ringAt(1024, offset);
      expect(ring.isEmpty()).toBe(true);
      expect(ring.tryWrite(max)).toBe(true);
      ring.publish();
      expect(drainAll(ring)).toEqual([max]);
      expect(ring.isEmpty()).toBe(true);
    }
  });

  test("a record that does not fit before the end wraps to the start (WRAP marker)", () => {
    const ring = SpscRing.create(1024);
    // Fill to 1000 bytes, drain, then a 100-byte record cannot fit in the last 24 bytes.
    expect(ring.tryWrite(new Uint8Array(496))).toBe(true); // 500 bytes
    expect(ring.tryWrite(new Uint8Array(496))).toBe(true); // 1000
    ring.publish();
    drainAll(ring);
    const record = randomBytes(new Prng(2), 100);
    expect(ring.tryWrite(record)).toBe(true);
    ring.publish();
    expect(drainAll(ring)).toEqual([record]);
    // The record went to offset 0, after a WRAP marker at 1000 (0xffffffff, little-endian).
    const data = new Uint8Array(ring.buffer, HEADER_BYTES);
    expect([...data.subarray(1000, 1004)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(new DataView(ring.buffer, HEADER_BYTES).getUint32(0, true)).toBe(100);
    expect(data.slice(4, 104)).toEqual(new Uint8Array(record));
  });

  test("space check counts the skipped bytes at the end", () => {
    const ring = SpscRing.create(1024);
    expect(ring.tryWrite(new Uint8Array(496))).toBe(true); // 500 bytes, at 0
    expect(ring.tryWrite(new Uint8Array(396))).toBe(true); // 400 bytes, at 500; tail = 900
    ring.publish();
    expect(ring.drain(() => {}, 1)).toBe(1); // head = 500: 600 bytes free, 124 of them at the end
    // 200 bytes do not fit in the 124 at the end: skip 124 + 200 = 324 <= 600 free.
    expect(ring.tryWrite(new Uint8Array(196))).toBe(true);
    // Now used = 400 + 124 + 200 = 724; 300 free, all at the start (500 - 200).
    expect(ring.tryWrite(new Uint8Array(300))).toBe(false);
    expect(ring.tryWrite(new Uint8Array(296))).toBe(true);
    ring.publish();
    expect(drainAll(ring).map((r) => r.length)).toEqual([396, 196, 296]);
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`random sizes through a small ring match a reference queue (seed=${seed})`, () => {
      const prng = new Prng(seed);
      const ring = SpscRing.create(1024);
      const reference: Uint8Array[] = [];
      let unpublished = 0;
      let written = 0;
      let read = 0;
      for (let step = 0; step < 20_000; step++) {
        const action = prng.int(10);
        if (action < 6) {
          const n = prng.int(8) === 0 ? prng.int(ring.recordBytesMax + 1) : prng.int(40);
          const record = randomBytes(prng, n);
          if (ring.tryWrite(record)) {
            reference.push(record);
            unpublished++;
            written++;
          }
        } else if (action < 8) {
          ring.publish();
          unpublished = 0;
        } else {
          const limit = prng.int(3) === 0 ? 1 + prng.int(5) : Infinity;
          const visible = reference.length - unpublished;
          const got = drainAll(ring, limit);
          expect(got.length).toBe(Math.min(visible, limit));
          for (const r of got) {
            const want = reference.shift()!;
            if (r.length !== want.length || !r.every((b, i) => b === want[i])) throw new Error(`seed=${seed} step=${step}: record ${read} differs`);
            read++;
          }
        }
      }
      ring.publish();
      const rest = drainAll(ring);
      expect(rest).toEqual(reference);
      expect(written).toBeGreaterThan(5000);
    });
  }

  for (const start of [0x7fff_ff00, -0x100, 0xffff_ff00]) {
    test(`position counters wrap past 32 bits (start ${start})`, () => {
      const ring = ringAt(1024, start);
      const prng = new Prng(start >>> 0);
      const reference: Uint8Array[] = [];
      for (let round = 0; round < 3000; round++) {
        for (let k = 0; k < 3; k++) {
          const record = randomBytes(prng, prng.int(200));
          if (ring.tryWrite(record)) reference.push(record);
        }
        ring.publish();
        for (const r of drainAll(ring, 1 + prng.int(3))) expect(r).toEqual(reference.shift()!);
      }
      expect(drainAll(ring)).toEqual(reference);
    });
  }
});

describe("SpscRing waiting", () => {
  test("waitAsync is ready at once when records are published", () => {
    const ring = SpscRing.create(1024);
    ring.tryWrite(bytesOf(1));
    ring.publish();
    expect(ring.waitAsync(1000)).toEqual({ ready: true });
  });

  test("waitAsync is not ready on unpublished records, and wakes on publish()", async () => {
    const ring = SpscRing.create(1024);
    const producer = new SpscRing(ring.buffer);
    producer.tryWrite(bytesOf(1));
    const wait = ring.waitAsync(10_000);
    expect(wait.ready).toBe(false);
    producer.publish();
    expect(await wait.promise).toBe("ok");
    expect(drainAll(ring)).toEqual([bytesOf(1)]);
  });

  test("waitAsync times out on an empty ring", async () => {
    const ring = SpscRing.create(1024);
    const wait = ring.waitAsync(1);
    expect(wait.ready).toBe(false);
    expect(await wait.promise).toBe("timed-out");
  });

  test("waitSync returns at once when records are published, and after its timeout otherwise", () => {
    const ring = SpscRing.create(1024);
    ring.waitSync(1);
    ring.tryWrite(bytesOf(1));
    ring.publish();
    ring.waitSync(60_000); // would block a minute if it waited
    expect(drainAll(ring)).toEqual([bytesOf(1)]);
  });

  test("after a wait ends the producer does not keep paying for notify", async () => {
    const ring = SpscRing.create(1024);
    const waiting = new Int32Array(ring.buffer, 0, 32);
    const wait = ring.waitAsync(1);
    expect(waiting[8]).toBe(1);
    await wait.promise;
    expect(waiting[8]).toBe(0);
    ring.waitSync(0);
    expect(waiting[8]).toBe(0);
  });
});

describe("SpscRing across threads", () => {
  for (const [count, capacity, batch] of [[20_000, 4096, 16], [5_000, 1024, 1], [3_000, 65_536, 1000]] as const) {
    test(`a Worker produces ${count} records into a ${capacity}-byte ring (batch ${batch}); main consumes with waitAsync in order`, async () => {
      const seed = 17;
      const ring = SpscRing.create(capacity);
      const sizeMax = ring.recordBytesMax;
      const worker = new Worker(new URL("../support/ring-producer.worker.ts", import.meta.url).href);
      let producerDone = false;
      let producerError: unknown;
      worker.onmessage = () => (producerDone = true);
      worker.onerror = (e) => (producerError = e);
      try {
        worker.postMessage({ buffer: ring.buffer, count, seed, batch });
        let next = 0;
        let problem: string | null = null;
        const deadline = performance.now() + 8000;
        while (next < count && problem === null) {
          if (performance.now() > deadline) throw new Error(`timed out with ${next} of ${count} records read (producer done: ${producerDone})`);
          if (producerError !== undefined) throw new Error(`producer failed: ${String(producerError)}`);
          const taken = ring.drain((data, start, length) => {
            if (problem === null) problem = checkRingRecord(seed, next, sizeMax, data, start, length);
            next++;
          });
          if (taken === 0) {
            const wait = ring.waitAsync(50);
            if (!wait.ready) await wait.promise;
          }
        }
        expect(problem).toBeNull();
        expect(next).toBe(count);
        const deadlineDone = performance.now() + 2000;
        while (!producerDone && performance.now() < deadlineDone) await new Promise((r) => setTimeout(r, 1));
        expect(producerDone).toBe(true);
        expect(ring.isEmpty()).toBe(true);
      } finally {
        worker.terminate();
      }
    }, 15_000);
  }
});
