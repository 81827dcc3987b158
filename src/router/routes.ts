// The requests a router forwarded on one coordinator link and still waits on,
// under that link's own request ids. A client with a request here is waiting
// for an answer (a TASK_DONE may take as long as the task), so the idle sweep
// leaves it alone however quiet it is: every route starts a wait on its
// client's IdleClock, and every way a route ends, ends it.

import type { Connection } from "../net/connection.ts";
import { Kind, type BatchItemOutcome } from "../protocol/messages.ts";

/** A request forwarded upstream, waiting for its answer. */
export interface Route {
  /** Who gets the answer; undefined for the router's own requests (then onControl). */
  client: Connection | undefined;
  clientRequestId: number;
  /** SUBMIT with the notify flag: the route lives until TASK_DONE, not just SUBMITTED. */
  awaitsDone: boolean;
  /** The router's own control requests (STATS fan-out) take the answer here. */
  onControl?: (kind: number, body: Record<string, unknown>) => void;
  /** A subscription (event-relay.ts): its EVENTS come here, and it stays open until an ERROR or close. */
  onEvents?: (body: Record<string, unknown>) => void;
  /** The router's own SUBMIT_BATCH to this coordinator (batch-route.ts) takes its SUBMITTED_BATCH here. */
  onBatch?: (outcomes: BatchItemOutcome[]) => void;
}

export class Routes {
  private readonly byId = new Map<number, Route>();
  private nextRequestId = 1;

  get size(): number {
    return this.byId.size;
  }

  /** Remembers a request; returns the request id it goes upstream under. */
  open(route: Route): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    this.byId.set(id, route);
    route.client?.idle.startWait();
    return id;
  }

  get(id: number): Route | undefined {
    return this.byId.get(id);
  }

  /** The request was answered for good, or given up: returns its route (undefined if unknown). */
  close(id: number): Route | undefined {
    const route = this.byId.get(id);
    if (route === undefined) return undefined;
    this.byId.delete(id);
    route.client?.idle.endWait();
    return route;
  }

  /**
   * Ends every route (the link is lost or no longer primary) as E_UNAVAILABLE, one at a
   * time: a route that an earlier one's failure closed is skipped, so a batch part that
   * fails its tasks in the joined answer (batch-route.ts) keeps them from a second answer.
   */
  failAll(message: string): void {
    for (const id of [...this.byId.keys()]) {
      const route = this.close(id);
      if (route === undefined) continue;
      if (route.onControl !== undefined) route.onControl(Kind.ERROR, { code: "E_UNAVAILABLE", message });
      else if (route.client?.writable()) route.client.sendError(route.clientRequestId, "E_UNAVAILABLE", message);
    }
  }
}
