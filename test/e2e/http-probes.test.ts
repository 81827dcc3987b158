// The HTTP ports beyond the task routes, from the compiled binaries: no
// wire-only fields in public JSON.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, freePort, waitFor } from "./harness.ts";

const TOKENS = {
  replica: "replica-secret-0123456789",
  worker: "worker-secret-01234567890",
  submit: "submit-secret-01234567890",
  read: "read-secret-0123456789012",
  admin: "admin-secret-012345678901",
};

let dir: string;
let cluster: Cluster;
let api = "";
let routerPort = 0;
const metrics = { coordinator: "", worker: "", lonelyWorker: "" };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "http-probes-e2e-"));
  const tokensFile = join(dir, "tokens");
  writeFileSync(tokensFile, Object.entries(TOKENS).map(([role, token]) => `${role} ${token}`).join("\n") + "\n");
  cluster = new Cluster();
  const ports = { coordinator: freePort(), worker: freePort(), lonelyWorker: freePort(), http: freePort() };
  const coordinator = await cluster.coordinator(["--tokens", tokensFile, "--metrics-port", String(ports.coordinator)]);
  cluster.worker([coordinator.port], ["-w", "1", "--token", TOKENS.worker, "--metrics-port", String(ports.worker)]);
  // Nothing listens where this one dials: it never has a link up.
  cluster.worker([freePort()], ["-w", "1", "--metrics-port", String(ports.lonelyWorker)]);
  const router = await cluster.router([coordinator.port], ["--tokens", tokensFile, "--http-port", String(ports.http)]);
  routerPort = router.port;
  api = `http://127.0.0.1:${ports.http}`;
  for (const name of ["coordinator", "worker", "lonelyWorker"] as const) metrics[name] = `http://127.0.0.1:${ports[name]}`;
  for (const base of [api, ...Object.values(metrics)]) await waitFor(`${base} to answer`, async () => ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok ? true : undefined));
});

afterAll(async () => {
  await cluster?.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const http = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(api + path, { ...init, headers: init.token ? { authorization: `Bearer ${init.token}` } : {} });

test("/v1/cluster and the CLI's JSON carry no requestId", async () => {
  const text = await (await http("/v1/cluster", { token: TOKENS.read })).text();
  expect(text).toContain('"coordinators"');
  expect(text).not.toContain("requestId");
  const run = await cluster.client(["-p", String(routerPort), "--token", TOKENS.read, "stats"]);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('"coordinators"');
  expect(run.stdout).not.toContain("requestId");
});
