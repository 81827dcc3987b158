// The client's one-shot commands (everything but the load generator): each
// connects, does one thing through the SDK, prints JSON, and returns an exit code.

import type { ClientSecurity } from "../net/net-flags.ts";
import { readFileSync } from "node:fs";
import { decode } from "@msgpack/msgpack";
import { UsageError, type FlagValues } from "../cli/flags.ts";
import type { HostPort } from "../net/endpoints.ts";
import { SchedulerClient, TaskError, type SubmitOptions, type TaskOutcome, type WorkflowTask } from "../sdk/client.ts";
import { publicView } from "../protocol/public-view.ts";


export const COMMANDS = ["stats", "status", "submit", "wait", "cancel", "workflow", "dlq"] as const;

export const COMMANDS_HELP = `Commands (print JSON; exit 0 on success, 1 on a refusal or failed task, 2 on bad usage):
  client stats                          the cluster's stats
  client status ID                      one task: state, attempts, errors, result
  client submit TYPE [--payload JSON] [--priority N] [--delay-ms N] [--deadline-ms N]
                [--backoff exponential:100:5000] [--task-tags gpu] [--depends-on ID,ID] [--key K] [--wait]
  client wait ID                        wait for a task to end; its outcome
  client cancel ID                      cancel a task (a running one is aborted)
  client workflow FILE.json [--wait]    create a DAG at once: a JSON array of {type, payload?, dependsOn?: [{node: i} | {taskId}], ...}
  client dlq list [--offset N] [--limit N]
  client dlq show ID                    (same as status)
  client dlq requeue ID                 give a dead-lettered task its attempts again
  client dlq purge [ID...]              forget dead-lettered tasks (all without ids)`;

export async function runCommand(words: string[], values: FlagValues, address: HostPort, security: ClientSecurity): Promise<number> {
  const [command, ...args] = words;
  let client: SchedulerClient | undefined;
  try {
    const request = plan(command!, args, values); // usage errors before connecting
    client = await SchedulerClient.connect(address, security);
    print(await request(client));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`client: ${err.message}\n`);
      return 2;
    }
    if (err instanceof FailedTask) {
      print(err.outcome);
      return 1;
    }
    const what = err instanceof TaskError ? err.message : `cannot reach ${address.host}:${address.port}: ${(err as Error).message}`;
    process.stderr.write(`client: ${what}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

class FailedTask extends Error {
  constructor(readonly outcome: unknown) {
    super("task failed");
  }
}

type Request = (c: SchedulerClient) => Promise<unknown>;

function plan(command: string, args: string[], v: FlagValues): Request {
  const id = (i = 0): number => {
    const text = args[i];
    const n = Number(text);
    if (text === undefined || !Number.isSafeInteger(n) || n < 0) throw new UsageError(`${command} needs a task id`);
    return n;
  };
  switch (command) {
    case "stats":
      return (c) => c.stats();
    case "status":
      return (c) => c.task(id());
    case "wait":
      return async (c) => outcomeOrThrow(await c.wait(id()));
    case "cancel": {
      const taskId = id();
      return async (c) => ({ taskId, state: await c.cancel(taskId) });
    }
    case "submit":
      return submitRequest(args, v);
    case "workflow":
      return workflowRequest(args, v);
    case "dlq":
      return dlqRequest(args, v);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function submitRequest(args: string[], v: FlagValues): Request {
  const type = args[0];
  if (type === undefined) throw new UsageError("submit needs a task type");
  const payload = parsePayload(v.payload as string);
  const options: SubmitOptions = {
    priority: v.priority as number,
    maxAttempts: v["max-attempts"] as number,
    timeoutMs: v["timeout-ms"] as number,
    idempotencyKey: (v.key as string) || undefined,
  };
  if (v["delay-ms"]) options.delayMs = v["delay-ms"] as number;
  if (v["deadline-ms"]) options.deadlineMs = v["deadline-ms"] as number;
  if (v.backoff) options.backoff = parseBackoff(v.backoff as string);
  if (v["task-tags"]) options.tags = list(v["task-tags"] as string);
  if (v["depends-on"]) options.dependsOn = list(v["depends-on"] as string).map(Number);
  return async (c) => {
    if (v.wait) return outcomeOrThrow(await c.run(type, payload, options));
    return { taskId: await c.submit(type, payload, options) };
  };
}

function workflowRequest(args: string[], v: FlagValues): Request {
  if (args[0] === undefined) throw new UsageError("workflow needs a JSON file");
  let tasks: WorkflowTask[];
  try {
    tasks = JSON.parse(readFileSync(args[0], "utf8"));
  } catch (err) {
    throw new UsageError(`cannot read workflow ${args[0]}: ${(err as Error).message}`);
  }
  if (!Array.isArray(tasks)) throw new UsageError("a workflow file holds a JSON array of tasks");
  return async (c) => {
    const taskIds = await c.workflow(tasks);
    if (!v.wait) return { taskIds };
    const outcomes = await Promise.all(taskIds.map((id) => c.wait(id)));
    const shown = outcomes.map(showOutcome);
    if (outcomes.some((o) => !o.ok)) throw new FailedTask({ taskIds, outcomes: shown });
    return { taskIds, outcomes: shown };
  };
}

function dlqRequest(args: string[], v: FlagValues): Request {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list":
      return (c) => c.deadLetters(v.offset as number, v.limit as number);
    case "show":
      return plan("status", rest, v);
    case "requeue": {
      const taskId = Number(rest[0]);
      if (!Number.isSafeInteger(taskId)) throw new UsageError("dlq requeue needs a task id");
      return async (c) => {
        await c.requeue(taskId);
        return { taskId, requeued: true };
      };
    }
    case "purge": {
      const ids = rest.map(Number);
      if (ids.some((n) => !Number.isSafeInteger(n))) throw new UsageError("dlq purge takes task ids");
      return async (c) => ({ purged: await c.purgeDeadLetters(ids) });
    }
    default:
      throw new UsageError("dlq needs list, show ID, requeue ID or purge [ID...]");
  }
}

function outcomeOrThrow(o: TaskOutcome): unknown {
  if (!o.ok) throw new FailedTask(showOutcome(o));
  return showOutcome(o);
}

/** Results of built-in tasks are msgpack; show them decoded when they are, as bytes otherwise. */
function showOutcome(o: TaskOutcome): Record<string, unknown> {
  let result: unknown = o.output.length === 0 ? null : Array.from(o.output);
  try {
    if (o.output.length > 0) result = decode(o.output);
  } catch {
    // not msgpack: keep the bytes
  }
  return { taskId: o.taskId, ok: o.ok, attempts: o.attempts, result, code: o.code, error: o.error };
}

function parsePayload(text: string): unknown {
  if (text === "") return undefined;
  if (text.startsWith("@")) return new Uint8Array(readFileSync(text.slice(1)));
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`--payload is not JSON: ${text}`);
  }
}

function parseBackoff(text: string): NonNullable<SubmitOptions["backoff"]> {
  const [type, delay, max] = text.split(":");
  const delayMs = Number(delay);
  if ((type !== "exponential" && type !== "fixed") || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new UsageError(`--backoff must be exponential:DELAY_MS[:MAX_MS] or fixed:DELAY_MS, not "${text}"`);
  }
  return { type, delayMs, maxDelayMs: max === undefined ? undefined : Number(max) };
}

function list(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** Without wire-only fields (requestId): what a person or a script reads. */
function print(value: unknown): void {
  process.stdout.write(JSON.stringify(publicView(value), (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v), 2) + "\n");
}
