// Types for handlers (import from "bun-task-scheduler/handlers"): what a handler
// loaded by `worker --handlers FILE` or given to createWorker receives, and a way
// to tie a module's handlers to the same task-type map the client is typed with.

import type { HandlerContext } from "../worker/handlers.ts";
import type { PayloadOf, ResultOf, TaskName, TaskTypes } from "./task-handle.ts";

export type { HandlerContext, UserHandler } from "../worker/handlers.ts";

/** One handler per task type of M, each typed by that type's payload and result. */
export type Handlers<M extends TaskTypes<M>> = {
  [K in TaskName<M>]: (payload: PayloadOf<M, K>, ctx: HandlerContext) => ResultOf<M, K> | Promise<ResultOf<M, K>>;
};

/** Returns its argument: only there so a handler module is checked against M (`export default defineHandlers<Tasks>({ ... })`). */
export function defineHandlers<M extends TaskTypes<M>>(handlers: Handlers<M>): Handlers<M> {
  return handlers;
}
