// A tiny HTTP server for /metrics (and /healthz) on coordinators and workers
// (`--metrics-port`); the router serves them on its API port instead.

import type { Logger } from "../cli/log.ts";
import { authorizeHttp, TokenTable } from "../net/auth.ts";
import type { ServerTls } from "../net/tls.ts";

export interface MetricsServerSecurity {
  /** /metrics needs a token with the read role when the table has tokens (/healthz never does: probes). */
  tokens?: TokenTable;
  tls?: ServerTls;
}

export function serveMetrics(host: string, port: number, render: () => string, log: Logger, security: MetricsServerSecurity = {}): { port: number; stop(): void } {
  const tokens = security.tokens ?? TokenTable.OPEN;
  const server = Bun.serve({
    hostname: host,
    port,
    tls: security.tls,
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
  return { port: server.port ?? 0, stop: () => void server.stop(true) };
}
