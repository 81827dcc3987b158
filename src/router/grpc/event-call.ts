// The gRPC Events call: task events of every shard as a server stream, through
// the same SDK subscription GET /v1/events uses (so the router's relay does the
// fan-out and resumption). Each Event carries `id`, the stream's whole position
// after it (protocol/events.ts): give it back as `after` to resume there, with
// a `gap` event when a primary no longer holds what was missed. A reader that
// lets EVENTS_BUFFERED_MAX events pile up in the call's buffer is ended with
// E_SLOW_READER (UNAVAILABLE) and resumes from its last id.

import type { ServerWritableStream, ServiceError } from "@grpc/grpc-js";
import { ProtocolError } from "../../protocol/errors.ts";
import { checkFilter, EventCursor, type EventBatch, type EventFilter, type TaskEvent } from "../../protocol/events.ts";
import type { SchedulerClient } from "../../sdk/client.ts";
import { HttpError, jsonResult } from "../task-request.ts";
import { grpcError } from "./status.ts";

/** Events a call may hold for a slow reader before it is ended. */
export const EVENTS_BUFFERED_MAX = 10_000;

type Request = Record<string, unknown>;

/** The request's filter and resume position; throws HttpError (INVALID_ARGUMENT) when malformed. */
export function eventsRequest(request: Request): { filter: EventFilter; after: string | undefined } {
  const list = (name: string) => {
    const values = (request[name] as unknown[] | undefined) ?? [];
    return values.length === 0 ? undefined : values;
  };
  try {
    const filter = checkFilter({
      kinds: list("kinds") as EventFilter["kinds"], types: list("types") as string[] | undefined, tags: list("tags") as string[] | undefined,
      taskIds: list("taskIds")?.map(Number),
    });
    const after = typeof request.after === "string" && request.after !== "" ? request.after : undefined;
    if (after !== undefined) EventCursor.parse(after);
    return { filter, after };
  } catch (err) {
    if (err instanceof ProtocolError) throw new HttpError(400, err.code, err.message);
    throw err;
  }
}

/** The Event message of one task event; `id` is the position after it. */
function eventMessage(e: TaskEvent, id: string): Record<string, unknown> {
  return {
    id, kind: e.kind, shard: e.shard, term: e.term, seq: e.seq, at: e.at, taskId: e.taskId, type: e.type ?? "", tags: e.tags ?? [],
    attempt: e.attempt ?? 0, resultJson: e.output === undefined ? "" : JSON.stringify(jsonResult(e.output)),
    code: e.code ?? "", error: e.error ?? "", progress: e.progress ?? 0, reason: e.reason ?? "",
  };
}

/**
 * Streams events to `call` until the caller cancels or the subscription ends
 * (its code sent as the call's status); `onStop` is called once when it stops.
 */
export function streamEvents(call: ServerWritableStream<Request, unknown>, client: SchedulerClient, filter: EventFilter, after: string | undefined, onStop: () => void): void {
  // grpc-js says "cancelled" once: a caller gone while the loopback client was connecting is seen here or never.
  if (call.cancelled) return onStop();
  const cursor = after === undefined ? new EventCursor() : EventCursor.parse(after);
  let open = true;
  const stop = () => {
    if (!open) return false;
    open = false;
    subscription.unsubscribe();
    onStop();
    return true;
  };
  const end = (error: Partial<ServiceError>) => {
    if (stop()) call.emit("error", error);
  };
  const onBatch = (batch: EventBatch) => {
    for (const e of batch.events) {
      if (!open) return;
      if (!cursor.isNew(e)) continue;
      cursor.move(e);
      call.write(eventMessage(e, cursor.format()));
      if (call.writableLength > EVENTS_BUFFERED_MAX) {
        return end(grpcError("E_SLOW_READER", `the stream fell ${EVENTS_BUFFERED_MAX} events behind; call again with after = your last event id`));
      }
    }
    if (cursor.isNew(batch)) cursor.move(batch);
  };
  const subscription = client.subscribe(filter, after === undefined ? undefined : cursor.positions(), {
    onBatch,
    onEnd: (error) => end(grpcError(error.code, error.detail)),
  });
  call.on("cancelled", stop);
}
