// A tiny HTTP server for /metrics, /healthz and /readyz on coordinators and
// workers (`--metrics-port`); the router serves them on its API port instead.

import type { Logger } from "../cli/log.ts";
import { authorizeHttp, TokenTable } from "../net/auth.ts";
import { DEFAULT_NET_LIMITS } from "../net/connection.ts";
import { serveHttp, type HttpLimits, type HttpServer } from "../net/http-front.ts";
import { matchRoute, routeMissResponse, type Route } from "../net/http-routes.ts";
import type { ServerTls } from "../net/tls.ts";
import { PROCESS_SAMPLER, processMetrics } from "./process-metrics.ts";

/** What /readyz answers: 200 when ready, else 503; `reason` says why in a few words. */
export interface Readiness {
  ready: boolean;
  reason: string;
  [detail: string]: unknown;
}

export interface MetricsServerOptions {
  /** /metrics needs a token with the read role when the table has tokens (/healthz and /readyz never do: probes). */
  tokens?: TokenTable;
  tls?: ServerTls;
  /** Connections and time-outs, as on the process's other ports. */
  limits?: HttpLimits;
  /** Absent: ready whenever the port answers. */
  ready?: () => Readiness;
  /** Labels of the process series (process kind, node id). */
  processLabels?: Record<string, string>;
}

const TEXT = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

export function metricsRoutes(render: () => string, options: MetricsServerOptions): readonly Route<Request>[] {
  const tokens = options.tokens ?? TokenTable.OPEN;
  const ready = options.ready ?? (() => ({ ready: true, reason: "serving" }));
  return [
    ["/metrics", {
      GET: (_p, req) => {
        const refused = authorizeHttp(tokens, req.headers.get("authorization"), "read");
        if (refused) return Response.json({ error: { code: "E_UNAUTHORIZED", message: refused.message } }, { status: refused.status, headers: { "www-authenticate": "Bearer" } });
        return new Response(render() + processMetrics(PROCESS_SAMPLER.sample(), options.processLabels ?? {}), { headers: TEXT });
      },
    }],
    ["/healthz", { GET: () => Response.json({ status: "ok" }) }],
    ["/readyz", {
      GET: () => {
        const r = ready();
        return Response.json(r, { status: r.ready ? 200 : 503 });
      },
    }],
  ];
}

export function serveMetrics(host: string, port: number, render: () => string, log: Logger, options: MetricsServerOptions = {}): HttpServer {
  const routes = metricsRoutes(render, options);
  // Started now so the lag gauge covers the time before the first scrape.
  PROCESS_SAMPLER.start();
  const server = serveHttp({
    host,
    port,
    tls: options.tls,
    limits: options.limits ?? DEFAULT_NET_LIMITS,
    fetch(req) {
      const path = new URL(req.url).pathname;
      const match = matchRoute(routes, req.method, path);
      if (match.kind !== "found") return routeMissResponse(match, req.method, path);
      return match.handler(match.params, req);
    },
  });
  log.info("metrics listening", { host, port: server.port });
  return server;
}
