// Run-time assertions for the core, as TigerBeetle keeps them: cheap checks of
// preconditions and counters, always on, in the hot path; a failure is a bug in
// this process, never the fault of an input, so it throws an AssertionError that
// the shells treat as fatal (src/net/connection.ts) rather than answering one
// request with an error and serving on from a state known to be wrong.
//
// The call passes the invariant's name and the values involved as separate
// arguments, not a built message: a template string would be built (allocated)
// on every call, and these run per task. The message is made only on failure.

/** An invariant of the core does not hold: a bug, not bad input. */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/**
 * Throws an AssertionError naming `invariant` and the values given (label,
 * value pairs, at most three) unless `ok`. Pass numbers, strings or booleans:
 * no object or array is made per call.
 */
export function assert(
  ok: boolean, invariant: string,
  label1?: string, value1?: unknown, label2?: string, value2?: unknown, label3?: string, value3?: unknown,
): asserts ok {
  if (ok) return;
  throw new AssertionError(assertionMessage(invariant, label1, value1, label2, value2, label3, value3));
}

function assertionMessage(invariant: string, ...pairs: unknown[]): string {
  const values: string[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) if (pairs[i] !== undefined) values.push(`${String(pairs[i])} ${String(pairs[i + 1])}`);
  return `invariant broken: ${invariant}${values.length === 0 ? "" : ` (${values.join(", ")})`}`;
}
