// GET /v1/events: task events as Server-Sent Events, through the same SDK
// subscription a binary client makes (so the router's relay does the fan-out
// and resumption). Every event carries `id:`, the stream's whole position
// (protocol/events.ts); a message with only an `id:` line moves that position
// past events the filter left out. A reconnecting EventSource sends it back as
// Last-Event-ID (or give ?after=), and the stream resumes after it, with a
// `gap` event when a primary no longer holds what was missed. A reader too
// slow for SSE_BUFFER_BYTES_MAX is sent an `error` event and dropped; it
// resumes from its last id.

import { ProtocolError } from "../protocol/errors.ts";
import { checkFilter, EventCursor, type EventBatch, type EventFilter, type TaskEvent } from "../protocol/events.ts";
import type { SchedulerClient } from "../sdk/client.ts";
import type { SchedulerError } from "../sdk/errors.ts";

/** Bytes an SSE stream may hold for a slow reader before it is dropped. */
export const SSE_BUFFER_BYTES_MAX = 1024 * 1024;
/** A comment this often (or twice per --client-idle-timeout-ms, if shorter) keeps proxies and the port's idle time-out from closing a quiet stream. */
export const SSE_KEEPALIVE_MS = 15_000;
/** What an EventSource waits before reconnecting (the `retry:` field). */
const SSE_RETRY_MS = 1000;

const utf8 = new TextEncoder();

/** The query's filter: kinds, types, tags and ids, each comma-separated. Throws ProtocolError (400) when malformed. */
export function filterFromQuery(url: URL): EventFilter {
  const list = (name: string) => {
    const text = url.searchParams.get(name);
    return text === null ? undefined : text.split(",").filter((s) => s !== "");
  };
  const stray = [...url.searchParams.keys()].find((k) => !["kinds", "types", "tags", "ids", "after"].includes(k));
  if (stray !== undefined) throw new ProtocolError("E_BAD_REQUEST", `query parameter ${stray} is not known (known: kinds, types, tags, ids, after)`);
  const ids = list("ids");
  const taskIds = ids?.map((id) => (/^\d+$/.test(id) ? Number(id) : NaN));
  return checkFilter({ kinds: list("kinds"), types: list("types"), tags: list("tags"), taskIds });
}

/** An event as the stream's JSON: the result decoded, no raw bytes. */
export type JsonEvent = Omit<TaskEvent, "output"> & { result?: unknown };

/**
 * The SSE response for one subscription. `after`: the Last-Event-ID header or ?after=
 * (undefined: from now). `toJson` turns an event's output into its result.
 */
export interface EventStreamOptions {
  keepaliveMs?: number;
  /** The request's signal: the stream stops when the client goes away, even before a read cancels it. */
  signal?: AbortSignal;
  /** Called once when the stream stops, however it stops. */
  onStop?: () => void;
}

export function eventStream(client: SchedulerClient, filter: EventFilter, after: string | undefined, toJson: (e: TaskEvent) => JsonEvent, options: EventStreamOptions = {}): Response {
  const { keepaliveMs = SSE_KEEPALIVE_MS, signal, onStop } = options;
  const cursor = after === undefined ? new EventCursor() : EventCursor.parse(after);
  let stop = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const write = (text: string): boolean => {
        if (!open) return false;
        controller.enqueue(utf8.encode(text));
        if ((controller.desiredSize ?? 0) > 0) return true;
        end("E_SLOW_READER", `the stream fell ${SSE_BUFFER_BYTES_MAX} bytes behind; reconnect with your last event id`);
        return false;
      };
      const end = (code: string, message: string) => {
        if (!open) return;
        controller.enqueue(utf8.encode(`event: error\ndata: ${JSON.stringify({ code, message })}\n\n`));
        stop();
        controller.close();
      };
      let lastId = after ?? "";
      const onBatch = (batch: EventBatch) => {
        for (const e of batch.events) {
          if (!cursor.isNew(e)) continue;
          cursor.move(e);
          lastId = cursor.format();
          if (!write(`id: ${lastId}\nevent: ${e.kind}\ndata: ${JSON.stringify(toJson(e))}\n\n`)) return;
        }
        if (cursor.isNew(batch)) cursor.move(batch);
        if (cursor.format() === lastId) return;
        lastId = cursor.format();
        write(`id: ${lastId}\n\n`); // the position moved (past filtered events, or a shard's start): no event, a new id
      };
      const subscription = client.subscribe(filter, after === undefined ? undefined : cursor.positions(), {
        onBatch,
        onEnd: (error: SchedulerError) => end(error.code, error.detail),
      });
      const keepalive = setInterval(() => write(": keepalive\n\n"), keepaliveMs);
      let stopped = false;
      stop = () => {
        open = false;
        if (stopped) return;
        stopped = true;
        clearInterval(keepalive);
        subscription.unsubscribe();
        signal?.removeEventListener("abort", stop);
        onStop?.();
      };
      // A client that goes away may leave the stream unread and never cancelled: its request's signal says so.
      if (signal?.aborted) return stop();
      signal?.addEventListener("abort", stop);
      write(`retry: ${SSE_RETRY_MS}\n\n`);
    },
    cancel() {
      stop();
    },
  }, { highWaterMark: SSE_BUFFER_BYTES_MAX, size: (chunk) => chunk?.byteLength ?? 0 });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
  });
}
