// The handler table of an in-process worker (createWorker): the caller's functions
// beside the built-ins, with the same checks as a handlers module, and values in
// and out (msgpack on the wire); bad options reject before anything connects.

import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { inProcessHandlers } from "../../src/worker/handlers.ts";
import { createWorker } from "../../src/sdk/worker.ts";
import type { TaskContext } from "../../src/worker/builtin-tasks.ts";

const context: TaskContext = {
  taskId: 7, attempt: 2, signal: new AbortController().signal, inputs: [encode(5)], progress: () => {}, log: () => {},
};

describe("inProcessHandlers", () => {
  test("keeps the built-ins and adds the functions, values decoded and encoded", async () => {
    const table = inProcessHandlers({
      double: ({ n }: { n: number }, ctx: { attempt: number; inputs: unknown[] }) => ({ n: n * 2, attempt: ctx.attempt, input: ctx.inputs[0] }),
      later: async (s: string) => s.toUpperCase(),
    });
    expect(Object.keys(table)).toContain("noop");
    expect(decode(table.double!(encode({ n: 21 }), context) as Uint8Array)).toEqual({ n: 42, attempt: 2, input: 5 });
    expect(decode(await table.later!(encode("abc"), context))).toBe("ABC");
  });

  test("refuses no functions, and a name the built-ins already have", () => {
    expect(() => inProcessHandlers({})).toThrow("createWorker was given no handler functions");
    expect(() => inProcessHandlers({ sleep: () => 1 })).toThrow('handler "sleep" in the handlers given to createWorker is already defined by the built-in tasks');
  });
});

describe("createWorker options", () => {
  test("rejects (never throws) on no servers, bad concurrency or threads", async () => {
    const handlers = { echo: (x: unknown) => x };
    await expect(createWorker({ servers: [], handlers })).rejects.toThrow("servers is empty");
    await expect(createWorker({ servers: ["127.0.0.1:1"], handlers, concurrency: 0 })).rejects.toThrow("concurrency must be a whole number from 1, not 0");
    await expect(createWorker({ servers: ["127.0.0.1:1"], handlers, threads: 1.5 })).rejects.toThrow("threads must be a whole number from 1, not 1.5");
    await expect(createWorker({ servers: ["127.0.0.1:1"], handlers: {} })).rejects.toThrow("no handler functions");
  });
});
