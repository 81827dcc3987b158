// Small helpers shared by the unit, fuzz and sim suites: seeded random bytes,
// asserting a ProtocolError code, and waiting for another thread with a deadline.

import { expect } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { ProtocolError, type ErrorCode } from "../../src/protocol/errors.ts";

/** `n` bytes from the seeded PRNG: the same seed gives the same bytes. */
export function randomBytes(prng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = prng.int(256);
  return out;
}

/** Integer in [min, max] inclusive. */
export function randomInt(prng: Prng, min: number, max: number): number {
  return min + prng.int(max - min + 1);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Runs `fn` and returns the ProtocolError it threw; fails the test if it threw anything else or nothing. */
export function catchProtocolError(fn: () => unknown): ProtocolError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) throw new Error("expected a ProtocolError, but nothing was thrown");
  if (!(thrown instanceof ProtocolError)) throw new Error(`expected a ProtocolError, got ${String(thrown)}`, { cause: thrown });
  return thrown;
}

export function expectProtocolError(fn: () => unknown, code: ErrorCode): ProtocolError {
  const err = catchProtocolError(fn);
  expect(err.code).toBe(code);
  return err;
}

/**
 * Polls `check` until it returns true or `deadlineMs` passes. For waiting on
 * another thread or process: the deadline bounds the test, it is not a sleep
 * that correctness depends on.
 */
export async function waitFor(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const until = performance.now() + deadlineMs;
  while (!check()) {
    if (performance.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** The promise `call` returns, checking it did not throw synchronously instead (every SDK method must reject, never throw). */
export function rejectsNotThrows<T>(call: () => Promise<T>): Promise<T> {
  let promise: Promise<T> | undefined;
  let thrown: unknown;
  try {
    promise = call();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeUndefined();
  return promise!;
}
