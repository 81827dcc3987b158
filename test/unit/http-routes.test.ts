// The route table of the HTTP ports: unknown paths 404, known paths with
// another method 405 with Allow, and the metrics port's own table.

import { expect, test } from "bun:test";
import { metricsRoutes } from "../../src/metrics/metrics-server.ts";
import { matchRoute, routeMissResponse, type Route } from "../../src/net/http-routes.ts";

const ok = () => new Response("ok");
const ROUTES: readonly Route<null>[] = [
  ["/v1/tasks", { POST: ok }],
  ["/v1/tasks/:id", { GET: ok, DELETE: ok }],
  ["/v1/dlq/:id/requeue", { POST: ok }],
];

test("a path and method that fit find the handler and the path's parameters", () => {
  const m = matchRoute(ROUTES, "DELETE", "/v1/tasks/42");
  expect(m.kind).toBe("found");
  if (m.kind === "found") expect(m.params).toEqual({ id: "42" });
  expect(matchRoute(ROUTES, "POST", "/v1/dlq/7/requeue/").kind).toBe("found");
});

test("a known path with another method is 405 with the allowed methods; an unknown path 404", async () => {
  expect(matchRoute(ROUTES, "PUT", "/v1/tasks/42")).toEqual({ kind: "wrong-method", allow: "GET, DELETE" });
  expect(matchRoute(ROUTES, "GET", "/v1/tasks")).toEqual({ kind: "wrong-method", allow: "POST" });
  expect(matchRoute(ROUTES, "GET", "/v1/tasks/42/nope")).toEqual({ kind: "none" });
  expect(matchRoute(ROUTES, "GET", "/v1")).toEqual({ kind: "none" });
  const r = routeMissResponse({ kind: "wrong-method", allow: "POST" }, "GET", "/v1/tasks");
  expect(r.status).toBe(405);
  expect(r.headers.get("allow")).toBe("POST");
  expect(((await r.json()) as { error: { code: string } }).error.code).toBe("E_METHOD_NOT_ALLOWED");
  expect(routeMissResponse({ kind: "none" }, "GET", "/x").status).toBe(404);
});

test("the metrics port: GET only on /metrics, /healthz, /readyz; /readyz says 503 and why when not ready", async () => {
  const routes = metricsRoutes(() => "", { ready: () => ({ ready: false, reason: "no coordinator link is up" }) });
  for (const path of ["/metrics", "/healthz", "/readyz"]) expect(matchRoute(routes, "POST", path)).toEqual({ kind: "wrong-method", allow: "GET" });
  expect(matchRoute(routes, "GET", "/nope").kind).toBe("none");
  const m = matchRoute(routes, "GET", "/readyz");
  if (m.kind !== "found") throw new Error("no /readyz route");
  const r = await m.handler(m.params, new Request("http://x/readyz"));
  expect(r.status).toBe(503);
  expect(await r.json()).toEqual({ ready: false, reason: "no coordinator link is up" });
});

test("a method named like an Object property (constructor, toString) finds no handler: 405, not Object's function", () => {
  const routes: Route<unknown>[] = [["/v1/tasks", { GET: () => new Response("ok") }]];
  for (const method of ["constructor", "toString", "hasOwnProperty", "__proto__"]) {
    expect(matchRoute(routes, method, "/v1/tasks")).toEqual({ kind: "wrong-method", allow: "GET" });
  }
});
