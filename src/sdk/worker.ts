// In-process workers (BullMQ's `new Worker(queue, processor)`): the caller's own
// handler functions, run in its own process by the same node the `worker`
// binary runs (links, shared credit, fencing, failover, drain), its executor
// loop on the main thread, since functions cannot be posted to a thread. Given
// module paths instead, the handlers run on executor threads, as in the binary.

import { resolve } from "node:path";
import { Logger, type LogLevel } from "../cli/log.ts";
import { parseHostPort, type HostPort } from "../net/endpoints.ts";
import { inProcessHandlers } from "../worker/handlers.ts";
import { workerConfig } from "../worker/main.ts";
import { WORKER_FLAGS } from "../worker/flag-table.ts";
import { WorkerNode, type DrainReport, type WorkerCounters } from "../worker/worker.ts";
import type { Handlers } from "./handlers.ts";
import type { AnyTasks, TaskTypes } from "./task-handle.ts";

/** close() waits this long by default for running tasks before it disconnects (they are then retried elsewhere). */
export const CLOSE_TIMEOUT_MS_DEFAULT = 30_000;

export interface WorkerOptions<M extends TaskTypes<M> = AnyTasks> {
  /** Coordinators, "host:port" (a worker serves coordinators, not routers; every shard's primary and backups). */
  servers: Array<string | HostPort>;
  /**
   * One function per task type this worker runs, besides the built-in ones (noop, sleep, cpu,
   * wordcount): they run on the main thread. Or paths of handler modules (as `worker --handlers`):
   * each executor thread loads them, for CPU-bound handlers.
   */
  handlers: Partial<Handlers<M>> | string | string[];
  /** Tasks one executor holds at once (async handlers overlap); split among the coordinators by demand. Default 128. */
  concurrency?: number;
  /**
   * Executors, each holding `concurrency` tasks. With module paths, executor threads (default 2,
   * as the binary); with functions they share the main thread, so more than 1 only adds slots (default 1).
   */
  threads?: number;
  /** Presented in the HELLO: a token with the worker role (when the cluster has tokens). */
  token?: string;
  /** PEM text of the CA that signed the coordinators' certificates: connect over TLS. */
  tlsCa?: string;
  /** Capability tags announced to coordinators. */
  tags?: string[];
  /** Names this worker in logs and stats. Default "worker-<pid>". */
  nodeId?: string;
  /** Least severe log line written to stderr. Default "warn". */
  logLevel?: LogLevel;
}

/** A running in-process worker. */
export interface InProcessWorker {
  /** Task types announced to the coordinators (built-ins and the given handlers). */
  readonly types: readonly string[];
  /** Tasks running now. */
  readonly running: number;
  readonly counters: Readonly<WorkerCounters>;
  /**
   * Drains, then disconnects: the coordinators send nothing new, running tasks
   * finish and their results go out, those held while a shard had no primary
   * included (at most timeoutMs for all of it). Any still running then, and any
   * result not delivered, are retried elsewhere once their leases end; the
   * report counts them. Resolves when disconnected.
   */
  close(timeoutMs?: number): Promise<DrainReport>;
}

/** Starts serving the coordinators; resolves once the executor loops run (the links connect and reconnect on their own). */
export async function createWorker<M extends TaskTypes<M> = AnyTasks>(options: WorkerOptions<M>): Promise<InProcessWorker> {
  if (options.servers.length === 0) throw new Error("createWorker: servers is empty (give the coordinators' host:port)");
  for (const [name, value] of [["concurrency", options.concurrency], ["threads", options.threads]] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`createWorker: ${name} must be a whole number from 1, not ${value}`);
  }
  const modules = typeof options.handlers === "string" ? [options.handlers] : Array.isArray(options.handlers) ? options.handlers : undefined;
  // Functions: checked here, so a bad table rejects before anything connects. Modules: each thread checks them at start.
  const handlers = modules === undefined ? inProcessHandlers(options.handlers as Record<string, unknown>) : undefined;
  // The binary's flag defaults, so both kinds of worker behave alike unless told otherwise.
  const defaults = Object.fromEntries(WORKER_FLAGS.map((f) => [f.name, f.default]));
  const threads = options.threads ?? (modules === undefined ? 1 : 2);
  const config = {
    ...workerConfig({ ...defaults, "thread-concurrency": options.concurrency ?? 128, threads }, executorThreadModule()),
    coordinators: options.servers.map((s) => (typeof s === "string" ? parseHostPort(s) : s)),
    nodeId: options.nodeId ?? `worker-${process.pid}`,
    tags: options.tags ?? [],
    token: options.token,
    tls: options.tlsCa === undefined ? undefined : { ca: options.tlsCa },
    handlerModules: (modules ?? []).map((m) => resolve(m)),
    inProcessHandlers: handlers,
  };
  const node = new WorkerNode(config, new Logger("worker", options.logLevel ?? "warn"));
  try {
    await node.start();
  } catch (err) {
    node.stop(); // a module that failed on one thread: the others are ended too
    throw err;
  }
  let closing: Promise<DrainReport> | undefined;
  return {
    get types() {
      return node.types;
    },
    get running() {
      return node.running;
    },
    counters: node.counters,
    close: (timeoutMs = CLOSE_TIMEOUT_MS_DEFAULT) => (closing ??= node.drain(timeoutMs)),
  };
}

/**
 * The executor thread's module: beside this file's bundle in the package's lib/
 * (scripts/build-sdk.ts builds it there), or the source file when run from source.
 */
function executorThreadModule(): URL {
  const fromSource = import.meta.url.endsWith(".ts");
  return new URL(fromSource ? "../worker/executor-thread.ts" : "./executor-thread.js", import.meta.url);
}
