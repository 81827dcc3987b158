// Incremental frame decoder: bytes in (any split of the stream), frame bodies out.
// A frame is `u32 bodyBytes (LE)` then the body. TCP gives no message boundaries,
// so a chunk may hold half a length prefix, several frames, or a frame's tail.

import { ProtocolError } from "./errors.ts";

export const FRAME_HEADER_BYTES = 4;

export class FrameDecoder {
  private pending: Uint8Array;
  private pendingLength = 0;
  readonly frameBytesMax: number;

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
    this.pending = new Uint8Array(Math.min(64 * 1024, frameBytesMax + FRAME_HEADER_BYTES));
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  /**
   * Feeds a chunk; calls `onFrame` for each complete frame body, in order.
   * A body is a view that is valid only during the callback. Throws
   * ProtocolError on a length prefix over frameBytesMax.
   */
  push(chunk: Uint8Array, onFrame: (body: Uint8Array) => void): void {
    let input = chunk;
    if (this.pendingLength > 0) {
      input = this.completePending(chunk, onFrame);
      if (input.length === 0) return;
    }
    const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
    let at = 0;
    while (input.length - at >= FRAME_HEADER_BYTES) {
      const bodyBytes = view.getUint32(at, true);
      this.checkLength(bodyBytes);
      const end = at + FRAME_HEADER_BYTES + bodyBytes;
      if (end > input.length) break;
      onFrame(input.subarray(at + FRAME_HEADER_BYTES, end));
      at = end;
    }
    if (at < input.length) this.keep(input.subarray(at));
  }

  /** Appends to the pending partial frame; returns what is left of the chunk after it completes. */
  private completePending(chunk: Uint8Array, onFrame: (body: Uint8Array) => void): Uint8Array {
    let used = 0;
    if (this.pendingLength < FRAME_HEADER_BYTES) {
      used = Math.min(FRAME_HEADER_BYTES - this.pendingLength, chunk.length);
      this.keep(chunk.subarray(0, used));
      if (this.pendingLength < FRAME_HEADER_BYTES) return chunk.subarray(used);
    }
    const bodyBytes = new DataView(this.pending.buffer).getUint32(0, true);
    this.checkLength(bodyBytes);
    const missing = FRAME_HEADER_BYTES + bodyBytes - this.pendingLength;
    const take = Math.min(missing, chunk.length - used);
    this.keep(chunk.subarray(used, used + take));
    used += take;
    if (take === missing) {
      const body = this.pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + bodyBytes);
      this.pendingLength = 0;
      onFrame(body);
    }
    return chunk.subarray(used);
  }

  private checkLength(bodyBytes: number): void {
    if (bodyBytes > this.frameBytesMax) {
      throw new ProtocolError("E_TOO_LARGE", `frame of ${bodyBytes} bytes is over the limit of ${this.frameBytesMax}`);
    }
  }

  private keep(bytes: Uint8Array): void {
    const needed = this.pendingLength + bytes.length;
    if (needed > this.pending.length) {
      let size = this.pending.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.pending.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    this.pending.set(bytes, this.pendingLength);
    this.pendingLength = needed;
  }
}
