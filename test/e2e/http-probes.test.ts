// The HTTP ports beyond the task routes, from the compiled binaries: 405 with
// Allow for a wrong method, no wire-only fields in public JSON, the dead-letter
// queue shown and purged over REST with the roles of the TCP port, /readyz and
// process metrics on every process's metrics port.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

let dir: string;
let cluster: Cluster;
let api = "";
let routerPort = 0;
const metrics = { coordinator: "", worker: "", lonelyWorker: "" };
let lonelyRouterApi = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "http-probes-e2e-"));
  const tokensFile = join(dir, "tokens");
  writeTokensFile(tokensFile);
  cluster = new Cluster();
  const ports = { coordinator: freePort(), worker: freePort(), lonelyWorker: freePort(), http: freePort() };
  const coordinator = await cluster.coordinator(["--tokens", tokensFile, "--metrics-port", String(ports.coordinator)]);
  cluster.worker([coordinator.port], ["-w", "1", "--token", TOKENS.worker, "--metrics-port", String(ports.worker)]);
  // Nothing listens where this one dials: it never has a link up.
  cluster.worker([freePort()], ["-w", "1", "--metrics-port", String(ports.lonelyWorker)]);
  const router = await cluster.router([coordinator.port], ["--tokens", tokensFile, "--http-port", String(ports.http)]);
  routerPort = router.port;
  // A router whose only coordinator address has nothing behind it.
  const lonelyHttp = freePort();
  await cluster.router([freePort()], ["--http-port", String(lonelyHttp)]);
  lonelyRouterApi = `http://127.0.0.1:${lonelyHttp}`;
  api = `http://127.0.0.1:${ports.http}`;
  for (const name of ["coordinator", "worker", "lonelyWorker"] as const) metrics[name] = `http://127.0.0.1:${ports[name]}`;
  for (const base of [api, lonelyRouterApi, ...Object.values(metrics)]) await waitFor(`${base} to answer`, async () => ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok ? true : undefined));
});

afterAll(async () => {
  await cluster?.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const http = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(api + path, { ...init, headers: init.token ? { authorization: `Bearer ${init.token}` } : {} });

test("a wrong method on a known path is 405 with Allow; an unknown path stays 404", async () => {
  const cases: Array<[string, string, string]> = [
    ["/v1/tasks", "PUT", "GET, POST"],
    ["/v1/tasks/1", "POST", "GET, DELETE"],
    ["/v1/dlq/1/requeue", "GET", "POST"],
    ["/v1/cluster", "DELETE", "GET"],
    ["/healthz", "POST", "GET"],
  ];
  for (const [path, method, allow] of cases) {
    const r = await http(path, { method, token: TOKENS.admin });
    expect([path, r.status]).toEqual([path, 405]);
    expect(r.headers.get("allow")).toBe(allow);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("E_METHOD_NOT_ALLOWED");
  }
  expect((await http("/v1/nothing", { token: TOKENS.read })).status).toBe(404);
  for (const base of Object.values(metrics)) {
    for (const path of ["/metrics", "/healthz", "/readyz"]) {
      const r = await fetch(base + path, { method: "POST" });
      expect([base + path, r.status, r.headers.get("allow")]).toEqual([base + path, 405, "GET"]);
    }
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  }
});

test("/v1/cluster and the CLI's JSON carry no requestId", async () => {
  const text = await (await http("/v1/cluster", { token: TOKENS.read })).text();
  expect(text).toContain('"coordinators"');
  expect(text).not.toContain("requestId");
  const run = await cluster.client(["-p", String(routerPort), "--token", TOKENS.read, "stats"]);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('"coordinators"');
  expect(run.stdout).not.toContain("requestId");
});

async function deadLetter(): Promise<number> {
  // Held back past its deadline, it fails for good at once.
  const r = await http("/v1/tasks", { method: "POST", body: JSON.stringify({ type: "noop", delayMs: 200, deadlineMs: 1, maxAttempts: 1 }), token: TOKENS.submit });
  const { taskId } = (await r.json()) as { taskId: number };
  await waitFor("the task in the DLQ", async () => ((await http(`/v1/dlq/${taskId}`, { token: TOKENS.read })).status === 200 ? true : undefined));
  return taskId;
}

test("DLQ show and purge over REST: read may show, only admin may purge", async () => {
  const one = await deadLetter();
  const shown = (await (await http(`/v1/dlq/${one}`, { token: TOKENS.read })).json()) as { taskId: number; state: string; errors: Array<{ code: string; message: string }> };
  expect(shown).toMatchObject({ taskId: one, state: "failed" });
  expect(shown.errors[0]!.code).toBe("E_DEADLINE");
  expect(JSON.stringify(shown)).not.toContain("requestId");

  expect((await http(`/v1/dlq/${one}`, { method: "DELETE" })).status).toBe(401);
  expect((await http(`/v1/dlq/${one}`, { method: "DELETE", token: TOKENS.read })).status).toBe(403);
  expect((await http(`/v1/dlq/${one}`, { method: "DELETE", token: TOKENS.submit })).status).toBe(403);
  expect(await (await http(`/v1/dlq/${one}`, { method: "DELETE", token: TOKENS.admin })).json()).toEqual({ taskId: one, purged: true });
  expect((await http(`/v1/dlq/${one}`, { token: TOKENS.read })).status).toBe(404);
  expect((await http(`/v1/dlq/${one}`, { method: "DELETE", token: TOKENS.admin })).status).toBe(404);

  const ok = (await (await http("/v1/tasks", { method: "POST", body: '{"type":"noop"}', token: TOKENS.submit })).json()) as { taskId: number };
  await waitFor("the noop to complete", async () => ((await http(`/v1/tasks/${ok.taskId}/result`, { token: TOKENS.read })).status === 200 ? true : undefined));
  expect((await http(`/v1/dlq/${ok.taskId}`, { token: TOKENS.read })).status).toBe(404);

  await deadLetter();
  await deadLetter();
  expect((await http("/v1/dlq", { method: "DELETE", token: TOKENS.submit })).status).toBe(403);
  expect(await (await http("/v1/dlq", { method: "DELETE", token: TOKENS.admin })).json()).toEqual({ purged: 2 });
  expect(((await (await http("/v1/dlq", { token: TOKENS.read })).json()) as { total: number }).total).toBe(0);
});

test("/readyz on every process, 503 with a reason for a worker or router with no coordinator", async () => {
  const ready = async (url: string) => {
    const r = await fetch(url);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  expect(await ready(`${api}/readyz`)).toMatchObject({ status: 200, body: { ready: true, reason: "every shard has a primary" } });
  expect(await ready(`${metrics.coordinator}/readyz`)).toMatchObject({ status: 200, body: { ready: true, role: "primary" } });
  expect(await waitFor("the worker ready", async () => ((await ready(`${metrics.worker}/readyz`)).status === 200 ? true : undefined))).toBe(true);
  expect(await ready(`${lonelyRouterApi}/readyz`)).toMatchObject({ status: 503, body: { ready: false, reason: "no coordinator reached" } });
  expect(await ready(`${metrics.lonelyWorker}/readyz`)).toEqual({ status: 503, body: { ready: false, reason: "no coordinator link is up", linksUp: 0, links: 1 } });
});

test("process metrics on every metrics port", async () => {
  const scrapes: Array<[string, RequestInit]> = [
    [`${api}/metrics`, { headers: { authorization: `Bearer ${TOKENS.read}` } }],
    [`${metrics.coordinator}/metrics`, { headers: { authorization: `Bearer ${TOKENS.read}` } }],
    [`${metrics.worker}/metrics`, {}],
  ];
  for (const [url, init] of scrapes) {
    const text = await (await fetch(url, init)).text();
    for (const series of [
      "# TYPE taskscheduler_process_cpu_seconds_total counter", 'mode="user"', "taskscheduler_process_resident_memory_bytes{",
      "taskscheduler_process_heap_used_bytes{", "# TYPE taskscheduler_process_event_loop_lag_max_seconds gauge",
    ]) {
      expect([url, text.includes(series)]).toEqual([url, true]);
    }
  }
});
