// User handler modules in the compiled worker (`worker --handlers FILE`): the
// examples' handlers end to end (results, retries, the DLQ, progress, cancel),
// timeouts, modules that must not load, dispatch by task type in a mixed pool
// (no E_NO_HANDLER), and the SDK's typed errors.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { resolve } from "node:path";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { binary, Cluster, freePort, waitFor, type ClientRun } from "./harness.ts";

const ROOT = resolve(import.meta.dir, "../..");
const EXAMPLE_HANDLERS = resolve(ROOT, "examples/handlers.ts");
const fixture = (name: string): string => resolve(import.meta.dir, "fixtures", name);

/** An example script runs a few hundred tasks: seconds at most, even on a loaded machine. */
const EXAMPLE_RUN_MS = 30_000;
/** A worker whose handlers cannot load exits at start: well within this. */
const EXIT_WAIT_MS = 10_000;
/** Lease and timeout checks this often, so a 200 ms timeout is noticed within ~20 ms of it. */
const TICK_MS = "20";

/** Processes spawned here rather than through a Cluster (bun scripts, workers expected to exit). */
const spawned: Subprocess[] = [];

/** Runs a command to its exit (killed past timeoutMs) and collects its output. */
async function runToExit(cmd: string[], timeoutMs: number): Promise<ClientRun> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  spawned.push(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

afterAll(async () => {
  for (const p of spawned) p.kill("SIGKILL");
  await Promise.all(spawned.map((p) => p.exited));
});

/** The reference 2x2 box downscale, written independently of examples/handlers.ts. */
function halve(width: number, height: number, pixels: Uint8Array): Uint8Array {
  const w = Math.floor(width / 2);
  const out = new Uint8Array(w * Math.floor(height / 2));
  for (let i = 0; i < out.length; i++) {
    const x = 2 * (i % w);
    const y = 2 * Math.floor(i / w);
    const at = (dx: number, dy: number) => pixels[(y + dy) * width + x + dx]!;
    out[i] = Math.floor((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1)) / 4);
  }
  return out;
}

interface WorkerCounts {
  succeeded: number;
  failed: number;
  running: number;
}

/** A worker's own attempt counters from its /metrics (no heartbeat delay, unlike cluster stats). */
async function workerCounts(metricsPort: number): Promise<WorkerCounts> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const read = (name: string) => {
    const m = new RegExp(`^taskscheduler_worker_process_${name}(?:\\{[^}]*\\})? (\\d+)$`, "m").exec(text);
    if (m === null) throw new Error(`no ${name} in the worker's metrics:\n${text}`);
    return Number(m[1]);
  };
  return { succeeded: read("tasks_succeeded_total"), failed: read("tasks_failed_total"), running: read("running") };
}

describe("the examples' handlers on the compiled worker, through a router", () => {
  let cluster: Cluster;
  let client: SchedulerClient;
  let routerPort = 0;
  let metricsPort = 0;

  beforeAll(async () => {
    cluster = new Cluster();
    const coordinator = await cluster.coordinator(["--tick-ms", TICK_MS]);
    metricsPort = freePort();
    // Two modules with --handlers given twice: both are loaded on every executor thread.
    cluster.worker([coordinator.port], ["-w", "2", "--handlers", EXAMPLE_HANDLERS, "--handlers", fixture("slow-handlers.ts"), "--metrics-port", String(metricsPort)]);
    routerPort = (await cluster.router([coordinator.port])).port;
    await cluster.workersJoined(routerPort, 1);
    client = await SchedulerClient.connect({ host: "127.0.0.1", port: routerPort });
    await waitFor("the worker's metrics", () => workerCounts(metricsPort));
  });

  afterAll(async () => {
    client?.close();
    await cluster?.stopAll();
  });

  test("resize halves an image by averaging 2x2 blocks", async () => {
    // pixel(x, y) = 10x + 30y: block averages are easy to check by hand.
    const small = new Uint8Array(10 * 7).map((_, i) => 10 * (i % 10) + 30 * Math.floor(i / 10));
    const outcome = await client.run("resize", { width: 10, height: 7, pixels: small });
    expect(outcome.ok).toBe(true);
    const image = (await client.result(outcome.taskId)) as { width: number; height: number; pixels: Uint8Array };
    expect([image.width, image.height]).toEqual([5, 3]); // odd sizes round down
    expect(image.pixels).toBeInstanceOf(Uint8Array);
    expect(image.pixels.length).toBe(15);
    expect(image.pixels[0]).toBe(20); // (0 + 10 + 30 + 40) / 4
    expect(image.pixels[1]).toBe(40); // (20 + 30 + 50 + 60) / 4
    expect(image.pixels[5]).toBe(80); // (60 + 70 + 90 + 100) / 4
    expect(image.pixels[14]).toBe(220); // (200 + 210 + 230 + 240) / 4

    // A larger odd-sized one, against the reference; the sums are not multiples of 4, so rounding counts.
    const big = new Uint8Array(101 * 67).map((_, i) => ((i % 101) * 7 + Math.floor(i / 101) * 13 + (i % 3)) & 0xff);
    const resized = await client.run("resize", { width: 101, height: 67, pixels: big });
    const bigOut = (await client.result(resized.taskId)) as { width: number; height: number; pixels: Uint8Array };
    expect([bigOut.width, bigOut.height]).toEqual([50, 33]);
    expect(bigOut.pixels).toEqual(halve(101, 67, big));
  });

  test("flaky succeeds on the attempt it asks for, after the backoff between attempts", async () => {
    const backoffMs = 50;
    const outcome = await client.run("flaky", { succeedOnAttempt: 3 }, { maxAttempts: 5, backoff: { type: "fixed", delayMs: backoffMs } });
    expect(outcome.ok).toBe(true);
    expect(outcome.attempts).toBe(3);
    expect(await client.result(outcome.taskId)).toEqual({ attempt: 3 });
    const info = await client.task(outcome.taskId);
    expect(info.state).toBe("completed");
    expect(info.errors.map((e) => e.attempt)).toEqual([1, 2]);
    info.errors.forEach((e) => expect(e.message).toContain(`flaky: attempt ${e.attempt} fails on purpose`));
    // Each retry waited out its backoff (fixed: no jitter) on the coordinator's clock.
    expect(info.errors[1]!.at - info.errors[0]!.at).toBeGreaterThanOrEqual(backoffMs);
    expect(info.finishedAt - info.errors[1]!.at).toBeGreaterThanOrEqual(backoffMs);
  });

  test("always-fails ends failed after maxAttempts, every attempt's error and stack kept, in the DLQ", async () => {
    const outcome = await client.run("always-fails", undefined, { maxAttempts: 3, backoff: { type: "exponential", delayMs: 10, maxDelayMs: 40 } });
    expect(outcome.ok).toBe(false);
    expect(outcome.attempts).toBe(3);
    expect(outcome.error).toContain("always-fails: this handler never succeeds");
    const info = await client.task(outcome.taskId);
    expect(info.state).toBe("failed");
    expect(info.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
    for (const e of info.errors) {
      expect(e.code).toBe("E_HANDLER");
      expect(e.message).toStartWith("TypeError: always-fails: this handler never succeeds\n");
      // The stack names the handler in the user's module, loaded from disk by the compiled binary.
      expect(e.message).toMatch(/\n\s+at .*examples\/handlers\.ts:\d+:\d+/);
      expect(e.workerId).toBeGreaterThan(0);
    }
    const dead = (await client.deadLetters()).tasks.find((t) => t.taskId === outcome.taskId);
    expect(dead?.state).toBe("failed");
    expect(dead?.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  test("examples/submit-and-wait.ts runs against the cluster", async () => {
    const run = await runToExit([process.execPath, "examples/submit-and-wait.ts", `127.0.0.1:${routerPort}`], EXAMPLE_RUN_MS);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.stdout).toContain("resize: ok, 32x32");
    expect(run.stdout).toContain("flaky: ok after 3 attempts");
    expect(run.stdout).toContain("batch: 100/100 ok");
    expect(run.stdout).toContain("flaky: E_HANDLER after 2 attempts"); // a TaskFailedError, not an ok flag
    expect(run.stdout).toContain("unknown task: E_UNKNOWN_TASK");
  });

  test("examples/wordfreq-mapreduce.ts: the distributed counts match", async () => {
    const run = await runToExit([process.execPath, "examples/wordfreq-mapreduce.ts", `127.0.0.1:${routerPort}`], EXAMPLE_RUN_MS);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.stdout).toContain("distributed counts match the single-process count");
    expect(run.stdout).toMatch(/map tasks [1-9]\d*, reduce task \d+/);
  });

  test("slow-job's progress shows in its status while it runs", async () => {
    const id = await client.submit("slow-job", { ms: 1500 });
    const waiting = client.wait(id);
    const seen: number[] = [];
    await waitFor("slow-job to finish", async () => {
      const info = await client.task(id);
      if (info.state === "leased" && info.progress !== undefined) seen.push(info.progress);
      return info.state === "completed" ? true : undefined;
    });
    expect(seen.some((p) => p > 0 && p < 1)).toBe(true);
    expect(seen.every((p) => p > 0 && p <= 1)).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // reports arrive in order
    const outcome = await waiting;
    expect(outcome.ok).toBe(true);
    expect(await client.result(id)).toEqual({ done: true, attempt: 1 });
    expect((await client.task(id)).progress).toBeUndefined();
  });

  test("cancel of a running slow-job aborts its handler; the waiter hears E_CANCELLED", async () => {
    const before = await workerCounts(metricsPort);
    // 10 steps of 300 ms: the handler looks at its signal between steps.
    const id = await client.submit("slow-job", { ms: 3000 });
    await waitFor("slow-job to report progress", async () => {
      const info = await client.task(id);
      return info.state === "leased" && (info.progress ?? 0) > 0 ? true : undefined;
    });
    const waiting = client.wait(id);
    expect(await client.cancel(id)).toBe("cancelled");
    const outcome = await waiting;
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain("E_CANCELLED");
    // Aborted, the handler throws at its next step (<= 300 ms); not aborted, it would succeed ~2.5 s later.
    const after = await waitFor("the aborted handler to end on the worker", async () => {
      const counts = await workerCounts(metricsPort);
      return counts.failed > before.failed ? counts : undefined;
    }, 1500);
    expect(after.failed).toBe(before.failed + 1);
    expect(after.succeeded).toBe(before.succeeded);
    expect(after.running).toBe(0);
    expect((await client.task(id)).state).toBe("cancelled"); // the handler's late failure changed nothing
  });

  test("a handler sleeping past timeoutMs fails each attempt with E_TIMEOUT; its late answers are ignored", async () => {
    const before = await workerCounts(metricsPort);
    const outcome = await client.run("sleepy", { ms: 600 }, { timeoutMs: 200, maxAttempts: 2 });
    expect(outcome.ok).toBe(false);
    expect(outcome.attempts).toBe(2);
    expect(outcome.error).toStartWith("E_TIMEOUT");
    const info = await client.task(outcome.taskId);
    expect(info.state).toBe("failed");
    expect(info.errors.map((e) => e.attempt)).toEqual([1, 2]);
    info.errors.forEach((e) => expect(e).toMatchObject({ code: "E_TIMEOUT", message: `attempt ${e.attempt} ran past its 200 ms timeout` }));
    // Attempt 2 was leased no sooner than attempt 1 ended, and ran its full 200 ms.
    expect(info.errors[1]!.at - info.errors[0]!.at).toBeGreaterThanOrEqual(200);
    // Both handlers still return "late" (sleepy ignores its signal): the coordinator must drop those results.
    await waitFor("both late answers to reach the coordinator", async () => {
      const counts = await workerCounts(metricsPort);
      return counts.succeeded >= before.succeeded + 2 && counts.running === 0 ? true : undefined;
    }, 5000);
    const later = await client.task(outcome.taskId);
    expect(later.state).toBe("failed");
    expect(later.errors).toHaveLength(2);
    expect(later.output === undefined || later.output.length === 0).toBe(true);
  });

  test("the SDK's typed errors: unknown task, cycle, unknown dependency", async () => {
    const known = await client.submit("noop", undefined);
    const unknownId = known + 1_000_000; // same shard, never submitted
    const unknown = await client.task(unknownId).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(TaskError);
    expect((unknown as TaskError).code).toBe("E_UNKNOWN_TASK");

    const cycle = await client
      .workflow([{ type: "noop" }, { type: "noop", dependsOn: [{ node: 3 }] }, { type: "noop", dependsOn: [{ node: 1 }] }, { type: "noop", dependsOn: [{ node: 2 }] }])
      .catch((e: unknown) => e);
    expect(cycle).toBeInstanceOf(TaskError);
    expect((cycle as TaskError).code).toBe("E_CYCLE");

    const orphan = await client.submit("noop", undefined, { dependsOn: [known, unknownId] }).catch((e: unknown) => e);
    expect(orphan).toBeInstanceOf(TaskError);
    expect((orphan as TaskError).code).toBe("E_UNKNOWN_TASK");
    expect((orphan as TaskError).message).toContain(String(unknownId));
  });

  // writeSubmit (src/protocol/codec.ts) writes priority as a u8, which would wrap 300 to 44: the SDK
  // checks every fixed-width field before encoding (checkSubmitOptions), and the connection stays usable.
  test("a priority of 300 is refused by the SDK with a TaskError", async () => {
    const refused = await client.submit("noop", undefined, { priority: 300 }).catch((e: unknown) => e);
    if (typeof refused === "number") await client.cancel(refused).catch(() => undefined);
    expect(refused).toBeInstanceOf(TaskError);
    expect((refused as TaskError).code).toBe("E_BAD_REQUEST");
    expect((refused as TaskError).message).toContain("priority must be an integer from 0 (highest) to 255");
    expect(await client.submit("noop", undefined, { priority: 255 })).toBeNumber();
  });
});

describe("a handler module that must not load stops the compiled worker at start", () => {
  const cases: Array<[what: string, modules: string[], message: string]> = [
    ["throws at load", [fixture("throws-at-load.ts")], "throws-at-load fixture: broken on purpose"],
    ["exports no functions", [fixture("no-functions.ts")], "exports no handler functions"],
    ["redefines a built-in", [fixture("redefines-builtin.ts")], `handler "noop" in ${fixture("redefines-builtin.ts")} is already defined by the built-in tasks`],
    ["names a handler twice", [EXAMPLE_HANDLERS, EXAMPLE_HANDLERS], `handler "resize" in ${EXAMPLE_HANDLERS} is already defined by ${EXAMPLE_HANDLERS}`],
  ];

  test.each(cases)("a module that %s", async (_what, modules, message) => {
    // Nothing listens on the coordinator port: the worker must fail before it ever dials.
    const args = ["--servers", `127.0.0.1:${freePort()}`, "-w", "2", "--log-level", "warn", ...modules.flatMap((m) => ["--handlers", m])];
    const run = await runToExit([binary("worker"), ...args], EXIT_WAIT_MS);
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBe(137); // not our SIGKILL at the bound: it exited by itself
    expect(run.stderr).toContain(modules.at(-1)!);
    expect(run.stderr).toContain(message);
    expect(run.stdout).not.toContain("started");
  });
});

/** Tasks of a custom type sent through a mixed pool; each has one attempt, so a single wrong lease would fail one. */
const MIXED_FLEET_TASKS = 1000;
/** Submitted this many at a time (each one a watched request). */
const MIXED_FLEET_BATCH = 100;

describe("dispatch by task type in a pool where only some workers have the handlers", () => {
  let cluster: Cluster;
  let client: SchedulerClient;

  beforeAll(async () => {
    cluster = new Cluster();
    const coordinator = await cluster.coordinator(["--tick-ms", TICK_MS]);
    cluster.worker([coordinator.port], ["-w", "1", "--handlers", EXAMPLE_HANDLERS, "--handlers", fixture("counting-handlers.ts"), "--tags", "img", "--node-id", "with-handlers"]);
    cluster.worker([coordinator.port], ["-w", "1", "--node-id", "built-ins-only"]);
    await cluster.workersJoined(coordinator.port, 2);
    client = await SchedulerClient.connect({ host: "127.0.0.1", port: coordinator.port });
  });

  afterAll(async () => {
    client?.close();
    await cluster?.stopAll();
  });

  test(`${MIXED_FLEET_TASKS} tasks of a custom type with maxAttempts 1 all complete: none leased to the worker without the handler`, async () => {
    let failed: string[] = [];
    for (let start = 0; start < MIXED_FLEET_TASKS; start += MIXED_FLEET_BATCH) {
      const outcomes = await Promise.all(Array.from({ length: MIXED_FLEET_BATCH }, (_, i) => client.run("add", { a: start + i, b: 1 }, { maxAttempts: 1 })));
      failed = failed.concat(outcomes.filter((o) => !o.ok).map((o) => `${o.taskId}: ${o.error}`));
    }
    expect(failed).toEqual([]);
    const workers = (await client.clusterStats()).coordinators[0]!.stats!.workers;
    expect(workers.find((w) => w.types?.includes("add"))!.done).toBeGreaterThanOrEqual(MIXED_FLEET_TASKS);
    expect(workers.find((w) => !w.types?.includes("add"))!.failed).toBe(0);
  });

  test("resize tagged img runs only where the handler is; a type nobody has waits, unmatched, burning no attempt", async () => {
    // One attempt each: a single lease to the worker without handlers would fail the task.
    const pixels = new Uint8Array(16 * 16).fill(200);
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => client.run("resize", { width: 16, height: 16, pixels }, { tags: ["img"], maxAttempts: 1 })));
    expect(outcomes.map((o) => o.ok)).toEqual(Array(8).fill(true));
    const image = (await client.result(outcomes[0]!.taskId)) as { width: number; pixels: Uint8Array };
    expect(image.width).toBe(8);
    expect(image.pixels.every((p) => p === 200)).toBe(true);
    const workers = (await client.clusterStats()).coordinators[0]!.stats!.workers;
    expect(workers.find((w) => w.tags.includes("img"))!.done).toBeGreaterThanOrEqual(8);

    const nobody = await client.submit("no-such-type", { x: 1 }, { maxAttempts: 1 });
    await waitFor("the task no worker can run to be counted unmatched", async () => ((await client.clusterStats()).coordinators[0]!.stats!.unmatched >= 1 ? true : undefined));
    const info = await client.task(nobody);
    expect([info.state, info.attempt, info.errors]).toEqual(["queued", 0, []]);
    expect(await client.cancel(nobody)).toBe("cancelled");
  });
});
