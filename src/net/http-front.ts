// Every HTTP port (the router's REST API, /metrics of coordinators and workers)
// under the same connection limits and time-outs as the framed ports. Bun.serve
// can neither count nor refuse connections, and times out a silent one only
// in whole seconds (10 by default), so a TCP front (Bun.listen) accepts each
// connection, gives it a slot (ConnectionSlots), times its handshake (a whole
// first request head) and its idleness, and relays its bytes to Bun.serve on
// a unix socket that only this process uses.

import type { Socket, TCPSocketListener } from "bun";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetLimits } from "./connection.ts";
import { ConnectionSlots, IdleClock } from "./connection-slots.ts";
import { listenOrSayWhy, sweepIdleClients } from "./endpoints.ts";
import type { ServerTls } from "./tls.ts";

export type HttpLimits = Pick<NetLimits, "connectionsMax" | "handshakesMax" | "handshakeTimeoutMs" | "clientIdleTimeoutMs" | "pendingBytesMax">;

export interface HttpServeOptions {
  host: string;
  port: number;
  tls?: ServerTls;
  limits: HttpLimits;
  fetch(req: Request): Response | Promise<Response>;
  maxRequestBodySize?: number;
}

export interface HttpServer {
  readonly port: number;
  stop(): void;
}

/** A first request head longer than this is refused (431) instead of held while we wait for its end. */
export const HTTP_HEAD_BYTES_MAX = 64 * 1024;

const HEAD_END = [13, 10, 13, 10]; // "\r\n\r\n"
const utf8 = new TextEncoder();

/** A whole HTTP response that closes the connection, with the JSON error body the API uses. */
function errorResponse(status: number, reason: string, code: string, message: string): Uint8Array {
  const body = JSON.stringify({ error: { code, message } });
  return utf8.encode(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/**
 * Where the relays reach Bun.serve. On Linux an abstract socket: nothing on
 * disk, so nothing left behind by a kill -9. Elsewhere a socket in a private
 * directory, removed on stop and at exit.
 */
function innerAddress(): { unix: string; remove(): void } {
  if (process.platform === "linux") return { unix: `\0task-scheduler-http-${process.pid}-${randomBytes(6).toString("hex")}`, remove() {} };
  const dir = mkdtempSync(join(tmpdir(), "task-scheduler-http-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", remove);
  return { unix: join(dir, "http.sock"), remove };
}

export function serveHttp(options: HttpServeOptions): HttpServer {
  const { limits } = options;
  const inner = innerAddress();
  // No idle time-out inside (0): the front times connections out, and Bun's would cut keep-alive relays
  // it knows nothing of. Bun's types list idleTimeout for TCP servers only; it honours it on unix sockets.
  const inside = { unix: inner.unix, idleTimeout: 0, fetch: options.fetch, maxRequestBodySize: options.maxRequestBodySize };
  const server = Bun.serve(inside as unknown as Bun.Serve.Options<undefined>);
  // Every HTTP caller is a client: there are no peers on an HTTP port.
  const slots = new ConnectionSlots<Relay>({ handshakesMax: limits.handshakesMax, clientsMax: limits.connectionsMax, peersMax: 0 });
  let front: TCPSocketListener<Relay>;
  try {
    front = listenOrSayWhy(options.host, options.port, () => Bun.listen<Relay>({
      hostname: options.host,
      port: options.port,
      tls: options.tls,
      socket: {
        open(socket) {
          socket.data = new Relay(socket, inner.unix, slots, limits);
          const evicted = slots.open(socket.data);
          evicted?.refuse(503, "Service Unavailable", "E_TOO_MANY_CONNECTIONS", `closed before its first request to make room: ${limits.handshakesMax} newer connections were waiting for theirs (--handshakes-max)`);
        },
        data: (socket, chunk) => socket.data.fromClient(chunk),
        drain: (socket) => socket.data.clientDrained(),
        close: (socket) => socket.data?.closed(),
        error: (socket) => socket.data?.closed(),
      },
    }));
  } catch (err) {
    void server.stop(true);
    inner.remove();
    throw err;
  }
  const stopSweep = sweepIdleClients(limits.clientIdleTimeoutMs, slots.clientConnections, (relay) => relay.close());
  return {
    port: front.port,
    stop() {
      stopSweep();
      front.stop(true);
      void server.stop(true);
      inner.remove();
    },
  };
}

/** One client connection and its link to Bun.serve, bytes copied both ways with backpressure. */
class Relay {
  readonly idle = new IdleClock();
  private upstream: Socket<undefined> | undefined;
  private dialing = false;
  /** Client bytes not yet taken by Bun.serve (held until the first request head is whole, then while it is slow). */
  private toUpstream: Uint8Array[] = [];
  private toUpstreamBytes = 0;
  /** Response bytes the client has not taken yet. */
  private toClient: Uint8Array | undefined;
  private handshaken = false;
  private headMatched = 0;
  private ending = false;
  private isClosed = false;
  private readonly handshakeTimer: ReturnType<typeof setTimeout>;

  constructor(
    private readonly client: Socket<Relay>,
    private readonly unix: string,
    private readonly slots: ConnectionSlots<Relay>,
    private readonly limits: HttpLimits,
  ) {
    const ms = limits.handshakeTimeoutMs;
    this.handshakeTimer = setTimeout(() => this.refuse(408, "Request Timeout", "E_HANDSHAKE_TIMEOUT", `no whole request head within ${ms} ms (--handshake-timeout-ms)`), ms);
  }

  fromClient(chunk: Uint8Array): void {
    if (this.ending) return;
    this.idle.heard = true;
    if (!this.handshaken) {
      this.hold(chunk);
      if (this.handshake(chunk)) this.flushUpstream();
      return;
    }
    if (this.upstream === undefined || this.toUpstreamBytes > 0) {
      this.hold(chunk);
      return this.flushUpstream();
    }
    const written = Math.max(0, this.upstream.write(chunk));
    if (written < chunk.length) {
      this.hold(chunk.subarray(written));
      this.client.pause(); // until Bun.serve takes what is held (flushUpstream on its drain)
    }
  }

  /** Keeps client bytes Bun.serve cannot take yet (the chunk is only ours during the callback). */
  private hold(bytes: Uint8Array): void {
    this.toUpstream.push(bytes.slice());
    this.toUpstreamBytes += bytes.length;
  }

  /** Scans for the end of the first request head; true once it is whole and the connection has a client slot. */
  private handshake(chunk: Uint8Array): boolean {
    for (const byte of chunk) {
      this.headMatched = byte === HEAD_END[this.headMatched] ? this.headMatched + 1 : byte === HEAD_END[0] ? 1 : 0;
      if (this.headMatched === HEAD_END.length) break;
    }
    if (this.headMatched < HEAD_END.length) {
      if (this.toUpstreamBytes > HTTP_HEAD_BYTES_MAX) this.refuse(431, "Request Header Fields Too Large", "E_TOO_LARGE", `the request head is over ${HTTP_HEAD_BYTES_MAX} bytes`);
      return false;
    }
    clearTimeout(this.handshakeTimer);
    const refusal = this.slots.identify(this, "client");
    if (refusal !== undefined) {
      this.refuse(503, "Service Unavailable", "E_TOO_MANY_CONNECTIONS", refusal);
      return false;
    }
    this.handshaken = true;
    return true;
  }

  private flushUpstream(): void {
    if (this.upstream === undefined) {
      this.client.pause(); // nothing more until the link to Bun.serve is open
      return this.dial();
    }
    while (this.toUpstream.length > 0) {
      const bytes = this.toUpstream[0]!;
      const written = Math.max(0, this.upstream.write(bytes));
      this.toUpstreamBytes -= written;
      if (written < bytes.length) {
        this.toUpstream[0] = bytes.subarray(written);
        return;
      }
      this.toUpstream.shift();
    }
    this.client.resume();
  }

  private dial(): void {
    if (this.dialing) return;
    this.dialing = true;
    const closeBoth = () => this.endAfterFlush();
    void Bun.connect<undefined>({
      unix: this.unix,
      socket: {
        open: (socket) => {
          if (this.isClosed) return void socket.end();
          this.upstream = socket;
          this.flushUpstream();
        },
        data: (_socket, chunk) => this.fromUpstream(chunk),
        drain: () => this.flushUpstream(),
        close: closeBoth,
        error: closeBoth,
        connectError: () => this.refuse(502, "Bad Gateway", "E_UNAVAILABLE", "the HTTP handler is not reachable"),
      },
    }).catch(() => this.refuse(502, "Bad Gateway", "E_UNAVAILABLE", "the HTTP handler is not reachable"));
  }

  private fromUpstream(chunk: Uint8Array): void {
    if (this.isClosed) return;
    this.idle.heard = true;
    if (this.toClient !== undefined) {
      this.toClient = Buffer.concat([this.toClient, chunk]);
      if (this.toClient.length > this.limits.pendingBytesMax) this.close(); // a client this slow to read is cut off
      return;
    }
    const written = Math.max(0, this.client.write(chunk));
    if (written < chunk.length) {
      this.toClient = chunk.slice(written);
      this.upstream?.pause();
    }
  }

  clientDrained(): void {
    if (this.toClient === undefined) return;
    const bytes = this.toClient;
    const written = Math.max(0, this.client.write(bytes));
    this.toClient = written < bytes.length ? bytes.subarray(written) : undefined;
    if (this.toClient !== undefined) return;
    if (this.ending) return this.close();
    this.upstream?.resume();
  }

  /** Answers with an error of our own (not Bun.serve's) and closes. */
  refuse(status: number, reason: string, code: string, message: string): void {
    if (this.ending) return;
    this.toClient = undefined;
    this.client.write(errorResponse(status, reason, code, message));
    this.close();
  }

  /** Bun.serve closed its side: the client gets what is left of the response, then the close. */
  private endAfterFlush(): void {
    this.ending = true;
    if (this.toClient === undefined) this.close();
  }

  close(): void {
    this.ending = true;
    this.client.end();
    this.upstream?.end();
  }

  /** The client's socket closed. */
  closed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.ending = true;
    clearTimeout(this.handshakeTimer);
    this.slots.close(this);
    this.upstream?.end();
  }
}
