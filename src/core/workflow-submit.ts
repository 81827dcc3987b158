// Submitting a workflow: every node created at once or none, and a retried
// submission (recognised by its nodes' idempotency keys) answered with the
// original ids instead of a second copy. The scheduler lends a narrow port.
//
// The rule (docs/scheduling.md, "Workflows and idempotency keys"): keys are
// distinct within a workflow. If no node's key names a task the shard holds,
// the workflow is new. If one does, the workflow must be a retry of the
// submission that created that task: every node must find the task that
// submission created for it, so the retry gets the original ids and nothing is
// created; otherwise it is refused whole (E_BAD_REQUEST). A node never takes
// over a key that names another task.

import type { Refusal, SubmitRequest, WorkflowNodeRequest, WorkflowOutcome } from "./scheduler-types.ts";
import type { Task } from "./task.ts";
import { workflowOrder } from "./workflow.ts";

/** What a workflow submission may read and do in the scheduler. */
export interface WorkflowPort {
  task(taskId: number): Task | undefined;
  /** The held task an idempotency key names. */
  taskWithKey(key: string): Task | undefined;
  /** Why the request cannot be accepted with `adding` new tasks, if it cannot. */
  validate(req: SubmitRequest, adding: number): Refusal | undefined;
  /** A new task record, not yet placed (all of a workflow's are created before any is placed). */
  create(req: SubmitRequest, dependsOn: readonly number[], now: number): Task;
  place(task: Task, now: number): void;
  /** Counts a retried submission answered with the original ids. */
  duplicate(): void;
}

const bad = (message: string): Refusal => ({ ok: false, code: "E_BAD_REQUEST", message });

/**
 * Creates every node of a workflow, or none: nodes may depend on each other
 * (by position) and on existing tasks (by id); a cycle is E_CYCLE.
 */
export function submitWorkflow(port: WorkflowPort, nodes: readonly WorkflowNodeRequest[], now: number): WorkflowOutcome {
  if (nodes.length === 0) return bad("a workflow needs at least one task");
  const order = workflowOrder(nodes);
  if (!order.ok) return order;
  const earlier = earlierSubmission(port, nodes, order.order);
  if (earlier !== undefined) {
    if (earlier.ok) port.duplicate();
    return earlier;
  }
  for (const { dependsOn, ...node } of nodes) {
    const parents = dependsOn.flatMap((r) => ("taskId" in r ? [r.taskId] : []));
    const invalid = port.validate({ ...node, dependsOn: parents, watcher: 0, watchRequestId: 0 }, nodes.length);
    if (invalid !== undefined) return invalid;
  }
  const ids = new Array<number>(nodes.length);
  const created: Task[] = [];
  for (const i of order.order) {
    const { dependsOn, ...node } = nodes[i]!;
    const task = port.create({ ...node, watcher: 0, watchRequestId: 0 }, resolve(dependsOn, ids), now);
    ids[i] = task.id;
    created.push(task);
  }
  for (const task of created) port.place(task, now);
  return { ok: true, taskIds: ids };
}

/**
 * The outcome for a workflow some of whose keys are known: the original ids of
 * the submission that created their tasks, or why it is refused. Undefined:
 * no key names a held task (a new workflow).
 *
 * One submission creates its nodes in creation order (`order`) with
 * consecutive ids, all at one `now`; so the task a known key names gives the
 * id of every node, and each node must find there a held task with its type,
 * key and dependencies, submitted at that same time.
 */
function earlierSubmission(port: WorkflowPort, nodes: readonly WorkflowNodeRequest[], order: readonly number[]): WorkflowOutcome | undefined {
  const nodeWithKey = new Map<string, number>();
  let anchor: { node: number; task: Task } | undefined;
  for (let i = 0; i < nodes.length; i++) {
    const key = nodes[i]!.idempotencyKey;
    if (key === "") continue;
    const other = nodeWithKey.get(key);
    if (other !== undefined) return bad(`nodes ${other} and ${i} have the same idempotency key "${key}"; keys must be distinct`);
    nodeWithKey.set(key, i);
    const task = port.taskWithKey(key);
    if (anchor === undefined && task !== undefined) anchor = { node: i, task };
  }
  if (anchor === undefined) return undefined;
  const rank = new Array<number>(nodes.length);
  order.forEach((node, k) => (rank[node] = k));
  const base = anchor.task.id - rank[anchor.node]!;
  const ids = rank.map((k) => base + k);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    const task = port.task(ids[i]!);
    const same = task !== undefined && task.submittedAt === anchor.task.submittedAt && task.type === node.type
      && task.idempotencyKey === node.idempotencyKey && sameIds(task.dependsOn, resolve(node.dependsOn, ids));
    if (!same) {
      return bad(
        `node ${anchor.node}'s idempotency key "${nodes[anchor.node]!.idempotencyKey}" names task ${anchor.task.id}, but node ${i} does not match `
        + `the task that submission created for it (${ids[i]}: ${task === undefined ? "no longer held" : "a different task"}); `
        + "a retry must repeat the workflow as it was, and a new workflow needs keys no held task has",
      );
    }
  }
  return { ok: true, taskIds: ids };
}

/** A node's parents as task ids: `{taskId}` as is, `{node}` by the id that node has (or had). */
function resolve(refs: WorkflowNodeRequest["dependsOn"], ids: readonly number[]): number[] {
  return refs.map((r) => ("taskId" in r ? r.taskId : ids[r.node]!));
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
