// Task events through a router: each client subscription (SUBSCRIBE) becomes
// one subscription at every shard's primary, under the upstream link's own
// request ids; their EVENTS come back to the client under its id, each batch
// naming its shard and position. The relay keeps each client subscription's
// position per shard, so when a primary changes or a link drops it subscribes
// again from there (the new primary answers with the events, or a gap event
// when it does not hold them). A client that reads too slowly has its
// subscription ended (E_SLOW_READER) rather than held in memory: it resumes
// from its own position, with nothing lost that the primaries still hold.

import type { Connection } from "../net/connection.ts";
import type { CoordinatorLink } from "../net/coordinator-link.ts";
import { readControl, writeControl, type Reader } from "../protocol/codec.ts";
import { isErrorCode, ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import { checkEventBatch, checkSubscribe, EventCursor, type EventFilter, type ShardPosition } from "../protocol/events.ts";
import { Kind } from "../protocol/messages.ts";
import type { Routes } from "./routes.ts";

/**
 * Subscriptions one client connection may hold here. The router's own HTTP and
 * gRPC ports carry all their event streams on one loopback connection each, so
 * this is also how many streams each of those ports serves (they refuse more).
 */
export const SUBSCRIPTIONS_PER_CLIENT_MAX = 1024;
/** A client this far behind in reading has its subscriptions ended (it resumes from its position). */
export const SUBSCRIBER_BACKLOG_BYTES_MAX = 4 * 1024 * 1024;
/** After a shard's subscription ended (link lost, primary stepped down), the next try comes this much later at most. */
const RESUBSCRIBE_MS = 250;

export interface RelayUpstream {
  link: CoordinatorLink;
  routes: Routes;
}

/** What the relay needs of its router. */
export interface RelayPort {
  /** Shards known now. */
  shards(): readonly number[];
  primaryOf(shard: number): RelayUpstream | undefined;
}

interface Leg {
  upstream: RelayUpstream;
  id: number;
}

interface Downstream {
  conn: Connection;
  requestId: number;
  filter: EventFilter;
  /** Positions forwarded to the client so far, per shard. */
  cursor: EventCursor;
  /** The client gave a position (it resumes): a shard it does not name starts from its oldest event. */
  resumed: boolean;
  /** Shards subscribed to at least once: one with no position then starts again from its oldest event, not from now. */
  tried: Set<number>;
  legs: Map<number, Leg>;
  retry: ReturnType<typeof setTimeout> | undefined;
}

export class EventRelay {
  private readonly downstreams: Downstream[] = [];

  constructor(private readonly port: RelayPort) {}

  get size(): number {
    return this.downstreams.length;
  }

  /** SUBSCRIBE or UNSUBSCRIBE from a client. */
  message(conn: Connection, kind: number, r: Reader): void {
    const q = readControl<Record<string, unknown>>(r);
    if (kind === Kind.UNSUBSCRIBE) return this.end((d) => d.conn === conn && d.requestId === Number(q.requestId));
    let sub;
    try {
      sub = checkSubscribe(q);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return conn.sendError(Number(q.requestId) || 0, err.code, err.message);
    }
    this.end((d) => d.conn === conn && d.requestId === sub.requestId); // the same id again replaces it
    if (this.downstreams.filter((d) => d.conn === conn).length >= SUBSCRIPTIONS_PER_CLIENT_MAX) {
      return conn.sendError(sub.requestId, "E_TOO_LARGE", `a connection holds at most ${SUBSCRIPTIONS_PER_CLIENT_MAX} subscriptions`);
    }
    const cursor = new EventCursor();
    for (const p of sub.after ?? []) cursor.move(p);
    const d: Downstream = { conn, requestId: sub.requestId, filter: sub.filter, cursor, resumed: sub.after !== undefined, tried: new Set(), legs: new Map(), retry: undefined };
    this.downstreams.push(d);
    conn.idle.startWait(); // waiting for events: not idle
    for (const shard of this.port.shards()) this.open(d, shard);
  }

  /** A shard's primary is (re)chosen: subscriptions without a leg there get one. */
  primaryChanged(shard: number): void {
    for (const d of this.downstreams) if (!d.legs.has(shard)) this.open(d, shard);
  }

  clientClosed(conn: Connection): void {
    this.end((d) => d.conn === conn);
  }

  /** EVENTS from a coordinator: to the client subscription its request id belongs to. */
  fromUpstream(upstream: RelayUpstream, r: Reader): void {
    const body = readControl<Record<string, unknown>>(r);
    upstream.routes.get(Number(body.requestId))?.onEvents?.(body);
  }

  private open(d: Downstream, shard: number): void {
    const upstream = this.port.primaryOf(shard);
    if (upstream === undefined) return; // primaryChanged() opens it when one is chosen
    const at = d.cursor.positions().find((p) => p.shard === shard);
    const after: ShardPosition[] | undefined = at !== undefined ? [at] : d.resumed || d.tried.has(shard) ? [] : undefined;
    d.tried.add(shard);
    const leg: Leg = { upstream, id: 0 };
    leg.id = upstream.routes.open({
      client: undefined, clientRequestId: 0, awaitsDone: false,
      onControl: (kind, body) => this.legEnded(d, shard, leg, kind, body),
      onEvents: (body) => this.forward(d, body),
    });
    d.legs.set(shard, leg);
    if (!upstream.link.sendControl(Kind.SUBSCRIBE, { requestId: leg.id, filter: d.filter, ...(after === undefined ? {} : { after }) })) {
      this.legEnded(d, shard, leg, Kind.ERROR, { code: "E_UNAVAILABLE" });
    }
  }

  private forward(d: Downstream, body: Record<string, unknown>): void {
    let batch;
    try {
      batch = checkEventBatch(body);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return; // a coordinator's bad batch is dropped; the position stays where it was
    }
    if (d.conn.closed) return this.end((x) => x === d);
    if (d.conn.backlogBytes > SUBSCRIBER_BACKLOG_BYTES_MAX) {
      return this.end((x) => x === d, "E_SLOW_READER", `events went unread past ${SUBSCRIBER_BACKLOG_BYTES_MAX} bytes; resubscribe from your last event id`);
    }
    d.cursor.move(batch);
    writeControl(d.conn.writer, Kind.EVENTS, { ...batch, requestId: d.requestId });
    d.conn.queueFlush();
  }

  /** A shard's subscription ended (its link, or its primary's role): try again soon, unless the request itself is bad. */
  private legEnded(d: Downstream, shard: number, leg: Leg, kind: number, body: Record<string, unknown>): void {
    leg.upstream.routes.close(leg.id);
    if (d.legs.get(shard) !== leg) return;
    d.legs.delete(shard);
    if (kind === Kind.ERROR && (body.code === "E_BAD_REQUEST" || body.code === "E_TOO_LARGE")) {
      const code: ErrorCode = isErrorCode(body.code) ? body.code : "E_BAD_REQUEST";
      return this.end((x) => x === d, code, `shard ${shard}: ${String(body.message)}`);
    }
    d.retry ??= setTimeout(() => {
      d.retry = undefined;
      if (this.downstreams.includes(d)) for (const s of this.port.shards()) if (!d.legs.has(s)) this.open(d, s);
    }, RESUBSCRIBE_MS);
  }

  /** Ends the client subscriptions that match, upstream too; with a code, the client hears why. */
  private end(match: (d: Downstream) => boolean, code?: ErrorCode, message = ""): void {
    for (let i = this.downstreams.length - 1; i >= 0; i--) {
      const d = this.downstreams[i]!;
      if (!match(d)) continue;
      this.downstreams.splice(i, 1);
      clearTimeout(d.retry);
      d.conn.idle.endWait();
      for (const leg of d.legs.values()) {
        leg.upstream.routes.close(leg.id);
        leg.upstream.link.sendControl(Kind.UNSUBSCRIBE, { requestId: leg.id });
      }
      d.legs.clear();
      if (code !== undefined && !d.conn.closed) d.conn.sendError(d.requestId, code, message);
    }
  }
}
