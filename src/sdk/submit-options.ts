// The options of a submission as the SDK takes them, and their checks: every
// field by name (a misspelt one is refused, not ignored) and every range the
// wire's fixed-width fields hold; then the extras block they become on the wire.

import { BackoffType, type SubmitExtras } from "../protocol/messages.ts";

/** Ranges are checked before sending (checkSubmitOptions): out of range is E_BAD_REQUEST, never wrapped. */
export interface SubmitOptions {
  /** 0 (highest) to 255. Default 100. */
  priority?: number;
  /** 1 to 65535; 0 or absent: the coordinator's default. */
  maxAttempts?: number;
  /** Per attempt, 1 to 2^32-1 ms; 0 or absent: the coordinator's default. */
  timeoutMs?: number;
  /** A retried submission with the same key returns the original task. */
  idempotencyKey?: string;
  /** Run no sooner than this long from now. */
  delayMs?: number;
  /** Run no sooner than this time (ms since the epoch, or a Date); converted to a delay on this machine's clock. */
  runAt?: number | Date;
  /** Fail with E_DEADLINE unless started within this long from now. */
  deadlineMs?: number;
  /** ... or by this time (ms since the epoch, or a Date). */
  deadline?: number | Date;
  /** Delay between attempts: exponential (doubling from delayMs, jittered, capped) or fixed. */
  backoff?: { type: "exponential" | "fixed"; delayMs: number; maxDelayMs?: number };
  /** Only workers advertising all these tags run it. */
  tags?: string[];
  /** Task ids (of the same shard) that must complete first. */
  dependsOn?: number[];
}

const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const isIntIn = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
/** A number from 0 to max: NaN and the infinities fail one of the two comparisons. */
const isIn = (v: unknown, max: number): boolean => typeof v === "number" && v >= 0 && v <= max;

/** Every field of SubmitOptions: a misspelt one ({priorty: 3}) is refused, not silently ignored. */
export const SUBMIT_OPTION_FIELDS: readonly string[] = [
  "priority", "maxAttempts", "timeoutMs", "idempotencyKey", "delayMs", "runAt", "deadlineMs", "deadline", "backoff", "tags", "dependsOn",
];
/** Every field of a WorkflowTask (no runAt or deadline: a workflow's nodes take relative times). */
export const WORKFLOW_TASK_FIELDS: readonly string[] = [
  "type", "payload", "priority", "maxAttempts", "timeoutMs", "idempotencyKey", "delayMs", "deadlineMs", "backoff", "tags", "dependsOn",
];
export const BACKOFF_FIELDS: readonly string[] = ["type", "delayMs", "maxDelayMs"];

/** The first key of `value` that is not one of `known`, or undefined. */
export function unknownField(value: object, known: readonly string[]): string | undefined {
  return Object.keys(value).find((key) => !known.includes(key));
}

/**
 * Why these options cannot be sent, or undefined. A field the options do not have
 * is refused by name (it would be ignored: a typo would quietly change nothing).
 * The wire's fields have fixed widths (u8 priority, u16 maxAttempts, u32 times)
 * and would silently wrap an out-of-range value (priority 300 would arrive as 44),
 * so each is checked here.
 */
export function checkSubmitOptions(o: Omit<SubmitOptions, "dependsOn">, nowMs = Date.now(), known: readonly string[] = SUBMIT_OPTION_FIELDS): string | undefined {
  const bad = (field: string, range: string, value: unknown) => `${field} must be ${range}, not ${String(value)}`;
  if (o === null || typeof o !== "object") return `options must be an object, not ${String(o)}`;
  const stray = unknownField(o, known);
  if (stray !== undefined) return `unknown option "${stray}" (known: ${known.join(", ")})`;
  if (o.priority !== undefined && !isIntIn(o.priority, U8_MAX)) return bad("priority", "an integer from 0 (highest) to 255", o.priority);
  if (o.maxAttempts !== undefined && !isIntIn(o.maxAttempts, U16_MAX)) {
    return bad("maxAttempts", "an integer from 1 to 65535 (0: the coordinator's default)", o.maxAttempts);
  }
  if (o.timeoutMs !== undefined && !isIntIn(o.timeoutMs, U32_MAX)) return bad("timeoutMs", `an integer from 1 to ${U32_MAX} ms (0: the default)`, o.timeoutMs);
  if (o.delayMs !== undefined && !isIn(o.delayMs, U32_MAX)) return bad("delayMs", `a number of ms from 0 to ${U32_MAX}`, o.delayMs);
  if (o.deadlineMs !== undefined && !isIn(o.deadlineMs, U32_MAX)) return bad("deadlineMs", `a number of ms from 0 to ${U32_MAX}`, o.deadlineMs);
  for (const field of ["runAt", "deadline"] as const) {
    const at = o[field];
    if (at === undefined) continue;
    const ms = at instanceof Date ? at.getTime() : at;
    // Sent as a u32 delay from now: up to about 49.7 days ahead.
    if (!isIn(ms, nowMs + U32_MAX)) return bad(field, `a time in ms since the epoch (or a valid Date), at most ${U32_MAX} ms from now`, at);
  }
  const b = o.backoff;
  if (b !== undefined) {
    if (b === null || typeof b !== "object") return bad("backoff", "an object", b);
    const strayBackoff = unknownField(b, BACKOFF_FIELDS);
    if (strayBackoff !== undefined) return `unknown option "backoff.${strayBackoff}" (known: ${BACKOFF_FIELDS.join(", ")})`;
    if (b.type !== "exponential" && b.type !== "fixed") return bad("backoff.type", `"exponential" or "fixed"`, b.type);
    if (!isIn(b.delayMs, U32_MAX)) return bad("backoff.delayMs", `a number of ms from 0 to ${U32_MAX}`, b.delayMs);
    if (b.maxDelayMs !== undefined && !isIn(b.maxDelayMs, U32_MAX)) return bad("backoff.maxDelayMs", `a number of ms from 0 to ${U32_MAX}`, b.maxDelayMs);
  }
  return undefined;
}

/** Milliseconds from now until an absolute time (never negative, at most what a u32 holds). */
function untilMs(at: number | Date): number {
  const ms = (at instanceof Date ? at.getTime() : at) - Date.now();
  return Math.min(U32_MAX, Math.max(0, Math.ceil(ms)));
}

/** The extras block of a submission, or undefined when no option needs it (the common, shorter case). */
export function extrasOf(o: SubmitOptions): SubmitExtras | undefined {
  if (o.delayMs === undefined && o.runAt === undefined && o.deadlineMs === undefined && o.deadline === undefined
    && o.backoff === undefined && o.tags === undefined && o.dependsOn === undefined) return undefined;
  const delayMs = o.runAt !== undefined ? untilMs(o.runAt) : Math.max(0, o.delayMs ?? 0);
  // A deadline already past still has to reach the coordinator as "past": 1 ms is the earliest it can say.
  const deadlineMs = o.deadline !== undefined ? Math.max(1, untilMs(o.deadline)) : Math.max(0, o.deadlineMs ?? 0);
  const b = o.backoff;
  return {
    delayMs: Math.min(U32_MAX, delayMs),
    deadlineMs: Math.min(U32_MAX, deadlineMs),
    backoffType: b === undefined ? BackoffType.NONE : b.type === "fixed" ? BackoffType.FIXED : BackoffType.EXPONENTIAL,
    backoffDelayMs: Math.min(U32_MAX, b?.delayMs ?? 0),
    backoffMaxDelayMs: Math.min(U32_MAX, b?.maxDelayMs ?? 0),
    tags: o.tags ?? [],
    dependsOn: o.dependsOn ?? [],
  };
}
