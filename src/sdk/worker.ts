// In-process workers (BullMQ's `new Worker(queue, processor)`): the caller's own
// handler functions, run in its own process by the same node the `worker`
// binary runs (links, shared credit, fencing, failover, drain), its executor
// loop on the main thread, since functions cannot be posted to a thread.

import { Logger, type LogLevel } from "../cli/log.ts";
import { parseHostPort, type HostPort } from "../net/endpoints.ts";
import { inProcessHandlers } from "../worker/handlers.ts";
import { WORKER_FLAGS, workerConfig } from "../worker/main.ts";
import { WorkerNode, type WorkerCounters } from "../worker/worker.ts";
import type { Handlers } from "./handlers.ts";
import type { AnyTasks, TaskTypes } from "./task-handle.ts";

/** close() waits this long by default for running tasks before it disconnects (they are then retried elsewhere). */
export const CLOSE_TIMEOUT_MS_DEFAULT = 30_000;

export interface WorkerOptions<M extends TaskTypes<M> = AnyTasks> {
  /** Coordinators, "host:port" (a worker serves coordinators, not routers; every shard's primary and backups). */
  servers: Array<string | HostPort>;
  /** One function per task type this worker runs, besides the built-in ones (noop, sleep, cpu, wordcount). */
  handlers: Partial<Handlers<M>>;
  /** Tasks run at once (async handlers overlap); split among the coordinators by demand. Default 128. */
  concurrency?: number;
  /** Executor loops: each holds `concurrency` tasks. They share the main thread, so more than 1 only adds slots. Default 1. */
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
   * finish and their results go out (at most timeoutMs); any still running then
   * are retried elsewhere once their leases end. Resolves when disconnected.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** Starts serving the coordinators; resolves once the executor loops run (the links connect and reconnect on their own). */
export async function createWorker<M extends TaskTypes<M> = AnyTasks>(options: WorkerOptions<M>): Promise<InProcessWorker> {
  if (options.servers.length === 0) throw new Error("createWorker: servers is empty (give the coordinators' host:port)");
  for (const [name, value] of [["concurrency", options.concurrency], ["threads", options.threads]] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`createWorker: ${name} must be a whole number from 1, not ${value}`);
  }
  const handlers = inProcessHandlers(options.handlers as Record<string, unknown>);
  // The binary's flag defaults, so both kinds of worker behave alike unless told otherwise.
  const defaults = Object.fromEntries(WORKER_FLAGS.map((f) => [f.name, f.default]));
  const config = {
    ...workerConfig({ ...defaults, concurrency: options.concurrency ?? 128, threads: options.threads ?? 1 }, ""),
    coordinators: options.servers.map((s) => (typeof s === "string" ? parseHostPort(s) : s)),
    nodeId: options.nodeId ?? `worker-${process.pid}`,
    tags: options.tags ?? [],
    token: options.token,
    tls: options.tlsCa === undefined ? undefined : { ca: options.tlsCa },
    inProcessHandlers: handlers,
  };
  const node = new WorkerNode(config, new Logger("worker", options.logLevel ?? "warn"));
  await node.start();
  let closing: Promise<void> | undefined;
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
