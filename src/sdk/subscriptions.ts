// The event subscriptions open on one connection (SchedulerClient): each gets
// the EVENTS batches of its request id, and hears once when it ends (an ERROR
// for its id, or the connection closing). Resuming is the caller's business
// (events.ts): a subscription never outlives its connection.

import type { SchedulerError } from "./errors.ts";
import type { EventBatch } from "../protocol/events.ts";

export interface SubscriptionHandlers {
  onBatch(batch: EventBatch): void;
  /** Called once: the server ended it (its code says why) or the connection closed. Not called after unsubscribe(). */
  onEnd(error: SchedulerError): void;
}

/** A subscription on one connection. */
export interface Subscription {
  readonly requestId: number;
  /** Ends it here and tells the server (no answer comes). */
  unsubscribe(): void;
}

export class Subscriptions {
  private readonly byId = new Map<number, SubscriptionHandlers>();

  get size(): number {
    return this.byId.size;
  }

  add(requestId: number, handlers: SubscriptionHandlers): void {
    this.byId.set(requestId, handlers);
  }

  has(requestId: number): boolean {
    return this.byId.has(requestId);
  }

  batch(batch: EventBatch): void {
    this.byId.get(batch.requestId)?.onBatch(batch);
  }

  /** Its end, told once; false when no subscription has that id. */
  ended(requestId: number, error: SchedulerError): boolean {
    const handlers = this.byId.get(requestId);
    if (handlers === undefined) return false;
    this.byId.delete(requestId);
    handlers.onEnd(error);
    return true;
  }

  remove(requestId: number): void {
    this.byId.delete(requestId);
  }

  /** The connection closed: every subscription ends with this error. */
  endAll(error: SchedulerError): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    for (const handlers of all) handlers.onEnd(error);
  }
}
