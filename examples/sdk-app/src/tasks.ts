// The task types this application uses, with their payload and result types:
// shared by the client (main.ts) and the handlers (handlers.ts), so both are checked.

export interface Tasks {
  /** Adds two numbers. */
  add: { payload: { a: number; b: number }; result: number };
  /** Fails on purpose, to show a TaskFailedError. */
  explode: { payload: { why: string }; result: never };
}
