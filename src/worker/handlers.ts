// Task handlers by type: the built-in ones, plus user modules given with
// `worker --handlers FILE` (.ts or .js, loaded at start on every executor
// thread, also in the compiled binary). A user module exports its handlers as
// functions, by default export object or by name:
//
//   export default {
//     resize: async (payload, ctx) => { ctx.progress(0.5); return { width: 10 } },
//   };
//
// A user handler gets the payload decoded from msgpack (raw bytes when it is
// not msgpack), and returns a value that is msgpack-encoded (bytes as they are).

import { decode, encode } from "@msgpack/msgpack";
import { BUILTIN_TASKS, type BuiltinHandler, type TaskContext } from "./builtin-tasks.ts";

/** What a user handler sees besides its payload. */
export interface HandlerContext {
  taskId: number;
  /** 1 for the first attempt; retries count up. */
  attempt: number;
  /** Aborted when the task is cancelled. */
  signal: AbortSignal;
  /** The results of the tasks this one depends on, in dependsOn order (decoded). */
  inputs: unknown[];
  /** Reports how far the task is (0..1): shown in its status. */
  progress(fraction: number): void;
  /** A structured log line on the worker's stderr, tagged with the task. */
  log(message: string, fields?: Record<string, unknown>): void;
}

export type UserHandler = (payload: any, ctx: HandlerContext) => unknown;

const NOTHING = new Uint8Array(0);

function decodeOrBytes(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return decode(bytes);
  } catch {
    return bytes;
  }
}

function encodeResult(value: unknown): Uint8Array {
  if (value === undefined) return NOTHING;
  if (value instanceof Uint8Array) return value;
  return encode(value);
}

/** Adapts a user handler (values in and out) to the executor's bytes-in, bytes-out shape. */
function wrap(handler: UserHandler): BuiltinHandler {
  return (payload, ctx) => {
    const context: HandlerContext = {
      taskId: ctx.taskId,
      attempt: ctx.attempt,
      get signal() {
        return ctx.signal;
      },
      inputs: ctx.inputs.map(decodeOrBytes),
      progress: ctx.progress,
      log: ctx.log,
    };
    const out = handler(decodeOrBytes(payload), context);
    if (out instanceof Promise) return out.then(encodeResult);
    return encodeResult(out);
  };
}

/**
 * The handler table: built-ins plus every user module's exports. Fails (so
 * the worker does not start) on a module that cannot load, exports no
 * function, or names a handler twice or after a built-in.
 */
export async function loadHandlers(modulePaths: readonly string[]): Promise<Record<string, BuiltinHandler>> {
  const table = new HandlerTable();
  for (const path of modulePaths) {
    let mod: Record<string, unknown>;
    try {
      mod = await import(path);
    } catch (err) {
      throw new Error(`cannot load handlers from ${path}: ${(err as Error).message}`);
    }
    const exported = mod.default !== null && typeof mod.default === "object" ? (mod.default as Record<string, unknown>) : mod;
    table.add(exported, path, `${path} exports no handler functions (export default { type: async (payload, ctx) => result })`);
  }
  return table.handlers;
}

/** The handler table of an in-process worker: built-ins plus the functions it was given (same checks as loadHandlers). */
export function inProcessHandlers(handlers: Record<string, unknown>): Record<string, BuiltinHandler> {
  const table = new HandlerTable();
  table.add(handlers, "the handlers given to createWorker", "createWorker was given no handler functions (handlers: { type: async (payload, ctx) => result })");
  return table.handlers;
}

/** Built-ins plus user handlers, each name defined once. */
class HandlerTable {
  readonly handlers: Record<string, BuiltinHandler> = { ...BUILTIN_TASKS };
  private readonly origin: Record<string, string> = Object.fromEntries(Object.keys(BUILTIN_TASKS).map((k) => [k, "the built-in tasks"]));

  add(exported: Record<string, unknown>, from: string, noneFound: string): void {
    const found = Object.entries(exported).filter(([name, value]) => name !== "default" && typeof value === "function");
    if (found.length === 0) throw new Error(noneFound);
    for (const [name, fn] of found) {
      if (this.origin[name] !== undefined) throw new Error(`handler "${name}" in ${from} is already defined by ${this.origin[name]}`);
      this.handlers[name] = wrap(fn as UserHandler);
      this.origin[name] = from;
    }
  }
}

export type { TaskContext };
