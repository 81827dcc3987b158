// The shapes of client requests as the coordinator accepts them: size limits,
// checks of user-supplied workflow nodes (done before anything is logged, so a
// malformed node is a request-level E_BAD_REQUEST, never a log entry), and a
// task as status queries show it.

import { encode } from "@msgpack/msgpack";
import type { Scheduler } from "../core/scheduler.ts";
import type { AttemptError, Task } from "../core/task.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { WORKER_TYPES_MAX } from "./event-log.ts";
import { PROTOCOL_VERSION, ROLES, type Hello, type TaskInfo, type WorkerInfo, type WorkflowNode } from "../protocol/messages.ts";
import { authorizeHello, type Grants, type TokenTable } from "../net/auth.ts";

/** Limits on requests that could otherwise ask for unbounded work. */
export const DLQ_PAGE_MAX = 1000;
/** Foreign parents listed per FOREIGN_WAITS answer: the router asks again on its next round. */
export const FOREIGN_WAITS_PAGE_MAX = 1000;
export const WORKFLOW_NODES_MAX = 10_000;

export function isWorkflowNode(n: unknown): n is WorkflowNode {
  if (n === null || typeof n !== "object" || Array.isArray(n)) return false;
  const node = n as Record<string, unknown>;
  if (typeof node.type !== "string") return false;
  if (node.tags !== undefined && !(Array.isArray(node.tags) && node.tags.every((t) => typeof t === "string"))) return false;
  if (node.dependsOn === undefined) return true;
  return Array.isArray(node.dependsOn) && node.dependsOn.every(isDependencyRef);
}

function isDependencyRef(d: unknown): boolean {
  if (d === null || typeof d !== "object") return false;
  const ref = d as Record<string, unknown>;
  return typeof ref.node === "number" || typeof ref.taskId === "number";
}

export function taskInfo(requestId: number, task: Task): TaskInfo {
  return {
    requestId, taskId: task.id, type: task.type, state: task.state, attempt: task.attempt, maxAttempts: task.maxAttempts,
    priority: task.priority, submittedAt: task.submittedAt, finishedAt: task.finishedAt, deadline: task.deadline, runAt: task.runAt,
    tags: [...task.tags], dependsOn: [...task.dependsOn], output: task.output, errors: task.errors, ...lastError(task),
  };
}

function lastError(task: Task): { code?: string; error?: string } {
  const last = task.errors.at(-1);
  return last === undefined ? {} : { code: last.code, error: `${last.code}: ${last.message}` };
}

/** A failed or cancelled task's TASK_DONE output: msgpack {code, message}, the code a field of its own (TaskDoneFields). */
export function failureOutput(task: Task): Uint8Array {
  const last = task.errors.at(-1);
  if (task.state === "cancelled" || last === undefined) return encode({ code: "E_CANCELLED", message: "the task was cancelled" });
  return encode({ code: last.code, message: last.message });
}

/** An attempt's error as events carry it. */
export function splitAttemptError(e: AttemptError): { code: string; error: string } {
  return { code: e.code, error: e.message };
}

/**
 * Every worker the scheduler knows, as stats show it; `nodeIdOf` names the process on its
 * connection, `heardAt` is when a heartbeat not logged yet came (the scheduler has not seen it).
 */
export function workerInfos(scheduler: Scheduler, nodeIdOf: (workerId: number) => string, heardAt: (workerId: number) => number | undefined, now: number): WorkerInfo[] {
  const workers: WorkerInfo[] = [];
  for (const w of scheduler.allWorkers()) {
    workers.push({
      // Free goes below zero for a moment when a worker's credit shrinks under its running tasks
      // (they finish; no new lease is made): shown as none free, not as more busy than slots.
      id: w.id, nodeId: nodeIdOf(w.id), slots: w.slots, free: Math.max(0, w.free),
      done: w.done, failed: w.failed, heartbeatAgeMs: now - Math.max(w.lastSeenAt, heardAt(w.id) ?? 0), tags: [...w.tags],
      ...(w.types === undefined ? {} : { types: [...w.types] }),
    });
  }
  return workers;
}

/** A worker as its HELLO describes it; `types` undefined: it did not say, and runs any type. */
export interface WorkerShape {
  workerId: number;
  slots: number;
  tags: string[];
  types: string[] | undefined;
}

/**
 * A worker's HELLO, checked: a positive id, a credit within `slotsMax`, task types as names
 * within WORKER_TYPES_MAX. A credit of 0 is a worker that gave its slots to the other
 * coordinators it serves (it moves some here with CREDIT when this one has work).
 */
export function parseWorkerHello(hello: Hello, slotsMax: number): WorkerShape {
  const slots = workerCredit(hello.slots, slotsMax, "E_BAD_HELLO");
  const workerId = Number(hello.workerId);
  if (!Number.isSafeInteger(workerId) || workerId <= 0) throw new ProtocolError("E_BAD_HELLO", "worker HELLO needs a positive integer workerId");
  return { workerId, slots, tags: Array.isArray(hello.tags) ? hello.tags.map(String) : [], types: workerTypes(hello.types) };
}

/** A worker's credit from a HELLO or CREDIT message: an integer from 0 to slotsMax. */
export function workerCredit(value: unknown, slotsMax: number, code: "E_BAD_HELLO" | "E_BAD_REQUEST"): number {
  // A number only: "3", true or [5] are not credits, however Number() would read them.
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > slotsMax) {
    throw new ProtocolError(code, `worker slots must be an integer from 0 to ${slotsMax}`);
  }
  return value;
}

const utf8 = new TextEncoder();

function workerTypes(types: unknown): string[] | undefined {
  if (types === undefined || types === null) return undefined;
  if (!Array.isArray(types) || types.length > WORKER_TYPES_MAX) {
    throw new ProtocolError("E_BAD_HELLO", `worker types must be a list of at most ${WORKER_TYPES_MAX} task type names`);
  }
  for (const t of types) {
    if (typeof t !== "string" || t.length === 0 || utf8.encode(t).length > 255) {
      throw new ProtocolError("E_BAD_HELLO", `worker type ${JSON.stringify(t)} is not a task type name (1 to 255 UTF-8 bytes)`);
    }
  }
  return [...new Set(types as string[])];
}

/**
 * A HELLO to a coordinator of `shard`: our protocol version, a known role, a token
 * that role may use (its grants are returned), and a coordinator peer of the same
 * shard. Anything else is a ProtocolError that closes the connection.
 */
export function checkHello(hello: Hello, tokens: TokenTable, shard: number): Grants {
  if (hello.version !== PROTOCOL_VERSION) {
    throw new ProtocolError("E_BAD_VERSION", `peer speaks protocol version ${hello.version}; this coordinator speaks ${PROTOCOL_VERSION}`);
  }
  if (!ROLES.includes(hello.role)) throw new ProtocolError("E_BAD_HELLO", `unknown role "${String(hello.role)}"`);
  const grants = authorizeHello(tokens, hello.role, hello.token);
  if (hello.role === "coordinator" && Number(hello.shard) !== shard) {
    throw new ProtocolError("E_BAD_HELLO", `coordinator of shard ${String(hello.shard)} cannot peer with shard ${shard}`);
  }
  return grants;
}
