// A growable byte buffer with little-endian writers, reused across flushes so
// the hot path encodes without allocating. Growth is capped by `bytesMax`.

import { copyRange, SHORT_COPY_BYTES } from "./copy-range.ts";
import { ProtocolError } from "./errors.ts";

const utf8 = new TextEncoder();

export class ByteWriter {
  bytes: Uint8Array;
  view: DataView;
  length = 0;
  /** Growth limit; raised for connections that carry snapshots. */
  bytesMax: number;

  constructor(initialBytes = 64 * 1024, bytesMax = 64 * 1024 * 1024) {
    // At least a few bytes, so doubling always grows.
    this.bytes = new Uint8Array(Math.max(16, initialBytes));
    this.view = new DataView(this.bytes.buffer);
    this.bytesMax = bytesMax;
  }

  reset(): void {
    this.length = 0;
  }

  /** Makes room for `n` more bytes, doubling the buffer; fails past bytesMax. */
  ensure(n: number): void {
    const needed = this.length + n;
    if (needed <= this.bytes.length) return;
    if (needed > this.bytesMax) {
      throw new ProtocolError("E_TOO_LARGE", `buffer would grow to ${needed} bytes, over its limit of ${this.bytesMax}`);
    }
    let size = this.bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(Math.min(size, this.bytesMax));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    this.ensure(1);
    this.bytes[this.length++] = value;
  }

  u16(value: number): void {
    this.ensure(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  u32(value: number): void {
    this.ensure(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  raw(data: Uint8Array): void {
    this.ensure(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /** data[start, end), without making a view of it for the short copies of the hot path. */
  rawRange(data: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    copyRange(this.bytes, this.length, data, start, end);
    this.length += n;
  }

  /** u32 length then the bytes. */
  bytes32(data: Uint8Array): void {
    this.u32(data.length);
    this.raw(data);
  }

  /** u8 length then UTF-8; strings longer than 255 bytes are an error. */
  str8(text: string): void {
    if (text.length <= SHORT_COPY_BYTES && this.asciiStr8(text)) return;
    // Worst case 3 bytes per UTF-16 unit; reserve that, then write the real length.
    this.ensure(1 + text.length * 3);
    const at = this.length;
    const { written } = utf8.encodeInto(text, this.bytes.subarray(at + 1));
    if (written > 255) throw new ProtocolError("E_TOO_LARGE", `string of ${written} bytes is over the 255-byte limit`);
    this.bytes[at] = written;
    this.length = at + 1 + written;
  }

  /** The common short ASCII string (task types, keys) byte by byte: no view for encodeInto. False if not ASCII. */
  private asciiStr8(text: string): boolean {
    this.ensure(1 + text.length);
    const out = this.bytes;
    const at = this.length + 1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0x7f) return false;
      out[at + i] = c;
    }
    out[at - 1] = text.length;
    this.length = at + text.length;
    return true;
  }

  /** Copy of what was written (for callers that must keep it). */
  toBytes(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}
