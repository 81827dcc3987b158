// Starting an executor over its rings: on an executor thread (handler modules,
// as the worker binary runs them) or on the main thread (handler functions an
// in-process worker was given). Either way the main thread gets the same
// control, and the task types the executor can run once it is ready.

import type { Logger } from "../cli/log.ts";
import type { BuiltinHandler } from "./builtin-tasks.ts";
import { Executor as ExecutorLoop, type ExecutorConfig, type ExecutorMessage } from "./executor.ts";
import type { ExecutorInit } from "./executor-thread.ts";

/** What the main thread asks of an executor besides its rings: a thread, or the loop itself when in-process. */
export interface ExecutorControl {
  abort(taskId: number): void;
  terminate(): void;
}

export interface StartedExecutor {
  control: ExecutorControl;
  /** The task types it runs, once it is ready. */
  started: Promise<string[]>;
}

type Progress = { taskId: number; attempt: number; value: number };

/** An executor on the main thread, over the same rings: the handlers are the caller's own functions. */
export function startInProcessExecutor(config: ExecutorConfig, handlers: Record<string, BuiltinHandler>, onProgress: (p: Progress) => void): StartedExecutor {
  const loop = new ExecutorLoop(config, handlers, (msg) => {
    if ("progress" in msg) onProgress(msg.progress);
  });
  void loop.run();
  return { control: { abort: (id) => loop.abort(id), terminate: () => loop.stop() }, started: Promise.resolve(Object.keys(handlers)) };
}

/** An executor thread loading `handlerModules`; one that dies calls `onFatal` (its tasks would be stranded). */
export function startExecutorThread(
  index: number, config: ExecutorConfig, module: string | URL, handlerModules: string[],
  log: Logger, onProgress: (p: Progress) => void, onFatal: (err: Error) => void,
): StartedExecutor {
  const thread = new Worker(module);
  const started = new Promise<string[]>((resolve, reject) => {
    thread.addEventListener("message", (event: MessageEvent<ExecutorMessage>) => {
      const msg = event.data;
      if ("ready" in msg) resolve(msg.types);
      else if ("failed" in msg) reject(new Error(msg.failed));
      else onProgress(msg.progress);
    });
    // A dead executor would strand every task given to it: fail the whole worker so it is restarted.
    thread.addEventListener("error", (event) => {
      const message = (event as ErrorEvent).message;
      log.error("executor thread failed", { index, error: message });
      reject(new Error(`executor thread ${index} failed: ${message}`));
      onFatal(new Error(`executor thread ${index} failed: ${message}`));
    });
  });
  const init: ExecutorInit = { ...config, index, handlerModules };
  thread.postMessage(init);
  return { control: { abort: (taskId) => thread.postMessage({ abort: taskId }), terminate: () => void thread.terminate() }, started };
}
