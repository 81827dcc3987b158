// The SDK's errors: typed codes (split from a worker's error text once, where
// it enters the scheduler, and read back from old snapshots), and every request
// method answering with a promise, never a synchronous throw.

import { describe, expect, test } from "bun:test";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { attemptErrorOf, storedAttemptError } from "../../src/core/task.ts";
import { asSchedulerError, SchedulerError, TaskFailedError } from "../../src/sdk/errors.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { rejectsNotThrows } from "../support/helpers.ts";

describe("attemptErrorOf (a worker's failure text entering the scheduler)", () => {
  test("a coded error text gives its code and sentence", () => {
    expect(attemptErrorOf("E_TIMEOUT: attempt 2 ran past 100 ms")).toEqual({ code: "E_TIMEOUT", message: "attempt 2 ran past 100 ms" });
    expect(attemptErrorOf("E_NO_HANDLER: no handler for add")).toEqual({ code: "E_NO_HANDLER", message: "no handler for add" });
  });

  test("a handler's own exception is E_HANDLER with the whole text", () => {
    expect(attemptErrorOf("TypeError: boom\n  at x")).toEqual({ code: "E_HANDLER", message: "TypeError: boom\n  at x" });
  });

  test("an error stored by an older version ({error: text}) reads with its code apart; a new one is kept as it is", () => {
    expect(storedAttemptError({ attempt: 2, workerId: 7, at: 9, error: "E_DEADLINE: not started by its deadline (5)" }))
      .toEqual({ attempt: 2, workerId: 7, at: 9, code: "E_DEADLINE", message: "not started by its deadline (5)" });
    const current = { attempt: 1, workerId: 1, at: 1, code: "E_HANDLER", message: "boom" };
    expect(storedAttemptError(current)).toBe(current);
  });
});

describe("SchedulerError", () => {
  test("carries the code apart from the sentence; the message keeps both for logs", () => {
    const e = new SchedulerError("E_QUEUE_FULL", "shard 0 is full");
    expect(e.code).toBe("E_QUEUE_FULL");
    expect(e.detail).toBe("shard 0 is full");
    expect(e.message).toBe("E_QUEUE_FULL: shard 0 is full");
    expect(e.retryable).toBe(true);
    expect(new SchedulerError("E_UNKNOWN_TASK").retryable).toBe(false);
  });

  test("TaskFailedError is a SchedulerError with attempts and every attempt's error", () => {
    const errors = [{ attempt: 1, code: "E_HANDLER" as const, message: "boom", workerId: 3, at: 1 }];
    const e = new TaskFailedError(9, "E_HANDLER", "boom", 1, errors);
    expect(e).toBeInstanceOf(SchedulerError);
    expect(e.taskId).toBe(9);
    expect(e.attempts).toBe(1);
    expect(e.errors).toEqual(errors);
  });

  test("asSchedulerError keeps a protocol code and calls anything else unavailable", () => {
    expect(asSchedulerError(new ProtocolError("E_TOO_LARGE")).code).toBe("E_TOO_LARGE");
    expect(asSchedulerError(new Error("socket hang up")).code).toBe("E_UNAVAILABLE");
  });
});

describe("SchedulerClient: a closed connection answers with rejected promises", () => {
  const client = new SchedulerClient(); // never connected: as after the server died

  test("no method throws synchronously; each rejects with E_UNAVAILABLE", async () => {
    const calls: Array<() => Promise<unknown>> = [
      () => client.submit("noop", undefined),
      () => client.run("noop", undefined),
      () => client.wait(1),
      () => client.task(1),
      () => client.cancel(1),
      () => client.stats(),
      () => client.submitMany([{ type: "noop" }]),
    ];
    for (const call of calls) {
      const refused = await rejectsNotThrows<unknown>(call).catch((e: unknown) => e);
      expect((refused as SchedulerError).code).toBe("E_UNAVAILABLE");
    }
    expect(client.inFlight).toBe(0);
  });
});
