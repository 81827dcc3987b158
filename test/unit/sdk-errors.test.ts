// The SDK's errors: typed codes read from a task's error text in one place,
// and every request method answering with a promise, never a synchronous throw.

import { describe, expect, test } from "bun:test";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { asSchedulerError, parseTaskError, SchedulerError, TaskFailedError } from "../../src/sdk/errors.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";

describe("parseTaskError", () => {
  test("a coded error text gives its code and sentence", () => {
    expect(parseTaskError("E_TIMEOUT: attempt 2 ran past 100 ms")).toEqual({ code: "E_TIMEOUT", message: "attempt 2 ran past 100 ms" });
    expect(parseTaskError("E_DEPENDENCY: parent task 7 failed")).toEqual({ code: "E_DEPENDENCY", message: "parent task 7 failed" });
    expect(parseTaskError("E_CANCELLED: the task was cancelled").code).toBe("E_CANCELLED");
  });

  test("a handler's own exception, or an unknown code, is E_HANDLER with the whole text", () => {
    expect(parseTaskError("boom")).toEqual({ code: "E_HANDLER", message: "boom" });
    expect(parseTaskError("E_MADE_UP: no")).toEqual({ code: "E_HANDLER", message: "E_MADE_UP: no" });
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
      let promise: Promise<unknown> | undefined;
      let thrown: unknown;
      try {
        promise = call();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeUndefined();
      const refused = await promise!.catch((e: unknown) => e);
      expect((refused as SchedulerError).code).toBe("E_UNAVAILABLE");
    }
    expect(client.inFlight).toBe(0);
  });
});
