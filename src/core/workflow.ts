// Validation of a workflow: a set of new tasks submitted at once whose
// dependencies may name each other (by position) or existing tasks (by id).
// Pure: returns the order to create them in, or why the graph is invalid.

export type DependencyRef = { node: number } | { taskId: number };

export interface WorkflowNode {
  dependsOn: readonly DependencyRef[];
}

export type WorkflowOrder = { ok: true; order: number[] } | { ok: false; code: "E_CYCLE" | "E_BAD_REQUEST"; message: string };

/** Kahn's algorithm over the nodes' references to each other: a topological order, or the cycle's members. */
export function workflowOrder(nodes: readonly WorkflowNode[]): WorkflowOrder {
  const indegree = new Array<number>(nodes.length).fill(0);
  const children: number[][] = nodes.map(() => []);
  for (let i = 0; i < nodes.length; i++) {
    for (const ref of nodes[i]!.dependsOn) {
      if (!("node" in ref)) continue;
      if (!Number.isInteger(ref.node) || ref.node < 0 || ref.node >= nodes.length) {
        return { ok: false, code: "E_BAD_REQUEST", message: `node ${i} depends on node ${ref.node}, which does not exist` };
      }
      if (ref.node === i) return { ok: false, code: "E_CYCLE", message: `node ${i} depends on itself` };
      indegree[i]!++;
      children[ref.node]!.push(i);
    }
  }
  const order: number[] = [];
  const ready = indegree.flatMap((d, i) => (d === 0 ? [i] : []));
  while (ready.length > 0) {
    const i = ready.pop()!;
    order.push(i);
    for (const child of children[i]!) if (--indegree[child]! === 0) ready.push(child);
  }
  if (order.length < nodes.length) {
    const inCycle = indegree.flatMap((d, i) => (d > 0 ? [i] : []));
    return { ok: false, code: "E_CYCLE", message: `dependency cycle among nodes ${inCycle.join(", ")}` };
  }
  return { ok: true, order };
}
