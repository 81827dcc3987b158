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
const utf8 = new TextDecoder();

/** Longest sleep or busy loop a built-in task may ask for: keeps a typo from wedging a thread. */
export const BUILTIN_DURATION_MS_MAX = 60_000;

function durationMs(payload: Uint8Array, type: string): number {
  if (payload.length === 0) return 0;
  const value = decode(payload) as { ms?: unknown } | null;
  const ms = Number(value?.ms ?? 0);
  if (!Number.isFinite(ms) || ms < 0 || ms > BUILTIN_DURATION_MS_MAX) {
    throw new Error(`${type}: payload.ms must be a number from 0 to ${BUILTIN_DURATION_MS_MAX}`);
  }
  return ms;
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
  wordcount: (payload) => encode(countWords(utf8.decode(payload))),
};
