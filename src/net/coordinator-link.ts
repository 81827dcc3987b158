// A long-lived link to one coordinator, for workers and routers: dial, HELLO,
// learn shard/epoch/role from WELCOME, pass every other message up; on loss,
// redial with exponential backoff and jitter (so a restarted coordinator is
// not stampeded by every peer at once).

import type { Logger } from "../cli/log.ts";
import { readControl, writeControl, writeRaw, type Reader } from "../protocol/codec.ts";
import { Kind, type ErrorMessage, type Hello, type RoleChange, type Welcome } from "../protocol/messages.ts";
import { backoffDelayMs } from "./backoff.ts";
import { Connection, type ConnectionHandler, type NetLimits } from "./connection.ts";
import { dial, type HostPort } from "./endpoints.ts";
import type { ClientTls } from "./tls.ts";

export interface LinkOptions {
  /** Sent on every (re)connect; a function when it changes over time (a coordinator's epoch). */
  hello: Hello | (() => Hello);
  limits: NetLimits;
  /** Dial over TLS, trusting this CA. */
  tls?: ClientTls;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

export interface LinkEvents {
  /** Any message but WELCOME and connection-level ERRORs; `r` is valid during the call only. */
  onMessage(link: CoordinatorLink, kind: number, r: Reader): void;
  /** The end of one socket read's messages. */
  onReadEnd?(link: CoordinatorLink): void;
  onUp(link: CoordinatorLink): void;
  onDown(link: CoordinatorLink, reason: string): void;
  /** The coordinator announced a new role or epoch (ROLE); fields are already updated. */
  onRole?(link: CoordinatorLink): void;
}

export class CoordinatorLink implements ConnectionHandler {
  shard = -1;
  epoch = 0;
  primary = false;
  /** The log index the coordinator said it holds in its WELCOME. */
  index = 0;
  nodeId = "";
  /** Why the link is down, for stats (empty while up). */
  lastError = "not connected yet";
  private conn: Connection | undefined;
  private welcomed = false;
  private failures = 0;
  private closedForGood = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly address: HostPort,
    private readonly options: LinkOptions,
    private readonly log: Logger,
    private readonly events: LinkEvents,
  ) {}

  get label(): string {
    return `${this.address.host}:${this.address.port}`;
  }

  get up(): boolean {
    return this.welcomed && this.conn !== undefined && !this.conn.closed;
  }

  /** Bytes written to the link but not yet taken by the kernel (0 when down). */
  get backlogBytes(): number {
    return this.conn?.closed === false ? this.conn.backlogBytes : 0;
  }

  /** The connection's writer, or undefined when down or too far behind (then the caller fails the request). */
  writableConnection(): Connection | undefined {
    const conn = this.conn;
    return this.welcomed && conn !== undefined && conn.writable() ? conn : undefined;
  }

  connect(): void {
    if (this.closedForGood) return;
    dial(this.address.host, this.address.port, this, this.options.limits, this.options.tls).then(
      (conn) => {
        if (this.closedForGood) return conn.close("link closed");
        this.conn = conn;
        const hello = this.options.hello;
        writeControl(conn.writer, Kind.HELLO, typeof hello === "function" ? hello() : hello);
        conn.queueFlush();
      },
      (err: Error) => this.retry(`cannot connect: ${err.message}`),
    );
  }

  /** Drops the current connection (a peer that went silent); the link redials as after any loss. */
  reset(reason: string): void {
    this.conn?.close(reason);
  }

  close(): void {
    this.closedForGood = true;
    clearTimeout(this.retryTimer);
    this.conn?.close("link closed");
  }

  /** Appends one pre-encoded message; false when the link is down or the coordinator reads too slowly. */
  sendRaw(kind: number, body: Uint8Array): boolean {
    return this.sendRawRange(kind, body, 0, body.length);
  }

  /** sendRaw of bytes[start, end), without a view of it. */
  sendRawRange(kind: number, bytes: Uint8Array, start: number, end: number): boolean {
    const conn = this.writableConnection();
    if (conn === undefined) return false;
    writeRaw(conn.writer, kind, bytes, start, end);
    return true;
  }

  sendControl(kind: number, value: unknown): boolean {
    const conn = this.writableConnection();
    if (conn === undefined) return false;
    writeControl(conn.writer, kind, value);
    conn.queueFlush();
    return true;
  }

  flushSoon(): void {
    this.conn?.queueFlush();
  }

  onMessage(_conn: Connection, kind: number, r: Reader): void {
    if (kind === Kind.WELCOME) return this.welcome(readControl<Welcome>(r));
    if (kind === Kind.ROLE) {
      const role = readControl<RoleChange>(r);
      this.epoch = Number(role.epoch);
      this.primary = Boolean(role.primary);
      this.log.info("coordinator role changed", { coordinator: this.label, shard: this.shard, epoch: this.epoch, primary: this.primary });
      this.events.onRole?.(this);
      return;
    }
    if (kind === Kind.ERROR && r.end - r.pos > 0) {
      const at = r.pos;
      const e = readControl<ErrorMessage>(r);
      if (Number(e.requestId) === 0) {
        this.lastError = `${e.code}: ${e.message}`;
        this.log.warn("coordinator refused the link", { coordinator: this.label, code: e.code, message: e.message });
        return;
      }
      r.pos = at;
    }
    this.events.onMessage(this, kind, r);
  }

  onReadEnd(): void {
    this.events.onReadEnd?.(this);
  }

  onClose(_conn: Connection, reason: string): void {
    const wasUp = this.welcomed;
    this.welcomed = false;
    this.conn = undefined;
    if (wasUp) this.lastError = reason;
    if (wasUp) this.events.onDown(this, reason);
    this.retry(reason);
  }

  private welcome(w: Welcome): void {
    this.shard = Number(w.shard);
    this.epoch = Number(w.epoch);
    this.primary = Boolean(w.primary);
    this.index = Number(w.index ?? 0);
    this.nodeId = String(w.nodeId);
    this.welcomed = true;
    this.failures = 0;
    this.lastError = "";
    this.log.info("coordinator link up", { coordinator: this.label, shard: this.shard, epoch: this.epoch, primary: this.primary });
    this.events.onUp(this);
  }

  private retry(reason: string): void {
    if (this.closedForGood) return;
    this.lastError = reason;
    const delayMs = backoffDelayMs(this.failures++, this.options.reconnectMinMs, this.options.reconnectMaxMs, Math.random());
    // Say it loudly the first time and now and then after, not on every redial.
    const level = this.failures === 1 || this.failures % 50 === 0 ? "warn" : "debug";
    this.log[level]("coordinator link down", { coordinator: this.label, reason, retryInMs: delayMs, failures: this.failures });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }
}
