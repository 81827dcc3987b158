// A tiny HTTP server for /metrics (and /healthz) on coordinators and workers
// (`--metrics-port`); the router serves them on its API port instead.

import type { Logger } from "../cli/log.ts";
import { authorizeHttp, TokenTable } from "../net/auth.ts";
import { DEFAULT_NET_LIMITS } from "../net/connection.ts";
import { serveHttp, type HttpLimits, type HttpServer } from "../net/http-front.ts";
import type { ServerTls } from "../net/tls.ts";

export interface MetricsServerOptions {
  /** /metrics needs a token with the read role when the table has tokens (/healthz never does: probes). */
  tokens?: TokenTable;
  tls?: ServerTls;
  /** Connections and time-outs, as on the process's other ports. */
  limits?: HttpLimits;
}

export function serveMetrics(host: string, port: number, render: () => string, log: Logger, options: MetricsServerOptions = {}): HttpServer {
  const tokens = options.tokens ?? TokenTable.OPEN;
  const server = serveHttp({
    host,
    port,
    tls: options.tls,
    limits: options.limits ?? DEFAULT_NET_LIMITS,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === "GET" && path === "/metrics") {
        const refused = authorizeHttp(tokens, req.headers.get("authorization"), "read");
        if (refused) return Response.json({ error: { code: "E_UNAUTHORIZED", message: refused.message } }, { status: refused.status, headers: { "www-authenticate": "Bearer" } });
        return new Response(render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      }
      if (req.method === "GET" && path === "/healthz") return Response.json({ status: "ok" });
      return Response.json({ error: { code: "E_NOT_FOUND", message: `no route ${req.method} ${path}` } }, { status: 404 });
    },
  });
  log.info("metrics listening", { host, port: server.port });
  return server;
}
