// What a message looks like to people: the same value without the fields that
// only pair a reply with its request on the wire (they mean nothing outside a
// connection). Used by the REST API and the CLI's JSON output.

/** Wire-only fields, dropped at any depth. */
const WIRE_ONLY_FIELDS: ReadonlySet<string> = new Set(["requestId"]);

/** The type of a value once publicView has dropped its wire-only fields. */
export type PublicView<T> = T extends ArrayBufferView
  ? T
  : T extends readonly (infer U)[]
    ? PublicView<U>[]
    : T extends object
      ? { [K in keyof T as K extends "requestId" ? never : K]: PublicView<T[K]> }
      : T;

export function publicView<T>(value: T): PublicView<T> {
  return strip(value) as PublicView<T>;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!WIRE_ONLY_FIELDS.has(k)) out[k] = strip(v);
  return out;
}
