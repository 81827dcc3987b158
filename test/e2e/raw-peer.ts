// A raw TCP peer for hostile tests: sends whatever bytes it is given (at once
// or one byte at a time), decodes what the server answers (ERROR codes, other
// message kinds), and records when the server closed the connection.

import type { Socket } from "bun";
import { encode } from "@msgpack/msgpack";
import { forEachMessage, readControl, Reader } from "../../src/protocol/codec.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind, PROTOCOL_VERSION, type ErrorMessage } from "../../src/protocol/messages.ts";

/** What the server may send us in one frame: generous, we are not the one under test. */
const REPLY_FRAME_BYTES_MAX = 64 << 20;
/** How much of the raw reply is kept as text. */
const RAW_TEXT_MAX = 4096;

export class RawPeer {
  readonly errors: ErrorMessage[] = [];
  /** Every message kind the server sent, in order (ERROR included). */
  readonly kinds: number[] = [];
  /** Set if the server's bytes did not decode as frames (a server bug on a framed port; expected on HTTP). */
  garbled: string | undefined;
  /** The first RAW_TEXT_MAX bytes received, as latin1 text (for HTTP replies). */
  text = "";
  /** ms from open until the server closed (or we did, see closedByUs). */
  closedAfterMs: number | undefined;
  closedByUs = false;
  private socket: Socket<undefined> | undefined;
  private readonly openedAt = performance.now();
  private readonly closed = Promise.withResolvers<void>();
  private readonly decoder = new FrameDecoder(REPLY_FRAME_BYTES_MAX);
  private readonly reader = new Reader();

  static async open(port: number): Promise<RawPeer> {
    const peer = new RawPeer();
    const onClosed = () => peer.markClosed();
    peer.socket = await Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => peer.receive(chunk),
        end: onClosed,
        close: onClosed,
        error: onClosed,
        connectError: onClosed,
      },
    });
    return peer;
  }

  get isClosed(): boolean {
    return this.closedAfterMs !== undefined;
  }

  get errorCodes(): string[] {
    return this.errors.map((e) => e.code);
  }

  /** Writes bytes unless the connection is closed; false if it was. */
  send(bytes: Uint8Array): boolean {
    if (this.isClosed || this.socket === undefined) return false;
    this.socket.write(bytes);
    return true;
  }

  /** One byte every `intervalMs` until all are sent or the server closes; resolves with how many went out. */
  async dribble(bytes: Uint8Array, intervalMs: number): Promise<number> {
    let sent = 0;
    while (sent < bytes.length && this.send(bytes.subarray(sent, sent + 1))) {
      sent++;
      await Promise.race([Bun.sleep(intervalMs), this.closed.promise]);
    }
    return sent;
  }

  /** Resolves true once closed, false if still open after `deadlineMs` (a bound, not a sleep). */
  async waitClosed(deadlineMs: number): Promise<boolean> {
    const timer = Promise.withResolvers<void>();
    const t = setTimeout(timer.resolve, deadlineMs);
    await Promise.race([this.closed.promise, timer.promise]);
    clearTimeout(t);
    return this.isClosed;
  }

  /** Resolves true once the server has sent a message of `kind`, false at the deadline or on close. */
  async waitKind(kind: number, deadlineMs: number): Promise<boolean> {
    const until = performance.now() + deadlineMs;
    while (!this.kinds.includes(kind) && !this.isClosed && performance.now() < until) await Bun.sleep(5);
    return this.kinds.includes(kind);
  }

  /** We close (for cases where the peer gives up, and for cleanup). */
  end(): void {
    if (this.isClosed) return;
    this.closedByUs = true;
    this.socket?.end();
  }

  private receive(chunk: Uint8Array): void {
    if (this.text.length < RAW_TEXT_MAX) this.text += Buffer.from(chunk.subarray(0, RAW_TEXT_MAX - this.text.length)).toString("latin1");
    if (this.garbled !== undefined) return;
    try {
      this.decoder.push(chunk, (body) =>
        forEachMessage(body, this.reader, (kind, r) => {
          this.kinds.push(kind);
          if (kind === Kind.ERROR) this.errors.push(readControl<ErrorMessage>(r));
        }),
      );
    } catch (err) {
      this.garbled = String(err);
    }
  }

  private markClosed(): void {
    if (this.closedAfterMs === undefined) this.closedAfterMs = performance.now() - this.openedAt;
    this.closed.resolve();
  }
}

// ---------------------------------------------------------------- byte builders

/** `u32 LE length | body`. */
export function frame(body: Uint8Array, declaredBytes = body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, declaredBytes >>> 0, true);
  out.set(body, 4);
  return out;
}

/** `u8 kind | u32 LE length | body` (the length may lie). */
export function message(kind: number, body: Uint8Array, declaredBytes = body.length): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, declaredBytes >>> 0, true);
  out.set(body, 5);
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A HELLO frame; `fields` override a valid client HELLO. */
export function helloFrame(fields: Record<string, unknown> = {}): Uint8Array {
  return frame(message(Kind.HELLO, encode({ role: "client", version: PROTOCOL_VERSION, nodeId: "hostile", ...fields })));
}

/** A control message (msgpack map body). */
export function controlMessage(kind: number, value: unknown): Uint8Array {
  return message(kind, encode(value));
}
