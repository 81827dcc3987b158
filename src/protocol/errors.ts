// Every error a user or peer can cause: a stable code plus a sentence.
// Codes travel in ERROR messages; the sentence is for humans.

export const ERROR_CODES = {
  E_BAD_FRAME: "the frame could not be decoded",
  E_TOO_LARGE: "a frame, string or payload is over its size limit",
  E_BAD_VERSION: "the peer speaks a protocol version this process does not",
  E_BAD_HELLO: "the first message on a connection must be a valid HELLO",
  E_UNAUTHORIZED: "missing or wrong token for this role",
  E_HANDSHAKE_TIMEOUT: "the peer did not complete its HELLO in time",
  E_TOO_MANY_CONNECTIONS: "the server holds as many connections of this kind as it accepts",
  E_IDLE_TIMEOUT: "the client sent nothing and awaited nothing for longer than the server allows",
  E_QUEUE_FULL: "the shard's queue is full; retry later",
  E_NOT_PRIMARY: "this coordinator is not the primary of its shard",
  E_UNKNOWN_TASK: "no task with that id is known",
  E_CYCLE: "the workflow's dependencies form a cycle",
  E_DEADLINE: "the task was not started before its deadline",
  E_DEPENDENCY: "a task this one depends on failed or was cancelled",
  E_CANCELLED: "the task was cancelled",
  E_UNKNOWN_SHARD: "no coordinator serves that shard",
  E_UNAVAILABLE: "no coordinator could be reached",
  E_BAD_REQUEST: "the request is malformed or has an invalid field",
  E_NO_HANDLER: "no handler is registered for that task type",
  E_TIMEOUT: "the task ran past its timeout",
  E_WORKER_LOST: "the worker running the task went away",
  E_HANDLER: "the task's handler threw",
  E_SLOW_READER: "the peer read too slowly and its send buffer hit the limit",
  E_SHUTTING_DOWN: "the process is shutting down",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** A protocol violation or user error carrying its code. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = ERROR_CODES[code]) {
    super(message);
    this.code = code;
    this.name = "ProtocolError";
  }
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "E_QUEUE_FULL", "E_NOT_PRIMARY", "E_UNAVAILABLE", "E_SHUTTING_DOWN",
  // The connection was dropped for a passing reason; a new one may do better.
  "E_SLOW_READER", "E_TOO_MANY_CONNECTIONS", "E_HANDSHAKE_TIMEOUT", "E_IDLE_TIMEOUT",
]);

/** Errors worth a client's retry: the same request may succeed later. */
export function isRetryable(code: ErrorCode): boolean {
  return RETRYABLE.has(code);
}
