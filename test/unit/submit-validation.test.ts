// Range checks on a submission, at both ends: the SDK refuses what the binary
// codec's fixed-width fields would wrap (priority 300 would arrive as 44), and
// the coordinator's core refuses times no timer can reach (NaN, Infinity).

import { describe, expect, test } from "bun:test";
import { checkSubmitOptions, SchedulerClient, TaskError, type SubmitOptions } from "../../src/sdk/client.ts";
import { makeScheduler, node, request } from "../support/scheduler-fixtures.ts";

const NOW = 1_700_000_000_000;
const U32_MAX = 2 ** 32 - 1;

describe("SDK: checkSubmitOptions", () => {
  test("options in range pass, at both ends of each range", () => {
    const good: SubmitOptions[] = [
      {},
      { priority: 0, maxAttempts: 1, timeoutMs: 1, delayMs: 0, deadlineMs: 0 },
      { priority: 255, maxAttempts: 65535, timeoutMs: U32_MAX, delayMs: U32_MAX, deadlineMs: U32_MAX, idempotencyKey: "k" },
      { maxAttempts: 0, timeoutMs: 0 }, // the coordinator's defaults, as the CLI sends them
      { delayMs: 1.5, deadlineMs: 0.25 },
      { runAt: NOW - 1000, deadline: new Date(NOW + 60_000) }, // a runAt already past means now
      { runAt: 0, deadline: NOW + U32_MAX },
      { backoff: { type: "exponential", delayMs: 0, maxDelayMs: U32_MAX } },
      { backoff: { type: "fixed", delayMs: 100 } },
    ];
    for (const options of good) expect(checkSubmitOptions(options, NOW)).toBeUndefined();
  });

  const cases: Array<[field: string, options: SubmitOptions, range: string]> = [
    ["priority", { priority: 300 }, "an integer from 0 (highest) to 255"],
    ["priority", { priority: 256 }, "an integer from 0 (highest) to 255"],
    ["priority", { priority: -1 }, "an integer from 0 (highest) to 255"],
    ["priority", { priority: 1.5 }, "an integer from 0 (highest) to 255"],
    ["priority", { priority: Number.NaN }, "an integer from 0 (highest) to 255"],
    ["priority", { priority: "7" as unknown as number }, "an integer from 0 (highest) to 255"],
    ["maxAttempts", { maxAttempts: 65536 }, "an integer from 1 to 65535"],
    ["maxAttempts", { maxAttempts: -1 }, "an integer from 1 to 65535"],
    ["maxAttempts", { maxAttempts: Number.POSITIVE_INFINITY }, "an integer from 1 to 65535"],
    ["timeoutMs", { timeoutMs: U32_MAX + 1 }, `an integer from 1 to ${U32_MAX} ms`],
    ["timeoutMs", { timeoutMs: 0.5 }, `an integer from 1 to ${U32_MAX} ms`],
    ["delayMs", { delayMs: -1 }, `a number of ms from 0 to ${U32_MAX}`],
    ["delayMs", { delayMs: Number.NaN }, `a number of ms from 0 to ${U32_MAX}`],
    ["delayMs", { delayMs: U32_MAX + 1 }, `a number of ms from 0 to ${U32_MAX}`],
    ["deadlineMs", { deadlineMs: Number.POSITIVE_INFINITY }, `a number of ms from 0 to ${U32_MAX}`],
    ["runAt", { runAt: Number.NaN }, "a time in ms since the epoch"],
    ["runAt", { runAt: -5 }, "a time in ms since the epoch"],
    ["runAt", { runAt: new Date(Number.NaN) }, "a time in ms since the epoch"],
    ["runAt", { runAt: NOW + U32_MAX + 1 }, `at most ${U32_MAX} ms from now`],
    ["deadline", { deadline: Number.POSITIVE_INFINITY }, "a time in ms since the epoch"],
    ["backoff.type", { backoff: { type: "linear" as "fixed", delayMs: 1 } }, `"exponential" or "fixed"`],
    ["backoff.delayMs", { backoff: { type: "fixed", delayMs: -5 } }, `a number of ms from 0 to ${U32_MAX}`],
    ["backoff.maxDelayMs", { backoff: { type: "exponential", delayMs: 5, maxDelayMs: Number.NaN } }, `a number of ms from 0 to ${U32_MAX}`],
  ];

  test.each(cases)("%s out of range is named, with the range allowed: %p", (field, options, range) => {
    const problem = checkSubmitOptions(options, NOW);
    expect(problem).toStartWith(`${field} must be `);
    expect(problem).toContain(range);
  });

  test("a field the options do not have is refused by name, with the known ones; backoff's too", () => {
    expect(checkSubmitOptions({ priorty: 3 } as SubmitOptions, NOW)).toStartWith('unknown option "priorty" (known: priority, maxAttempts,');
    expect(checkSubmitOptions({ priority: 1, retries: 2 } as SubmitOptions, NOW)).toStartWith('unknown option "retries"');
    expect(checkSubmitOptions({ backoff: { type: "fixed", delayMs: 1, jitter: true } } as SubmitOptions, NOW)).toStartWith('unknown option "backoff.jitter"');
  });

  test("the message quotes the value given", () => {
    expect(checkSubmitOptions({ priority: 300 }, NOW)).toBe("priority must be an integer from 0 (highest) to 255, not 300");
  });
});

describe("SDK: submit, run and workflow refuse bad options before anything is sent", () => {
  // Never connected: a request that got past the check would fail with E_UNAVAILABLE instead.
  const client = new SchedulerClient();

  test("submit and run reject with a TaskError E_BAD_REQUEST naming the field", async () => {
    for (const call of [() => client.submit("noop", undefined, { priority: 300 }), () => client.run("noop", undefined, { priority: 300 })]) {
      const refused = await call().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TaskError);
      expect((refused as TaskError).code).toBe("E_BAD_REQUEST");
      expect((refused as TaskError).message).toBe("E_BAD_REQUEST: priority must be an integer from 0 (highest) to 255, not 300");
    }
    expect(client.inFlight).toBe(0); // no request id taken, nothing pending
  });

  test("a misspelt option rejects with E_BAD_REQUEST naming it; in a workflow, runAt is not a field", async () => {
    const refused = await client.submit("noop", undefined, { priorty: 3 } as SubmitOptions).catch((e: unknown) => e);
    expect((refused as TaskError).code).toBe("E_BAD_REQUEST");
    expect((refused as TaskError).message).toContain('unknown option "priorty"');
    const flow = await client.workflow([{ type: "a", runAt: 5 } as never]).catch((e: unknown) => e);
    expect((flow as TaskError).message).toContain('workflow task 0: unknown option "runAt"');
    expect(client.inFlight).toBe(0);
  });

  test("a built-in type's bad payload is refused with E_BAD_REQUEST naming the problem; the task never exists", async () => {
    const refused = await client.submit("sleep", "abc").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TaskError);
    expect((refused as TaskError).message).toBe('E_BAD_REQUEST: sleep: payload must be a map {ms: number}, not "abc"');
    const flow = await client.workflow([{ type: "noop" }, { type: "cpu", payload: { ms: -1 } }]).catch((e: unknown) => e);
    expect((flow as TaskError).message).toStartWith("E_BAD_REQUEST: workflow task 1: cpu: payload.ms must be");
    expect(client.inFlight).toBe(0);
  });

  test("workflow names the task", async () => {
    const refused = await client.workflow([{ type: "a" }, { type: "b", maxAttempts: 70_000 }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TaskError);
    expect((refused as TaskError).code).toBe("E_BAD_REQUEST");
    expect((refused as TaskError).message).toStartWith("E_BAD_REQUEST: workflow task 1: maxAttempts must be an integer from 1 to 65535");
  });

  test("valid options get past the check (and then find no connection)", async () => {
    const outcome = await Promise.resolve().then(() => client.submit("noop", undefined, { priority: 255 })).catch((e: unknown) => e);
    expect((outcome as TaskError).code).toBe("E_UNAVAILABLE");
  });
});

describe("core: the coordinator refuses times no timer can reach", () => {
  const refusals: Array<[string, { deadline?: number; runAt?: number }]> = [
    ["deadline", { deadline: Number.NaN }],
    ["deadline", { deadline: Number.POSITIVE_INFINITY }],
    ["deadline", { deadline: -1 }],
    ["runAt", { runAt: Number.NaN }],
    ["runAt", { runAt: Number.POSITIVE_INFINITY }],
    ["runAt", { runAt: -1 }],
  ];

  test.each(refusals)("a submit with a bad %s: E_BAD_REQUEST, nothing created", (field, fields) => {
    const s = makeScheduler();
    const outcome = s.submit(request(fields), 0);
    expect(outcome).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    if (!outcome.ok) expect(outcome.message).toStartWith(`${field} must be a finite, non-negative time`);
    expect(s.counters.submitted).toBe(0);
  });

  test.each(refusals)("a workflow node with a bad %s: the whole workflow is refused", (_field, fields) => {
    const s = makeScheduler();
    expect(s.submitWorkflow([node(), node(fields)], 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.counters.submitted).toBe(0);
  });

  test("finite times, and none, are accepted", () => {
    const s = makeScheduler();
    for (const fields of [{}, { deadline: 0, runAt: 0 }, { deadline: 5000, runAt: 10 }]) expect(s.submit(request(fields), 0)).toMatchObject({ ok: true });
  });
});

describe("core: a dependency must be a task id", () => {
  // Found by the full consistency check in the fuzzer: a parent id of NaN was taken for a parent on
  // another shard, which no router ever reports, so the task waited for good.
  test.each([Number.NaN, 1.5, -1, Number.POSITIVE_INFINITY])("dependsOn [%p]: E_BAD_REQUEST, nothing created", (parent) => {
    const s = makeScheduler();
    const outcome = s.submit(request({ dependsOn: [parent] }), 0);
    expect(outcome).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.submitWorkflow([node({ dependsOn: [{ taskId: parent }] })], 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.counters.submitted).toBe(0);
    expect(s.foreignWaits()).toEqual([]);
  });
});
