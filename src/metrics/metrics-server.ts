// A tiny HTTP server for /metrics (and /healthz) on coordinators and workers
// (`--metrics-port`); the router serves them on its API port instead.

import type { Logger } from "../cli/log.ts";

export function serveMetrics(host: string, port: number, render: () => string, log: Logger): { port: number; stop(): void } {
  const server = Bun.serve({
    hostname: host,
    port,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === "GET" && path === "/metrics") {
        return new Response(render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      }
      if (req.method === "GET" && path === "/healthz") return Response.json({ status: "ok" });
      return Response.json({ error: { code: "E_NOT_FOUND", message: `no route ${req.method} ${path}` } }, { status: 404 });
    },
  });
  log.info("metrics listening", { host, port: server.port });
  return { port: server.port ?? 0, stop: () => void server.stop(true) };
}
