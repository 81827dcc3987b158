// One framed TCP connection over a Bun socket, the same for servers and
// clients. Outgoing messages collect in a reused FrameWriter and go out in one
// write per microtask (or at once past FLUSH_BYTES); what the kernel does not
// take waits for `drain`. Incoming bytes go through the incremental decoder.
// A malformed frame closes this connection alone, with an ERROR frame first.
// A broken invariant (AssertionError from src/core) is no peer's doing: it is
// never answered as an error, it ends the process (see socketHandlers).

import type { Socket } from "bun";
import { exitOnBrokenInvariant } from "../cli/fatal.ts";
import { AssertionError } from "../core/assert.ts";
import { FrameWriter, forEachMessage, Reader, writeControl } from "../protocol/codec.ts";
import { ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import { FrameDecoder } from "../protocol/frame-decoder.ts";
import { Kind, type ErrorMessage, type Role } from "../protocol/messages.ts";
import { IdleClock } from "./connection-slots.ts";

export interface NetLimits {
  /** Largest frame accepted from the peer. */
  frameBytesMax: number;
  /** Most messages in one frame (a batch). */
  batchMax: number;
  /** Bytes queued for a peer that reads slowly before it is disconnected. */
  pendingBytesMax: number;
  /**
   * Servers: client connections (client and top roles; on an HTTP port, every
   * connection) after their handshake; the next is refused with E_TOO_MANY_CONNECTIONS.
   */
  connectionsMax: number;
  /** Servers: worker, router and coordinator links after their HELLO; slots clients never take. */
  peerConnectionsMax: number;
  /** Servers: connections still in their handshake; past it the oldest is closed to make room. */
  handshakesMax: number;
  /** Servers: a connection that has not completed its HELLO this long is closed (slow or silent peers). */
  handshakeTimeoutMs: number;
  /** Servers: a client connection with nothing in flight this long is closed (E_IDLE_TIMEOUT); 0: never. */
  clientIdleTimeoutMs: number;
}

export const DEFAULT_NET_LIMITS: NetLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  batchMax: 65_536,
  pendingBytesMax: 64 * 1024 * 1024,
  connectionsMax: 10_000,
  peerConnectionsMax: 1_000,
  handshakesMax: 1_000,
  handshakeTimeoutMs: 5_000,
  clientIdleTimeoutMs: 300_000,
};

/** Past this many buffered bytes a flush happens now, not at the end of the tick. */
const FLUSH_BYTES = 256 * 1024;

export interface ConnectionHandler {
  /** One decoded message; `r` is positioned on its body and valid only during the call. */
  onMessage(conn: Connection, kind: number, r: Reader): void;
  /** All messages of one socket read were handled: the place to act on a batch. */
  onReadEnd?(conn: Connection): void;
  onClose(conn: Connection, reason: string): void;
  /** The connection is writable again after backpressure. */
  onDrain?(conn: Connection): void;
}

let nextConnectionId = 1;

export class Connection {
  readonly id = nextConnectionId++;
  readonly writer: FrameWriter;
  readonly remote: string;
  /** Free for the owner (role, worker id, ...). */
  state: Record<string, unknown> = {};
  closed = false;
  /** Servers: whether this client has been quiet, with nothing in flight, for too long (the listener sweeps it). */
  readonly idle = new IdleClock();
  private readonly decoder: FrameDecoder;
  private readonly reader = new Reader();
  private unsent: Uint8Array | null = null;
  private flushQueued = false;
  private closeReason = "";
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Servers: takes the slot the peer's role needs, or throws E_TOO_MANY_CONNECTIONS (see expectHandshake). */
  private admit: ((role: Role) => void) | undefined;

  constructor(
    private readonly socket: Socket<Connection | undefined>,
    private readonly handler: ConnectionHandler,
    private limits: NetLimits,
  ) {
    this.decoder = new FrameDecoder(limits.frameBytesMax);
    // Headroom over pendingBytesMax so one message never overflows: writable() cuts off first.
    this.writer = new FrameWriter(64 * 1024, limits.pendingBytesMax + limits.frameBytesMax * 2);
    this.remote = `${socket.remoteAddress}`;
  }

  /**
   * Lets this one connection carry writes up to `bytes` (a replication
   * snapshot) without being cut off as a slow reader.
   */
  allowLargeWrites(bytes: number): void {
    if (bytes <= this.limits.pendingBytesMax) return;
    this.limits = { ...this.limits, pendingBytesMax: bytes };
    this.writer.bytesMax = bytes + this.limits.frameBytesMax * 2;
  }

  /**
   * Servers: closes the connection unless handshakeDone() is called within
   * the limit, so a peer that connects and says nothing (or dribbles a HELLO
   * a byte at a time) cannot hold a connection slot. `admit` is the
   * listener's: it moves the connection into a slot of its role's kind.
   */
  expectHandshake(admit: (role: Role) => void): void {
    const ms = this.limits.handshakeTimeoutMs;
    this.admit = admit;
    this.handshakeTimer = setTimeout(() => this.fail("E_HANDSHAKE_TIMEOUT", `no valid HELLO within ${ms} ms`), ms);
  }

  /**
   * The peer's HELLO was accepted as `role`. Throws E_TOO_MANY_CONNECTIONS
   * (which closes the connection) when every slot for that role is taken.
   */
  handshakeDone(role: Role): void {
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    const admit = this.admit;
    this.admit = undefined;
    admit?.(role);
  }

  /** Bytes waiting for the kernel: a measure of how far behind the peer reads. */
  get backlogBytes(): number {
    return this.writer.length + (this.unsent?.length ?? 0);
  }

  /** True while the kernel refuses bytes; producers should hold back. */
  get congested(): boolean {
    return this.unsent !== null;
  }

  /**
   * Check before writing: false if the connection is closed, or if the peer is
   * so far behind that it is disconnected now (E_SLOW_READER) instead of
   * buffering without bound.
   */
  writable(): boolean {
    if (this.closed) return false;
    if (this.backlogBytes <= this.limits.pendingBytesMax) return true;
    this.fail("E_SLOW_READER", `peer is ${this.backlogBytes} bytes behind, over the ${this.limits.pendingBytesMax}-byte limit`);
    return false;
  }

  /** Call after writing messages to `writer`. */
  queueFlush(): void {
    if (this.closed) return;
    if (this.writer.length >= FLUSH_BYTES) {
      this.flush();
      return;
    }
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  flush(): void {
    if (this.closed || this.unsent !== null || this.writer.length === 0) return;
    const bytes = this.writer.finish();
    const written = Math.max(0, this.socket.write(bytes));
    if (written < bytes.length) this.unsent = bytes.slice(written);
    this.writer.reset();
  }

  /** Sends an ERROR for one request; the connection stays open. */
  sendError(requestId: number, code: ErrorCode, message: string): void {
    writeControl(this.writer, Kind.ERROR, { requestId, code, message } satisfies ErrorMessage);
    this.queueFlush();
  }

  /** Sends an ERROR with request id 0 and closes: for protocol violations. */
  fail(code: ErrorCode, message: string): void {
    // Once closing, the first reason stands: the peer gets one ERROR.
    if (this.closed || this.closeReason !== "") return;
    this.closeReason = `${code}: ${message}`;
    try {
      this.writer.abandon();
      writeControl(this.writer, Kind.ERROR, { requestId: 0, code, message } satisfies ErrorMessage);
      const bytes = this.writer.finish();
      if (this.unsent === null) this.socket.write(bytes);
    } catch {
      // The peer is gone or hopelessly behind; closing is all that is left.
    }
    this.writer.reset();
    this.socket.end();
  }

  close(reason = "closed locally"): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.socket.end();
  }

  // ---------------------------------------------------------- socket events

  /** @internal from the socket's data handler. */
  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    this.idle.heard = true;
    try {
      this.decoder.push(chunk, (body) => forEachMessage(body, this.reader, this.dispatch, this.limits.batchMax));
      this.handler.onReadEnd?.(this);
    } catch (err) {
      // The state this process serves from is wrong: closing this connection and going on would build on it.
      if (err instanceof AssertionError) throw err;
      if (err instanceof ProtocolError) this.fail(err.code, err.message);
      else this.fail("E_BAD_FRAME", `internal error handling a frame: ${(err as Error).message}`);
      if (!(err instanceof ProtocolError)) console.error(err);
    }
  }

  private readonly dispatch = (kind: number, r: Reader): void => {
    if (!this.closed) this.handler.onMessage(this, kind, r);
  };

  /** @internal */
  drained(): void {
    if (this.closed || this.unsent === null) return;
    const bytes = this.unsent;
    const written = Math.max(0, this.socket.write(bytes));
    this.unsent = written < bytes.length ? bytes.subarray(written) : null;
    if (this.unsent === null) {
      this.flush();
      this.handler.onDrain?.(this);
    }
  }

  /** @internal */
  closedBySocket(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    this.handler.onClose(this, this.closeReason || "peer closed the connection");
  }
}

/** Lifecycle hooks of socketHandlers, beyond what the ConnectionHandler sees. */
export interface SocketHooks {
  onOpen?(conn: Connection): void;
  /**
   * TLS only: the handshake ended; `error` when the peer's certificate did not
   * verify. Dialers close on it; servers leave it out (they ask for no client
   * certificate, which Bun reports as an error too).
   */
  onTlsHandshake?(conn: Connection, error: Error | undefined): void;
  onClosed?(conn: Connection): void;
}

/** Socket handlers that route Bun's callbacks to the Connection in socket.data. */
export function socketHandlers(handler: ConnectionHandler, limits: NetLimits, hooks: SocketHooks = {}) {
  return {
    open(socket: Socket<Connection | undefined>) {
      const conn = new Connection(socket, handler, limits);
      socket.data = conn;
      hooks.onOpen?.(conn);
    },
    handshake(socket: Socket<Connection | undefined>, success: boolean, authorizationError: Error | null) {
      const conn = socket.data;
      if (conn === undefined || hooks.onTlsHandshake === undefined) return;
      const error = success && authorizationError === null ? undefined : (authorizationError ?? new Error("TLS handshake failed"));
      if (error !== undefined) conn.close(`TLS: ${error.message}`);
      hooks.onTlsHandshake(conn, error);
    },
    data(socket: Socket<Connection | undefined>, chunk: Uint8Array) {
      socket.data?.receive(chunk);
    },
    drain(socket: Socket<Connection | undefined>) {
      socket.data?.drained();
    },
    close: closed,
    // Bun hands what a socket callback throws to this handler: a socket error closes the connection,
    // a broken invariant (from receive(), or from a handler's onClose) ends the process at once.
    error(socket: Socket<Connection | undefined>, error: Error) {
      if (error instanceof AssertionError) exitOnBrokenInvariant(error);
      closed(socket);
    },
  };

  function closed(socket: Socket<Connection | undefined>): void {
    const conn = socket.data;
    if (conn === undefined || conn.closed) return;
    conn.closedBySocket();
    hooks.onClosed?.(conn);
  }
}
