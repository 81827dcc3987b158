// The router's own requests to one coordinator, as opposed to a client's that
// it forwards: the answer comes back to a callback, not to a connection. Apart
// from the routing because every fan-out (STATS, DLQ, key lookup, dependencies
// across shards) waits on these the same way: bounded by --stats-timeout-ms,
// and failing as an answer (never a rejection) when the link drops or is down.

import type { CoordinatorLink } from "../net/coordinator-link.ts";
import { Kind, type ClusterStats, type CoordinatorStats } from "../protocol/messages.ts";
import type { Routes } from "./routes.ts";
import type { ShardAnswer } from "./task-by-key.ts";

/** Per upstream link: the requests waiting on it, under its own request ids. */
export interface Upstream {
  link: CoordinatorLink;
  routes: Routes;
}

export const unavailable = (message: string): ShardAnswer => ({ kind: Kind.ERROR, body: { code: "E_UNAVAILABLE", message } });

/**
 * One request to one coordinator; resolves with the answer, or an ERROR when the link
 * drops or nothing comes back within `timeoutMs` (a stopped coordinator keeps its
 * socket open, so a dropped link alone would leave the asker waiting for ever).
 */
export function askUpstream(upstream: Upstream, kind: number, body: Record<string, unknown>, timeoutMs: number): Promise<ShardAnswer> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      upstream.routes.close(upstreamId);
      resolve(unavailable(`coordinator ${upstream.link.label} gave no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onControl = (answerKind: number, answer: Record<string, unknown>) => {
      clearTimeout(timer);
      resolve({ kind: answerKind, body: answer });
    };
    const upstreamId = upstream.routes.open({ client: undefined, clientRequestId: 0, awaitsDone: false, onControl });
    if (!upstream.link.sendControl(kind, { ...body, requestId: upstreamId })) {
      clearTimeout(timer);
      upstream.routes.close(upstreamId);
      resolve(unavailable(`coordinator ${upstream.link.label} is not reachable now`));
    }
  });
}

/** One coordinator's entry in a router's STATS: its own stats, or why it has none (down, silent, refused). */
export function statsOfUpstream(upstream: Upstream, timeoutMs: number): Promise<ClusterStats["coordinators"][number]> {
  const address = upstream.link.label;
  if (!upstream.link.up) return Promise.resolve({ address, reachable: false, error: upstream.link.lastError });
  return new Promise((resolve) => {
    const onControl = (kind: number, body: Record<string, unknown>) => {
      clearTimeout(timer);
      if (kind === Kind.STATS) resolve({ address, reachable: true, stats: body as unknown as CoordinatorStats });
      else resolve({ address, reachable: false, error: String(body.message) });
    };
    const upstreamId = upstream.routes.open({ client: undefined, clientRequestId: 0, awaitsDone: false, onControl });
    const timer = setTimeout(() => {
      upstream.routes.close(upstreamId);
      resolve({ address, reachable: false, error: `no stats within ${timeoutMs} ms` });
    }, timeoutMs);
    if (!upstream.link.sendControl(Kind.STATS_REQUEST, { requestId: upstreamId })) {
      clearTimeout(timer);
      upstream.routes.close(upstreamId);
      resolve({ address, reachable: false, error: "link not writable" });
    }
  });
}
