// The router's REST API and /metrics from the compiled binaries, with the
// curl examples of docs/api.md (run through fetch), and promtool when installed.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, freePort, waitFor } from "./harness.ts";

let cluster: Cluster;
let base = "";

beforeAll(async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "1"]);
  const httpPort = freePort();
  const router = await cluster.router([coordinator.port], ["--http-port", String(httpPort)]);
  await cluster.workersJoined(router.port, 1);
  base = `http://127.0.0.1:${httpPort}`;
  await waitFor("the HTTP port", async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));
});

afterAll(async () => {
  await cluster?.stopAll();
});

const post = (path: string, body: unknown) => fetch(base + path, { method: "POST", body: JSON.stringify(body) });

test("submit one and a batch, read status and result, cancel", async () => {
  const one = await post("/v1/tasks", { type: "wordcount", payload: "to be or not to be" });
  expect(one.status).toBe(201);
  const { taskId } = (await one.json()) as { taskId: number };
  const result = await waitFor("the result", async () => {
    const r = await fetch(`${base}/v1/tasks/${taskId}/result`);
    return r.status === 200 ? r.json() : undefined;
  });
  expect(result).toEqual({ taskId, state: "completed", result: 6 });
  const status = (await (await fetch(`${base}/v1/tasks/${taskId}`)).json()) as Record<string, unknown>;
  expect(status.state).toBe("completed");
  expect(status.type).toBe("wordcount");

  const batch = await post("/v1/tasks", [{ type: "noop", priority: 0 }, { type: "sleep", payload: { ms: 60_000 }, backoff: { type: "exponential", delayMs: 100, maxDelayMs: 5000 }, deadlineMs: 60_000 }]);
  expect(batch.status).toBe(201);
  const { taskIds } = (await batch.json()) as { taskIds: number[] };
  expect(taskIds).toHaveLength(2);
  const pending = await fetch(`${base}/v1/tasks/${taskIds[1]}/result`);
  expect(pending.status).toBe(202);
  const cancel = await fetch(`${base}/v1/tasks/${taskIds[1]}`, { method: "DELETE" });
  expect(await cancel.json()).toEqual({ taskId: taskIds[1], state: "cancelled" });
  expect((await fetch(`${base}/v1/tasks/${taskIds[1]}/result`)).status).toBe(409);
});

test("a task found by its idempotency key; an unknown key 404, none 400", async () => {
  const key = `order-${Date.now()}`;
  const { taskId } = (await (await post("/v1/tasks", { type: "noop", idempotencyKey: key })).json()) as { taskId: number };
  const found = await fetch(`${base}/v1/tasks?idempotencyKey=${encodeURIComponent(key)}`);
  expect(found.status).toBe(200);
  expect(await found.json()).toMatchObject({ taskId, type: "noop" });
  const unknown = await fetch(`${base}/v1/tasks?idempotencyKey=never-used`);
  expect(unknown.status).toBe(404);
  expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("E_UNKNOWN_TASK");
  const none = await fetch(`${base}/v1/tasks`);
  expect(none.status).toBe(400);
  expect(((await none.json()) as { error: { message: string } }).error.message).toContain("idempotencyKey");
  const wrongMethod = await fetch(`${base}/v1/tasks`, { method: "PUT" });
  expect(wrongMethod.status).toBe(405);
  expect(wrongMethod.headers.get("allow")).toBe("GET, POST");
});

test("bad input gets a 4xx that names the field; unknown tasks 404", async () => {
  const cases: Array<[unknown, string]> = [
    [{ type: "" }, "body.type"],
    [{ type: "noop", priority: 300 }, "priority"],
    [{ type: "noop", tags: "gpu" }, "tags"],
    [[{ type: "noop" }, { type: "noop", maxAttempts: -1 }], "tasks[1].maxAttempts"],
    [{ type: "noop", backoff: { type: "linear" } }, "backoff"],
    // Unknown fields are refused by name: a misspelt one would otherwise be ignored.
    [{ type: "noop", priorty: 3 }, "body.priorty is not a task field"],
    [{ type: "sleep", payload: "abc" }, 'sleep: payload must be a map {ms: number}, not "abc"'],
    [[{ type: "noop" }, { type: "noop", backoff: { type: "fixed", delayMs: 1, jitter: 0.5 } }], "tasks[1].backoff.jitter is not a backoff field"],
  ];
  for (const [body, field] of cases) {
    const r = await post("/v1/tasks", body);
    expect(r.status).toBe(400);
    const { error } = (await r.json()) as { error: { code: string; message: string } };
    expect(error.message).toContain(field);
    expect(error.code).toBe("E_BAD_REQUEST");
  }
  const notJson = await fetch(`${base}/v1/tasks`, { method: "POST", body: "{nope" });
  expect(notJson.status).toBe(400);
  expect((await fetch(`${base}/v1/tasks/123456789`)).status).toBe(404);
  expect((await fetch(`${base}/v1/tasks/abc`)).status).toBe(400);
  expect((await fetch(`${base}/v1/nothing`)).status).toBe(404);
});

test("the dead-letter queue, requeue, cluster, health and readiness", async () => {
  // Held back past its deadline, it fails (a type no worker has would wait, unmatched; a bad payload is refused at once).
  const r = await post("/v1/tasks", { type: "noop", delayMs: 200, deadlineMs: 1, maxAttempts: 1 });
  const { taskId } = (await r.json()) as { taskId: number };
  const dlq = await waitFor("the task in the DLQ", async () => {
    const page = (await (await fetch(`${base}/v1/dlq`)).json()) as { total: number; tasks: Array<{ taskId: number; errors: Array<{ code: string; message: string }> }> };
    return page.tasks.find((t) => t.taskId === taskId);
  });
  expect(dlq.errors[0]!.code).toBe("E_DEADLINE"); // the code is a field of its own
  const requeue = await fetch(`${base}/v1/dlq/${taskId}/requeue`, { method: "POST" });
  expect(await requeue.json()).toEqual({ taskId, requeued: true });
  const cluster = (await (await fetch(`${base}/v1/cluster`)).json()) as { coordinators: unknown[] };
  expect(cluster.coordinators).toHaveLength(1);
  expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({ ready: true, shards: [0] });
});

test("/metrics has the series we document, in a format promtool accepts", async () => {
  const r = await fetch(`${base}/metrics`);
  expect(r.headers.get("content-type")).toContain("text/plain");
  const text = await r.text();
  for (const series of [
    "taskscheduler_tasks_submitted_total{", "taskscheduler_tasks_completed_total{", "taskscheduler_tasks{",
    'state="queued"', "taskscheduler_task_latency_seconds_bucket{", 'le="+Inf"', "taskscheduler_task_latency_seconds_count{",
    "taskscheduler_coordinator_primary{", "taskscheduler_worker_slots{", "taskscheduler_router_clients{",
  ]) {
    expect(text).toContain(series);
  }
  // Every sample belongs to a family with HELP and TYPE.
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
    const name = line.split(/[{ ]/)[0]!.replace(/_(bucket|sum|count)$/, "");
    expect(families.has(name) || families.has(line.split(/[{ ]/)[0]!)).toBe(true);
  }
  const promtool = Bun.which("promtool");
  if (promtool === null) return;
  const check = Bun.spawn([promtool, "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([check.exited, new Response(check.stdout).text(), new Response(check.stderr).text()]);
  expect(`${out}${err}`.trim()).toBe("");
  expect(code).toBe(0);
});
