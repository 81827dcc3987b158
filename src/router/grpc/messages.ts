// gRPC messages to and from what the REST API takes and shows: a TaskSpec
// becomes the REST body it stands for (then checked by the same parseTask),
// and a task is shown with the same JSON result.

import type { TaskInfo } from "../../protocol/messages.ts";
import { HttpError, jsonResult } from "../task-request.ts";

/** A TaskSpec as proto-loader decodes it (camelCase; unset fields absent). */
export interface TaskSpecMessage {
  type?: string;
  payloadJson?: string;
  priority?: { value?: number };
  maxAttempts?: number;
  timeoutMs?: number;
  idempotencyKey?: string;
  delayMs?: number;
  deadlineMs?: number;
  backoff?: { type?: string; delayMs?: number; maxDelayMs?: number };
  tags?: string[];
  dependsOn?: number[];
}

const ZERO_IS_UNSET = ["maxAttempts", "timeoutMs", "delayMs", "deadlineMs"] as const;

/** The REST body a TaskSpec stands for: numbers left 0 and strings left empty are left out, as proto3 cannot tell them from unset. */
export function restBodyOf(spec: TaskSpecMessage, where: string): Record<string, unknown> {
  const body: Record<string, unknown> = { type: spec.type ?? "" };
  if (spec.payloadJson) body.payload = parseJson(spec.payloadJson, `${where}.payload_json`);
  if (spec.priority !== undefined) body.priority = spec.priority.value ?? 0;
  for (const key of ZERO_IS_UNSET) if (spec[key]) body[key] = spec[key];
  if (spec.idempotencyKey) body.idempotencyKey = spec.idempotencyKey;
  if (spec.backoff !== undefined) {
    const { type = "", delayMs = 0, maxDelayMs } = spec.backoff;
    body.backoff = maxDelayMs ? { type, delayMs, maxDelayMs } : { type, delayMs };
  }
  if (spec.tags?.length) body.tags = spec.tags;
  if (spec.dependsOn?.length) body.dependsOn = spec.dependsOn;
  return body;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "E_BAD_REQUEST", `${where} is not valid JSON`);
  }
}

/** A task id from a request: a uint64 beyond the safe integers is no task of ours. */
export function taskIdOf(value: unknown, where = "task_id"): number {
  const id = value ?? 0;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) throw new HttpError(400, "E_BAD_REQUEST", `${where} is not a task id`);
  return id;
}

/** JSON text of a completed task's result ("" otherwise). */
function resultJsonOf(info: TaskInfo): string {
  return info.state === "completed" ? JSON.stringify(jsonResult(info.output)) : "";
}

/** The Task message: the fields GET /v1/tasks/:id shows. */
export function taskMessage(info: TaskInfo): Record<string, unknown> {
  return {
    taskId: info.taskId, type: info.type, state: info.state, attempt: info.attempt, maxAttempts: info.maxAttempts, priority: info.priority,
    submittedAt: info.submittedAt, finishedAt: info.finishedAt, deadline: info.deadline, runAt: info.runAt, tags: info.tags, dependsOn: info.dependsOn,
    resultJson: resultJsonOf(info), error: info.error ?? "", code: info.code ?? "", errors: info.errors, progress: info.progress ?? 0,
  };
}

/** The TaskResult message: the result of a completed task, else its state, error and progress. */
export function taskResultMessage(info: TaskInfo): Record<string, unknown> {
  return { taskId: info.taskId, state: info.state, resultJson: resultJsonOf(info), error: info.error ?? "", progress: info.progress ?? 0 };
}
