// An executor thread (a Bun Worker): loads the handler modules, then runs the
// executor loop (executor.ts) over the rings the main thread handed it.

import type { BuiltinHandler } from "./builtin-tasks.ts";
import { Executor, type ExecutorConfig, type ExecutorMessage } from "./executor.ts";
import { loadHandlers } from "./handlers.ts";

declare const self: Worker;

export interface ExecutorInit extends ExecutorConfig {
  index: number;
  /** Absolute paths of user handler modules. */
  handlerModules: string[];
}

export type { ExecutorMessage };

let executor: Executor | undefined;

/** The first message starts the executor (after loading user handlers); later ones are cancels ({abort: taskId}). */
self.onmessage = async (event: MessageEvent<ExecutorInit | { abort: number }>) => {
  if ("abort" in event.data) {
    executor?.abort(event.data.abort);
    return;
  }
  let handlers: Record<string, BuiltinHandler>;
  try {
    handlers = await loadHandlers(event.data.handlerModules);
  } catch (err) {
    self.postMessage({ failed: (err as Error).message } satisfies ExecutorMessage);
    return;
  }
  executor = new Executor(event.data, handlers, (msg) => self.postMessage(msg));
  // Tell the main thread this thread loaded and runs: it takes no work before every executor has said so.
  self.postMessage({ ready: true, types: Object.keys(handlers) } satisfies ExecutorMessage);
  void executor.run();
};
