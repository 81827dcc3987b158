// A worker's link to one coordinator: dial, HELLO with its credit, receive
// ASSIGN batches, send RESULTs and heartbeats; on loss, redial with
// exponential backoff and jitter (so a restarted coordinator is not stampeded).

import type { Logger } from "../cli/log.ts";
import { backoffDelayMs } from "../net/backoff.ts";
import { Connection, type ConnectionHandler, type NetLimits } from "../net/connection.ts";
import { dial, type HostPort } from "../net/endpoints.ts";
import { readControl, writeControl, writeRaw, type Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, PROTOCOL_VERSION, type ErrorMessage, type Hello, type Welcome } from "../protocol/messages.ts";

export interface LinkOptions {
  nodeId: string;
  slots: number;
  tags: string[];
  limits: NetLimits;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

export interface LinkEvents {
  /** One ASSIGN body (valid during the call only). */
  onAssign(body: Uint8Array): void;
  /** The end of one read's worth of ASSIGNs. */
  onAssignBatchEnd(): void;
  onUp(link: CoordinatorLink): void;
  onDown(link: CoordinatorLink): void;
}

export class CoordinatorLink implements ConnectionHandler {
  shard = -1;
  epoch = 0;
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

  get up(): boolean {
    return this.welcomed && this.conn !== undefined && !this.conn.closed;
  }

  connect(): void {
    if (this.closedForGood) return;
    dial(this.address.host, this.address.port, this, this.options.limits).then(
      (conn) => {
        this.conn = conn;
        const hello: Hello = { role: "worker", version: PROTOCOL_VERSION, nodeId: this.options.nodeId, slots: this.options.slots, tags: this.options.tags };
        writeControl(conn.writer, Kind.HELLO, hello);
        conn.queueFlush();
      },
      (err: Error) => this.retry(`cannot connect: ${err.message}`),
    );
  }

  close(): void {
    this.closedForGood = true;
    clearTimeout(this.retryTimer);
    this.conn?.close("worker stopping");
  }

  /** Appends one message; false when the link is down or the coordinator reads too slowly. */
  sendRaw(kind: number, body: Uint8Array): boolean {
    const conn = this.conn;
    if (!this.welcomed || conn === undefined || !conn.writable()) return false;
    writeRaw(conn.writer, kind, body);
    return true;
  }

  sendControl(kind: number, value: unknown): void {
    const conn = this.conn;
    if (!this.welcomed || conn === undefined || !conn.writable()) return;
    writeControl(conn.writer, kind, value);
    conn.queueFlush();
  }

  flushSoon(): void {
    this.conn?.queueFlush();
  }

  onMessage(_conn: Connection, kind: number, r: Reader): void {
    switch (kind) {
      case Kind.ASSIGN:
        this.events.onAssign(r.bytes.subarray(r.pos, r.end));
        return;
      case Kind.WELCOME: {
        const welcome = readControl<Welcome>(r);
        this.shard = Number(welcome.shard);
        this.epoch = Number(welcome.epoch);
        this.welcomed = true;
        this.failures = 0;
        this.log.info("connected", { coordinator: `${this.address.host}:${this.address.port}`, shard: this.shard, epoch: this.epoch });
        this.events.onUp(this);
        return;
      }
      case Kind.ERROR: {
        const e = readControl<ErrorMessage>(r);
        this.log.warn("coordinator error", { coordinator: `${this.address.host}:${this.address.port}`, code: e.code, message: e.message });
        return;
      }
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from a coordinator`);
    }
  }

  onReadEnd(): void {
    this.events.onAssignBatchEnd();
  }

  onClose(_conn: Connection, reason: string): void {
    const wasUp = this.welcomed;
    this.welcomed = false;
    this.conn = undefined;
    if (wasUp) this.events.onDown(this);
    this.retry(reason);
  }

  private retry(reason: string): void {
    if (this.closedForGood) return;
    const delayMs = backoffDelayMs(this.failures++, this.options.reconnectMinMs, this.options.reconnectMaxMs, Math.random());
    const level = this.failures <= 1 || this.failures % 20 === 0 ? "warn" : "debug";
    this.log[level]("coordinator link down", { coordinator: `${this.address.host}:${this.address.port}`, reason, retryInMs: delayMs, failures: this.failures });
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }
}
