// A tiny HTTP server for /metrics (and /healthz) on coordinators and workers
// (`--metrics-port`); the router serves them on its API port instead.

import type { Logger } from "../cli/log.ts";
import { authorizeHttp, TokenTable } from "../net/auth.ts";
import { DEFAULT_NET_LIMITS } from "../net/connection.ts";
import { serveHttp, type HttpLimits, type HttpServer } from "../net/http-front.ts";
import { matchRoute, routeMissResponse, type Route } from "../net/http-routes.ts";
import type { ServerTls } from "../net/tls.ts";

export interface MetricsServerOptions {
  /** /metrics needs a token with the read role when the table has tokens (/healthz never does: probes). */
  tokens?: TokenTable;
  tls?: ServerTls;
  /** Connections and time-outs, as on the process's other ports. */
  limits?: HttpLimits;
}

const TEXT = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

export function metricsRoutes(render: () => string, options: MetricsServerOptions): readonly Route<Request>[] {
  const tokens = options.tokens ?? TokenTable.OPEN;
  return [
    ["/metrics", {
      GET: (_p, req) => {
        const refused = authorizeHttp(tokens, req.headers.get("authorization"), "read");
        if (refused) return Response.json({ error: { code: "E_UNAUTHORIZED", message: refused.message } }, { status: refused.status, headers: { "www-authenticate": "Bearer" } });
        return new Response(render(), { headers: TEXT });
      },
    }],
    ["/healthz", { GET: () => Response.json({ status: "ok" }) }],
  ];
}

export function serveMetrics(host: string, port: number, render: () => string, log: Logger, options: MetricsServerOptions = {}): HttpServer {
  const routes = metricsRoutes(render, options);
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
