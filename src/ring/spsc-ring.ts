// Single-producer single-consumer ring of variable-length records over a
// SharedArrayBuffer, for the worker's main thread and its executor threads.
// The consumer sleeps (Atomics.wait / waitAsync) only when the ring is empty,
// and the producer pays for Atomics.notify only when the consumer said it sleeps:
// waking a thread costs ~50 us here, so batches must not ping-pong.
//
// Layout: a 128-byte header of Int32 slots (head and tail on separate cache
// lines), then `capacity` data bytes (a power of two). Records are
// `u32 length | bytes`, padded to 4 bytes; a length of WRAP means "skip to the
// start". Positions are free-running 32-bit counters; `pos & mask` is the index.

import { copyRange } from "../protocol/copy-range.ts";

const HEAD = 0; // consumer position; written by the consumer only
const WAITING = 8; // 1 while the consumer sleeps or is about to
const TAIL = 16; // producer position; written by the producer only
const HEADER_BYTES = 128;
const WRAP = 0xffffffff;

export interface RingWaitResult {
  /** true when the producer had already written, so no wait happened. */
  ready: boolean;
  /** resolves on notify or timeout (waitAsync only). */
  promise?: Promise<unknown>;
}

export class SpscRing {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly dataView: DataView;
  private readonly mask: number;
  /** The producer's unpublished tail (writes become visible on publish()). */
  private localTail: number;

  /** Creates a ring with `capacityBytes` (rounded up to a power of two) of data. */
  static create(capacityBytes: number): SpscRing {
    let capacity = 1024;
    while (capacity < capacityBytes) capacity *= 2;
    if (capacity > 1 << 30) throw new RangeError(`ring capacity ${capacityBytes} is over 1 GiB`);
    return new SpscRing(new SharedArrayBuffer(HEADER_BYTES + capacity));
  }

  /** Attaches to a ring made elsewhere (the buffer is posted to another thread). */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.capacity = buffer.byteLength - HEADER_BYTES;
    if (this.capacity <= 0 || (this.capacity & (this.capacity - 1)) !== 0) {
      throw new RangeError(`ring data size ${this.capacity} is not a power of two`);
    }
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(buffer, HEADER_BYTES);
    this.dataView = new DataView(buffer, HEADER_BYTES);
    this.mask = this.capacity - 1;
    this.localTail = Atomics.load(this.header, TAIL);
  }

  /** Largest record that always fits in an empty ring. */
  get recordBytesMax(): number {
    return (this.capacity >>> 1) - 8;
  }

  // ------------------------------------------------------------ producer side

  /**
   * Copies one record in; false when there is no room now (the caller keeps
   * it and tries again later). Invisible to the consumer until publish().
   */
  tryWrite(record: Uint8Array): boolean {
    return this.tryWriteRange(record, 0, record.length);
  }

  /** tryWrite of source[start, end), without a view of it (the worker's hot path). */
  tryWriteRange(source: Uint8Array, start: number, end: number): boolean {
    const n = end - start;
    if (n > this.recordBytesMax) throw new RangeError(`record of ${n} bytes is over the ring's limit of ${this.recordBytesMax}`);
    const padded = (4 + n + 3) & ~3;
    const head = Atomics.load(this.header, HEAD);
    let tail = this.localTail;
    let index = tail & this.mask;
    const untilEnd = this.capacity - index;
    const skip = untilEnd < padded ? untilEnd : 0;
    if (((tail - head) | 0) + skip + padded > this.capacity) return false;
    if (skip > 0) {
      this.dataView.setUint32(index, WRAP, true);
      tail = (tail + skip) | 0;
      index = 0;
    }
    this.dataView.setUint32(index, n, true);
    copyRange(this.data, index + 4, source, start, end);
    this.localTail = (tail + padded) | 0;
    return true;
  }

  /** Makes written records visible and wakes the consumer if it sleeps. */
  publish(): void {
    if (Atomics.load(this.header, TAIL) === this.localTail) return;
    Atomics.store(this.header, TAIL, this.localTail);
    if (Atomics.load(this.header, WAITING) === 1) Atomics.notify(this.header, TAIL);
  }

  // ------------------------------------------------------------ consumer side

  isEmpty(): boolean {
    return Atomics.load(this.header, HEAD) === Atomics.load(this.header, TAIL);
  }

  /**
   * Hands every published record to `onRecord` (a view valid only during the
   * call), then frees their space at once. Returns how many were read.
   * `limit` bounds one drain so a busy producer cannot starve the consumer's other work.
   */
  drain(onRecord: (data: Uint8Array, start: number, length: number) => void, limit = Infinity): number {
    let head = Atomics.load(this.header, HEAD);
    const tail = Atomics.load(this.header, TAIL);
    let count = 0;
    while (head !== tail && count < limit) {
      let index = head & this.mask;
      let n = this.dataView.getUint32(index, true);
      if (n === WRAP) {
        head = (head + (this.capacity - index)) | 0;
        index = 0;
        n = this.dataView.getUint32(0, true);
      }
      onRecord(this.data, index + 4, n);
      head = (head + ((4 + n + 3) & ~3)) | 0;
      count++;
    }
    Atomics.store(this.header, HEAD, head);
    return count;
  }

  /**
   * Blocks the calling thread until the ring is non-empty or `timeoutMs`
   * passes. Only for threads that may block (executors), never the main thread.
   */
  waitSync(timeoutMs: number): void {
    const observed = this.announceWait();
    if (observed === undefined) return;
    Atomics.wait(this.header, TAIL, observed, timeoutMs);
    Atomics.store(this.header, WAITING, 0);
  }

  /** Like waitSync, but returns a promise so the event loop keeps running. */
  waitAsync(timeoutMs: number): RingWaitResult {
    const observed = this.announceWait();
    if (observed === undefined) return { ready: true };
    const result = Atomics.waitAsync(this.header, TAIL, observed, timeoutMs);
    const promise = (result.async ? result.value : Promise.resolve(result.value)).then((v) => {
      Atomics.store(this.header, WAITING, 0);
      return v;
    });
    return { ready: false, promise };
  }

  /** Sets WAITING then rechecks, so a publish between the two is never missed. Undefined: data is there. */
  private announceWait(): number | undefined {
    Atomics.store(this.header, WAITING, 1);
    const tail = Atomics.load(this.header, TAIL);
    if (tail !== Atomics.load(this.header, HEAD)) {
      Atomics.store(this.header, WAITING, 0);
      return undefined;
    }
    return tail;
  }
}
