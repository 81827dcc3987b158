// Copying a range of one byte array into another on the hot path. For short
// ranges (task ids, small bodies) a byte loop beats TypedArray.set, which needs
// a view of the source range: one allocation per copy, and garbage to collect.

/** Ranges up to this long are copied byte by byte. */
export const SHORT_COPY_BYTES = 64;

/** Copies source[start, end) into target at `at`. */
export function copyRange(target: Uint8Array, at: number, source: Uint8Array, start: number, end: number): void {
  const n = end - start;
  if (n > SHORT_COPY_BYTES) target.set(source.subarray(start, end), at);
  else for (let i = 0; i < n; i++) target[at + i] = source[start + i]!;
}
