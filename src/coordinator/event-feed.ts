// A primary's task events for subscribers (SUBSCRIBE from SDKs and routers):
// recorded into a bounded ring as the scheduler reports them (core/event-ring.ts),
// delivered once their log entries are committed, in batches, to each
// subscription from its own position, only while its connection keeps up. A
// subscriber that falls behind the ring, or resumes from another primary's
// term, gets a gap event saying so, never a silent skip. Runtime only, like
// progress: a new primary starts a new term (subscribers resume with a gap).

import { EventKind, EventRing, type EventKindCode, type RecordedEvent } from "../core/event-ring.ts";
import type { Ready } from "../core/scheduler-types.ts";
import type { Task } from "../core/task.ts";
import type { Connection } from "../net/connection.ts";
import { writeControl } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  checkSubscribe, EVENT_ERROR_CHARS_MAX, EVENT_OUTPUT_BYTES_MAX, EVENTS_BATCH_BYTES_MAX, EVENTS_BATCH_MAX, filterAdmits, TASK_EVENT_KINDS,
  type EventBatch, type EventFilter, type Subscribe, type TaskEvent,
} from "../protocol/events.ts";
import { Kind } from "../protocol/messages.ts";
import { splitAttemptError } from "./request-shapes.ts";

/** Events a primary holds for subscribers to resume from (a reconnect within this many loses none). */
export const EVENT_RING_EVENTS = 65_536;
/** A subscriber's connection this far behind gets no more events until it drains (it may fall behind the ring: a gap). */
export const SUBSCRIBER_BACKLOG_BYTES_MAX = 1024 * 1024;
/** Subscriptions one connection may hold (a router holds one per client subscription). */
export const SUBSCRIPTIONS_PER_CONNECTION_MAX = 4096;
/** A subscription whose filter passed events over hears its new position at most this often. */
const POSITION_EVERY_MS = 1000;

interface Subscription {
  conn: Connection;
  requestId: number;
  filter: EventFilter;
  /** The next seq to look at. */
  next: number;
  /** A gap to report before the next events. */
  gap: string | undefined;
  positionSentAt: number;
}

export class EventFeed {
  private ring: EventRing | undefined;
  private readonly subs: Subscription[] = [];
  private committedIndex = 0;
  private readonly scratch: RecordedEvent = { seq: 0, kind: EventKind.COMPLETED, taskId: 0, type: "", tags: [], output: undefined, attempt: 0, at: 0, logIndex: 0, error: undefined, progress: 0 };

  constructor(
    private readonly shard: number,
    private readonly capacity = EVENT_RING_EVENTS,
  ) {}

  get subscriptions(): number {
    return this.subs.length;
  }

  /** Promoted: a new term (random, so no position from another primary or run matches it). */
  lead(term: number): void {
    this.ring = new EventRing(term, this.capacity, EVENT_OUTPUT_BYTES_MAX);
  }

  /** Stepped down: every subscription ends with E_NOT_PRIMARY; its router or SDK resubscribes at the new primary. */
  follow(message: string): void {
    this.ring = undefined;
    for (const sub of this.subs.splice(0)) {
      sub.conn.idle.endWait();
      sub.conn.sendError(sub.requestId, "E_NOT_PRIMARY", message);
    }
  }

  /** What the scheduler just reported: failed attempts, then tasks that ended (logIndex: the last entry appended). */
  recordReady(ready: Ready, at: number, logIndex: number): void {
    const ring = this.ring;
    if (ring === undefined) return;
    for (const task of ready.retried) ring.record(EventKind.FAILED, task, at, logIndex, task.errors.at(-1));
    for (const task of ready.finished) {
      const kind = task.state === "completed" ? EventKind.COMPLETED : task.state === "cancelled" ? EventKind.CANCELLED : EventKind.DEAD;
      ring.record(kind, task, at, logIndex, kind === EventKind.DEAD ? task.errors.at(-1) : undefined);
    }
  }

  progress(task: Task, progress: number, at: number, logIndex: number): void {
    this.ring?.record(EventKind.PROGRESS, task, at, logIndex, undefined, progress);
  }

  /** SUBSCRIBE or UNSUBSCRIBE from `conn`. */
  message(conn: Connection, kind: number, q: Record<string, unknown>, now: number): void {
    if (kind === Kind.UNSUBSCRIBE) return this.remove((s) => s.conn === conn && s.requestId === Number(q.requestId));
    let sub: Subscribe;
    try {
      sub = checkSubscribe(q);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return conn.sendError(Number(q.requestId) || 0, err.code, err.message);
    }
    const ring = this.ring;
    if (ring === undefined) return conn.sendError(sub.requestId, "E_NOT_PRIMARY", `not the primary of shard ${this.shard}: subscribe there`);
    if (this.subs.filter((s) => s.conn === conn).length >= SUBSCRIPTIONS_PER_CONNECTION_MAX) {
      return conn.sendError(sub.requestId, "E_TOO_LARGE", `a connection holds at most ${SUBSCRIPTIONS_PER_CONNECTION_MAX} subscriptions`);
    }
    this.remove((s) => s.conn === conn && s.requestId === sub.requestId); // the same id again replaces it
    const start = this.startOf(sub, ring);
    if (typeof start === "string") return conn.sendError(sub.requestId, "E_BAD_REQUEST", start);
    const s: Subscription = { conn, requestId: sub.requestId, filter: sub.filter, next: start.next, gap: start.gap, positionSentAt: -Infinity };
    this.subs.push(s);
    conn.idle.startWait(); // a subscriber is waiting for events, not idle
    this.deliver(s, ring, now, true); // its starting position (and a gap) at once
  }

  /** Where a subscription starts, and why events before it may be missing; a string: the position is impossible. */
  private startOf(sub: Subscribe, ring: EventRing): { next: number; gap: string | undefined } | string {
    if (sub.after === undefined) return { next: ring.head + 1, gap: undefined }; // from now
    const at = sub.after.find((p) => p.shard === this.shard);
    const held = `this primary (term ${ring.term}) holds events from seq ${ring.first}`;
    if (at === undefined) return { next: ring.first, gap: ring.first > 1 ? `no position for shard ${this.shard}; ${held}` : undefined };
    if (at.term !== ring.term) return { next: ring.first, gap: `shard ${this.shard} has a new primary since term ${at.term}; ${held}` };
    if (at.seq > ring.head) return `seq ${at.seq} of term ${at.term} is past the last event of shard ${this.shard} (${ring.head})`;
    if (at.seq + 1 < ring.first) return { next: ring.first, gap: `events ${at.seq + 1} to ${ring.first - 1} of shard ${this.shard} are no longer held; ${held}` };
    return { next: at.seq + 1, gap: undefined };
  }

  /** After each commit: every subscription gets what is committed past its position, while its connection keeps up. */
  committed(committedIndex: number, now: number): void {
    this.committedIndex = committedIndex;
    const ring = this.ring;
    if (ring === undefined || this.subs.length === 0) return;
    for (const sub of this.subs) this.deliver(sub, ring, now, false);
  }

  /** A connection closed: its subscriptions go. */
  closed(conn: Connection): void {
    this.remove((s) => s.conn === conn);
  }

  private remove(match: (s: Subscription) => boolean): void {
    for (let i = this.subs.length - 1; i >= 0; i--) {
      const sub = this.subs[i]!;
      if (!match(sub)) continue;
      this.subs.splice(i, 1);
      sub.conn.idle.endWait();
    }
  }

  private deliver(sub: Subscription, ring: EventRing, now: number, always: boolean): void {
    if (sub.conn.closed || sub.conn.backlogBytes > SUBSCRIBER_BACKLOG_BYTES_MAX) return;
    const events: TaskEvent[] = [];
    if (sub.next < ring.first) sub.gap ??= `the subscriber fell behind: events ${sub.next} to ${ring.first - 1} of shard ${this.shard} are no longer held`;
    if (sub.gap !== undefined) {
      sub.next = Math.max(sub.next, ring.first);
      events.push({ kind: "gap", shard: this.shard, term: ring.term, seq: sub.next - 1, at: now, taskId: 0, reason: sub.gap });
      sub.gap = undefined;
    }
    const from = sub.next;
    let bytes = 0;
    while (sub.next <= ring.head && events.length < EVENTS_BATCH_MAX && bytes < EVENTS_BATCH_BYTES_MAX && ring.logIndexOf(sub.next) <= this.committedIndex) {
      const e = ring.read(sub.next++, this.scratch);
      const kind = TASK_EVENT_KINDS[e.kind as EventKindCode]!;
      if (!filterAdmits(sub.filter, kind, e.taskId, e.type, e.tags)) continue;
      const event = this.wire(e, ring.term);
      bytes += wireBytes(event);
      events.push(event);
    }
    const moved = sub.next > from;
    if (events.length === 0 && !always && !(moved && now - sub.positionSentAt >= POSITION_EVERY_MS)) return;
    const batch: EventBatch = { requestId: sub.requestId, shard: this.shard, term: ring.term, seq: sub.next - 1, events };
    writeControl(sub.conn.writer, Kind.EVENTS, batch);
    sub.conn.queueFlush();
    sub.positionSentAt = now;
  }

  private wire(e: RecordedEvent, term: number): TaskEvent {
    const event: TaskEvent = { kind: TASK_EVENT_KINDS[e.kind]!, shard: this.shard, term, seq: e.seq, at: e.at, taskId: e.taskId, type: e.type, attempt: e.attempt };
    if (e.tags.length > 0) event.tags = [...e.tags];
    if (e.error !== undefined) {
      const { code, error } = splitAttemptError(e.error);
      event.code = code;
      event.error = error.length > EVENT_ERROR_CHARS_MAX ? `${error.slice(0, EVENT_ERROR_CHARS_MAX)}…` : error;
    }
    if (e.kind === EventKind.PROGRESS) event.progress = e.progress;
    if (e.output !== undefined) event.output = e.output;
    return event;
  }
}

/** About what an event takes in msgpack: its strings and bytes, and a fixed part for the numbers and keys. */
function wireBytes(e: TaskEvent): number {
  let n = 128 + (e.type?.length ?? 0) + (e.error?.length ?? 0) + (e.reason?.length ?? 0) + (e.output?.length ?? 0);
  for (const tag of e.tags ?? []) n += tag.length + 2;
  return n;
}
