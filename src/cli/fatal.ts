// How a server ends on a bug. A broken invariant (an AssertionError from
// src/core) means the state it serves from is wrong: it ends the process at
// once with its own exit status, as TigerBeetle panics, wherever it surfaces
// (a socket callback, a timer, a promise), never answered as one request's error.

import { AssertionError } from "../core/assert.ts";

/** Exit status for a broken invariant: EX_SOFTWARE (sysexits.h), an internal software error. */
export const EXIT_BROKEN_INVARIANT = 70;

/** Writes the error to stderr and exits with EXIT_BROKEN_INVARIANT. */
export function exitOnBrokenInvariant(error: AssertionError): never {
  console.error(error);
  process.exit(EXIT_BROKEN_INVARIANT);
}

/**
 * An uncaught error or rejection (a tick, an etcd answer) ends the process:
 * with EXIT_BROKEN_INVARIANT for a broken invariant, else 1. Explicit rather than
 * left to Bun, which reports an uncaught error and runs on while the entry
 * module still awaits at top level.
 */
export function exitOnUncaughtErrors(): void {
  const end = (err: unknown) => {
    if (err instanceof AssertionError) exitOnBrokenInvariant(err);
    console.error(err);
    process.exit(1);
  };
  process.on("uncaughtException", end);
  process.on("unhandledRejection", end);
}
