// The task types every worker runs without user code: the seed's synthetic
// workloads. Payloads are msgpack maps (sleep, cpu) or UTF-8 text (wordcount);
// results are msgpack values, or nothing.

import { decode, encode } from "@msgpack/msgpack";

export type TaskOutput = Uint8Array;
export type SyncOrAsync = TaskOutput | Promise<TaskOutput>;
/** What a running task can see besides its payload (user handlers get a friendlier view: handlers.ts). */
export interface TaskContext {
  taskId: number;
  attempt: number;
  /** Aborted when the task is cancelled: long handlers should stop. */
  signal: AbortSignal;
  /** The parents' outputs, raw. */
  inputs: Uint8Array[];
  progress(fraction: number): void;
  log(message: string, fields?: Record<string, unknown>): void;
}
export type BuiltinHandler = (payload: Uint8Array, ctx: TaskContext) => SyncOrAsync;

const NOTHING = new Uint8Array(0);

/** Longest sleep or busy loop a built-in task may ask for: keeps a typo from wedging a thread. */
export const BUILTIN_DURATION_MS_MAX = 60_000;

/** The duration a sleep or cpu payload asks for, or why it is not one: absent, null, {} (0 ms) or {ms}. */
function parseDuration(payload: Uint8Array, type: string): number | string {
  if (payload.length === 0) return 0;
  let value: unknown;
  try {
    value = decode(payload);
  } catch {
    return `${type}: payload must be a msgpack map {ms}, not ${payload.length} bytes of something else`;
  }
  if (value === null || value === undefined) return 0;
  if (typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    return `${type}: payload must be a map {ms: number}, not ${JSON.stringify(value) ?? typeof value}`;
  }
  const stray = Object.keys(value).find((k) => k !== "ms");
  if (stray !== undefined) return `${type}: payload has an unknown field "${stray}" (it takes {ms})`;
  const ms = (value as { ms?: unknown }).ms ?? 0;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > BUILTIN_DURATION_MS_MAX) {
    return `${type}: payload.ms must be a number from 0 to ${BUILTIN_DURATION_MS_MAX}, not ${JSON.stringify(ms)}`;
  }
  return ms;
}

function durationMs(payload: Uint8Array, type: string): number {
  const ms = parseDuration(payload, type);
  if (typeof ms === "string") throw new Error(ms);
  return ms;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** wordcount's text: UTF-8 bytes, or a msgpack string (what the SDK and REST send for a string payload). */
function parseText(payload: Uint8Array): string {
  if (payload.length === 0) return "";
  // A fixstr header (0xa0-0xbf) never starts UTF-8 text: msgpack. Otherwise valid UTF-8 is text as it always was.
  const fixstr = payload[0]! >= 0xa0 && payload[0]! <= 0xbf;
  if (!fixstr) {
    try {
      return strictUtf8.decode(payload);
    } catch {
      // not UTF-8: a longer msgpack string (str8/16/32), or nothing wordcount takes
    }
  }
  let value: unknown;
  try {
    value = decode(payload);
  } catch {
    value = undefined;
  }
  if (typeof value === "string") return value;
  throw new Error("wordcount: payload must be UTF-8 text or a msgpack string");
}

/**
 * Why a built-in task's payload is not one it takes, or undefined (also for a type that
 * is not built in). The SDK (and so REST and the CLI) refuses such a task with
 * E_BAD_REQUEST before it exists; the worker checks again for clients that skip the SDK.
 */
export function builtinPayloadProblem(type: string, payload: Uint8Array): string | undefined {
  if (type === "sleep" || type === "cpu") {
    const ms = parseDuration(payload, type);
    return typeof ms === "string" ? ms : undefined;
  }
  if (type === "wordcount") {
    try {
      parseText(payload);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

/** Spins for `ms` of wall time: stands for CPU-bound work. */
function busyLoop(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) for (let i = 0; i < 1000; i++) x = (x * 31 + i) | 0;
  return x;
}

/**
 * Words are maximal runs of letters, digits, combining marks and apostrophes,
 * by Unicode code point (so astral letters and marks inside words count right).
 */
const WORD = /[\p{L}\p{N}\p{M}']+/gu;

export function countWords(text: string): number {
  let count = 0;
  WORD.lastIndex = 0;
  while (WORD.exec(text) !== null) count++;
  return count;
}

export const BUILTIN_TASKS: Record<string, BuiltinHandler> = {
  noop: () => NOTHING,
  sleep: (payload, ctx) => {
    const ms = durationMs(payload, "sleep");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(NOTHING), ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new Error("E_CANCELLED: the task was cancelled"));
      }, { once: true });
    });
  },
  cpu: (payload) => {
    busyLoop(durationMs(payload, "cpu"));
    return NOTHING;
  },
  wordcount: (payload) => encode(countWords(parseText(payload))),
};
