// The executor loop: tasks arrive as ASSIGN bodies in an input ring; each
// outcome leaves as a RESULT body in an output ring, which the worker's main
// thread forwards to the coordinator unchanged. Synchronous handlers run inline
// in batches; async ones run concurrently on the event loop. It runs on its own
// thread (executor-thread.ts) or, for in-process workers, on the main thread.

import { ByteWriter } from "../protocol/byte-writer.ts";
import { readAssign, Reader, writeResultBody } from "../protocol/codec.ts";
import { TaskStatus } from "../protocol/messages.ts";
import { SpscRing } from "../ring/spsc-ring.ts";
import type { BuiltinHandler, SyncOrAsync, TaskContext } from "./builtin-tasks.ts";

/** What an executor needs besides its handlers. */
export interface ExecutorConfig {
  tasksIn: SharedArrayBuffer;
  resultsOut: SharedArrayBuffer;
  /** How long an idle executor sleeps before looking again (a bound, not a poll rate: a notify wakes it). */
  idleWaitMs: number;
  /** Tasks taken from the ring per batch before results are published. */
  batchMax: number;
}

/** Messages from an executor to the main thread. */
export type ExecutorMessage =
  /** Loaded and running; `types` are the task types it has handlers for (the worker announces them). */
  | { ready: true; types: string[] }
  | { failed: string }
  | { progress: { taskId: number; attempt: number; value: number } };

/** At most one progress report per task this often: a chatty handler must not flood the coordinator. */
const PROGRESS_INTERVAL_MS = 100;

const utf8 = new TextEncoder();
const NO_INPUTS: Uint8Array[] = [];

/** A handler's context. The AbortController is made only if the handler asks for the signal: most never do. */
class RunningTask implements TaskContext {
  private controller: AbortController | undefined;
  private aborted = false;
  private lastProgressAt = 0;

  constructor(
    readonly taskId: number,
    readonly attempt: number,
    readonly inputs: Uint8Array[],
    private readonly report: (msg: ExecutorMessage) => void,
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.aborted) this.controller.abort();
    return this.controller.signal;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }

  readonly progress = (fraction: number): void => {
    const now = performance.now();
    if (fraction < 1 && now - this.lastProgressAt < PROGRESS_INTERVAL_MS) return;
    this.lastProgressAt = now;
    const value = Math.min(1, Math.max(0, Number(fraction) || 0));
    this.report({ progress: { taskId: this.taskId, attempt: this.attempt, value } });
  };

  readonly log = (message: string, fields: Record<string, unknown> = {}): void => {
    process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level: "info", component: "handler", taskId: this.taskId, attempt: this.attempt, message: String(message), ...fields }) + "\n");
  };
}

export class Executor {
  private readonly tasksIn: SpscRing;
  private readonly resultsOut: SpscRing;
  private readonly reader = new Reader();
  private readonly encoded = new ByteWriter(64 * 1024);
  /** Results the full output ring could not take yet; bounded by the worker's credit. */
  private readonly overflow: Uint8Array[] = [];
  private publishQueued = false;
  private stopped = false;

  constructor(
    private readonly init: ExecutorConfig,
    private readonly handlers: Record<string, BuiltinHandler>,
    /** Progress reports to the worker's main thread (postMessage on a thread, a call when in-process). */
    private readonly report: (msg: ExecutorMessage) => void,
  ) {
    this.tasksIn = new SpscRing(init.tasksIn);
    this.resultsOut = new SpscRing(init.resultsOut);
  }

  /** Ends run() at its next wake (an in-process executor; a thread is terminated instead). */
  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      const taken = this.tasksIn.drain(this.runTask, this.init.batchMax);
      this.publish();
      if (taken > 0) {
        // A whole event-loop turn between batches, so async handlers' timers and completions run.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const wait = this.tasksIn.waitAsync(this.overflow.length > 0 ? 1 : this.init.idleWaitMs);
      if (!wait.ready) await wait.promise;
    }
  }

  private readonly runTask = (data: Uint8Array, start: number, length: number): void => {
    const task = readAssign(this.reader.reset(data, start, start + length));
    const handler = Object.hasOwn(this.handlers, task.type) ? this.handlers[task.type] : undefined;
    let outcome: SyncOrAsync;
    let context: RunningTask | undefined;
    if (handler === undefined) {
      this.finish(task.taskId, task.attempt, TaskStatus.FAILED, utf8.encode(`E_NO_HANDLER: no handler for task type "${task.type}" on this worker`));
      return;
    }
    try {
      // The payload view points into the ring, which the producer reuses: copy for async handlers.
      const inputs = task.inputs.length === 0 ? NO_INPUTS : task.inputs.map((i) => i.slice());
      outcome = handler(task.payload.slice(), (context = new RunningTask(task.taskId, task.attempt, inputs, this.report)));
    } catch (err) {
      this.finish(task.taskId, task.attempt, TaskStatus.FAILED, utf8.encode(describe(err)));
      return;
    }
    if (outcome instanceof Uint8Array) {
      this.finish(task.taskId, task.attempt, TaskStatus.OK, outcome);
      return;
    }
    const { taskId, attempt } = task;
    const running = context!;
    this.running.set(taskId, running);
    outcome.then(
      (output) => this.finishAsync(taskId, attempt, TaskStatus.OK, output),
      (err) => this.finishAsync(taskId, attempt, TaskStatus.FAILED, utf8.encode(describe(err))),
    // An older attempt of the same task ending late must not take a newer attempt's entry (its cancel would no longer reach it).
    ).finally(() => {
      if (this.running.get(taskId) === running) this.running.delete(taskId);
    });
  };

  /** Async tasks in flight, so a cancel can reach them. */
  private readonly running = new Map<number, RunningTask>();

  /** The coordinator cancelled a task: its handler's signal fires (a synchronous handler has already finished). */
  abort(taskId: number): void {
    this.running.get(taskId)?.abort();
  }

  private finish(taskId: number, attempt: number, status: number, output: Uint8Array): void {
    this.encoded.reset();
    writeResultBody(this.encoded, taskId, attempt, status, output instanceof Uint8Array ? output : utf8.encode(String(output)));
    const record = this.encoded.bytes.subarray(0, this.encoded.length);
    if (this.overflow.length > 0 || !this.resultsOut.tryWrite(record)) this.overflow.push(record.slice());
  }

  private finishAsync(taskId: number, attempt: number, status: number, output: Uint8Array): void {
    this.finish(taskId, attempt, status, output);
    if (this.publishQueued) return;
    this.publishQueued = true;
    queueMicrotask(() => {
      this.publishQueued = false;
      this.publish();
    });
  }

  private publish(): void {
    while (this.overflow.length > 0 && this.resultsOut.tryWrite(this.overflow[0]!)) this.overflow.shift();
    this.resultsOut.publish();
  }
}

/** Error text sent to the coordinator is bounded: a stack is enough to debug, not a novel. */
const ERROR_TEXT_MAX = 4096;

function describe(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.length > ERROR_TEXT_MAX ? text.slice(0, ERROR_TEXT_MAX) : text;
}
