// Task events for SDK users (BullMQ's QueueEvents): `scheduler.events(filter)`
// streams completed, failed, dead, cancelled and progress events of every shard,
// as an async iterable and through on()/off() listeners. It resumes by itself:
// when its connection is lost (a router killed, a failover) it subscribes again,
// on whichever server the client reaches next, after the last event it handed
// out, so no event is lost between the two subscriptions; when a primary no
// longer holds what was missed, a `gap` event says so instead. Each event's `id`
// is the position after it (protocol/events.ts): give it as `after` to resume a
// later stream from there.

import { decodeResult } from "./client.ts";
import { SchedulerError } from "./errors.ts";
import type { Subscription, SubscriptionHandlers } from "./subscriptions.ts";
import { backoffDelayMs } from "../net/backoff.ts";
import { checkFilter, EventCursor, type EventBatch, type EventFilter, type ShardPosition, type TaskEvent, type TaskEventKind } from "../protocol/events.ts";

export type { EventFilter, TaskEventKind } from "../protocol/events.ts";

/** One event as the SDK hands it out. */
export interface SchedulerEvent extends Omit<TaskEvent, "output"> {
  /** The position after this event: resume a stream from here with `after: id`. */
  id: string;
  /** completed: the handler's result, decoded (absent when it was too big to carry: fetch it by task id). */
  result?: unknown;
}

export interface EventsOptions extends EventFilter {
  /** An event id to resume after (a previous stream's `lastEventId`); absent: from now. */
  after?: string;
}

/** Events held for an async iterator that reads slower than they come; past it the stream pauses (and resumes, losing nothing). */
export const EVENTS_QUEUED_MAX = 10_000;
const RESUBSCRIBE_MIN_MS = 100;
const RESUBSCRIBE_MAX_MS = 5_000;

type Listener = (event: SchedulerEvent) => void;
type ErrorListener = (error: SchedulerError) => void;
/** What a stream needs of its client: a subscription on whatever connection is live now. */
export type Subscribe = (filter: EventFilter, after: ShardPosition[] | undefined, handlers: SubscriptionHandlers) => Promise<Subscription>;

/** Codes after which subscribing again cannot help. */
const FATAL = new Set(["E_BAD_REQUEST", "E_UNAUTHORIZED", "E_TOO_LARGE", "E_SHUTTING_DOWN"]);

export class TaskEvents implements AsyncIterable<SchedulerEvent> {
  private readonly filter: EventFilter;
  private readonly cursor: EventCursor;
  /** Position sent when subscribing: none for a fresh stream until it has heard from the server. */
  private positioned: boolean;
  /** The subscription being opened or open now; its handlers act only while it is current. */
  private attempt: { subscription: Subscription | undefined } | undefined;
  private readonly listeners = new Map<string, Set<Listener | ErrorListener>>();
  private readonly queue: SchedulerEvent[] = [];
  private waiter: { resolve(r: IteratorResult<SchedulerEvent>): void; reject(e: Error): void } | undefined;
  private iterating = false;
  private paused = false;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private failure: SchedulerError | undefined;

  constructor(
    private readonly subscribe: Subscribe,
    options: EventsOptions = {},
    /** Told once when the stream ends (closed, or failed for good): its client forgets it. */
    private readonly onClosed: () => void = () => {},
  ) {
    const { after, ...filter } = options;
    this.positioned = after !== undefined;
    try {
      this.filter = checkFilter(filter);
      this.cursor = after === undefined ? new EventCursor() : EventCursor.parse(after);
    } catch (err) {
      // A bad filter or id fails the stream (its iterator rejects, "error" listeners hear it), never the call.
      this.filter = {};
      this.cursor = new EventCursor();
      const message = (err as Error).message;
      queueMicrotask(() => this.ended(new SchedulerError("E_BAD_REQUEST", message)));
      return;
    }
    void this.open();
  }

  /** The id of the last event handed out (or position heard): resume a later stream after it. */
  get lastEventId(): string {
    return this.cursor.format();
  }

  /** Listens to one kind of event, every event ("event"), or the error that ended the stream ("error"). */
  on(kind: TaskEventKind | "gap" | "event", listener: Listener): this;
  on(kind: "error", listener: ErrorListener): this;
  on(kind: string, listener: Listener | ErrorListener): this {
    let set = this.listeners.get(kind);
    if (set === undefined) this.listeners.set(kind, (set = new Set()));
    set.add(listener);
    return this;
  }

  off(kind: string, listener: Listener | ErrorListener): this {
    this.listeners.get(kind)?.delete(listener);
    return this;
  }

  /** Stops the stream; an iterator waiting on it ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    clearTimeout(this.retryTimer);
    this.stopSubscription();
    this.waiter?.resolve({ value: undefined, done: true });
    this.waiter = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<SchedulerEvent> {
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<SchedulerEvent>> {
    const event = this.queue.shift();
    if (event !== undefined) {
      if (this.paused && this.queue.length <= EVENTS_QUEUED_MAX / 2) {
        this.paused = false;
        void this.open();
      }
      return Promise.resolve({ value: event, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private async open(): Promise<void> {
    if (this.closed || this.paused || this.attempt !== undefined) return;
    const after = this.positioned ? this.cursor.positions() : undefined;
    const attempt: { subscription: Subscription | undefined } = { subscription: undefined };
    this.attempt = attempt;
    const handlers: SubscriptionHandlers = {
      onBatch: (batch) => {
        if (this.attempt === attempt) this.onBatch(batch);
      },
      onEnd: (error) => {
        if (this.attempt !== attempt) return;
        this.attempt = undefined;
        this.ended(error);
      },
    };
    try {
      attempt.subscription = await this.subscribe(this.filter, after, handlers);
    } catch (err) {
      return handlers.onEnd(err instanceof SchedulerError ? err : new SchedulerError("E_UNAVAILABLE", String(err)));
    }
    if (this.attempt !== attempt) attempt.subscription.unsubscribe(); // closed or paused meanwhile
  }

  private stopSubscription(): void {
    this.attempt?.subscription?.unsubscribe();
    this.attempt = undefined;
  }

  private onBatch(batch: EventBatch): void {
    this.failures = 0;
    this.positioned = true; // from now on, a shard without a position resumes from its oldest event
    for (const e of batch.events) {
      if (!this.cursor.isNew(e)) continue; // heard already (a resubscription can overlap)
      if (this.iterating && this.queue.length >= EVENTS_QUEUED_MAX) return this.pause();
      this.cursor.move(e);
      this.emit(this.toEvent(e));
    }
    if (this.cursor.isNew(batch)) this.cursor.move(batch);
  }

  /** The reader is far behind: stop the subscription at the last event queued; next() resumes it. */
  private pause(): void {
    this.paused = true;
    this.stopSubscription();
  }

  private toEvent(e: TaskEvent): SchedulerEvent {
    const { output, ...rest } = e;
    const event: SchedulerEvent = { ...rest, id: this.cursor.format() };
    if (output !== undefined) event.result = decodeResult(output);
    return event;
  }

  private emit(event: SchedulerEvent): void {
    for (const kind of [event.kind, "event"]) for (const l of this.listeners.get(kind) ?? []) (l as Listener)(event);
    if (!this.iterating) return;
    if (this.waiter !== undefined) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.resolve({ value: event, done: false });
    } else {
      this.queue.push(event);
    }
  }

  /** The subscription ended: again after a backoff, unless it cannot help. */
  private ended(error: SchedulerError): void {
    if (this.closed || this.paused) return;
    if (FATAL.has(error.code)) {
      this.failure = error;
      for (const l of this.listeners.get("error") ?? []) (l as ErrorListener)(error);
      this.closed = true;
      this.onClosed();
      this.waiter?.reject(error);
      this.waiter = undefined;
      return;
    }
    const delay = backoffDelayMs(this.failures++, RESUBSCRIBE_MIN_MS, RESUBSCRIBE_MAX_MS, Math.random());
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }
}
