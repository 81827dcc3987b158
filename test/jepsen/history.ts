// The history checker of the fault tests: given what clients were told and what was observed,
// lists every broken promise as a readable sentence. Pure (no IO, no clock): a test records
// events while it runs and checks them at the end.

/** A client was told its keyed submission was accepted as taskId. */
export interface AckEvent {
  kind: "ack";
  key: string;
  taskId: string;
  at: number;
}

/** taskId was seen completed (a status query at the end, a worker's record, ...). */
export interface CompletedEvent {
  kind: "completed";
  key?: string;
  taskId: string;
  at: number;
}

/** `node` acknowledged writes as primary of `shard` over [from, to] (both ends included). */
export interface PrimaryAckEvent {
  kind: "primary-ack";
  shard: number;
  node: string;
  epoch: number;
  from: number;
  to: number;
}

export type HistoryEvent = AckEvent | CompletedEvent | PrimaryAckEvent;

export type ViolationKind = "lost-task" | "key-with-two-tasks" | "two-primaries";

export interface Violation {
  kind: ViolationKind;
  message: string;
}

/** Every violation in `events`, in a stable order: lost tasks, then keys, then primaries. */
export function checkHistory(events: readonly HistoryEvent[]): Violation[] {
  for (const e of events) assertWellFormed(e);
  return [...lostTasks(events), ...keysWithTwoTasks(events), ...overlappingPrimaries(events)];
}

/** A test should fail with every violation at once, not the first. */
export function describeViolations(violations: readonly Violation[]): string {
  if (violations.length === 0) return "history is clean";
  return `${violations.length} violation(s):\n${violations.map((v) => `- [${v.kind}] ${v.message}`).join("\n")}`;
}

function assertWellFormed(e: HistoryEvent): void {
  const bad = (why: string) => new Error(`malformed history event ${JSON.stringify(e)}: ${why}`);
  if (e.kind === "primary-ack") {
    if (!(e.from <= e.to)) throw bad("from is after to");
    return;
  }
  if (e.taskId === "") throw bad("empty taskId");
  if (e.kind === "ack" && e.key === "") throw bad("empty key");
}

/** An acknowledged task must complete: the client was promised it would. */
function lostTasks(events: readonly HistoryEvent[]): Violation[] {
  const completed = new Set(events.filter((e) => e.kind === "completed").map((e) => e.taskId));
  const firstAck = new Map<string, AckEvent>();
  for (const e of events) if (e.kind === "ack" && !firstAck.has(e.taskId)) firstAck.set(e.taskId, e);
  return [...firstAck.values()]
    .filter((ack) => !completed.has(ack.taskId))
    .map((ack) => ({
      kind: "lost-task",
      message: `task ${ack.taskId} (key ${ack.key}) was acknowledged at ${ack.at} but never seen completed`,
    }));
}

/** An idempotency key names one task forever: a retry after a failover must not make a second. */
function keysWithTwoTasks(events: readonly HistoryEvent[]): Violation[] {
  const sightings = new Map<string, Map<string, AckEvent | CompletedEvent>>();
  for (const e of events) {
    if (e.kind === "primary-ack" || e.key === undefined) continue;
    const byTask = sightings.get(e.key) ?? new Map<string, AckEvent | CompletedEvent>();
    if (!byTask.has(e.taskId)) byTask.set(e.taskId, e);
    sightings.set(e.key, byTask);
  }
  const violations: Violation[] = [];
  for (const [key, byTask] of sightings) {
    if (byTask.size < 2) continue;
    const seen = [...byTask.values()].map((e) => `${e.taskId} (${e.kind === "ack" ? "acknowledged" : "completed"} at ${e.at})`);
    violations.push({ kind: "key-with-two-tasks", message: `key ${key} maps to ${byTask.size} task ids: ${seen.join(", ")}` });
  }
  return violations;
}

/** At most one node may acknowledge as primary of a shard at any instant, whatever the epochs say. */
function overlappingPrimaries(events: readonly HistoryEvent[]): Violation[] {
  const byShard = new Map<number, PrimaryAckEvent[]>();
  for (const e of events) if (e.kind === "primary-ack") byShard.set(e.shard, [...(byShard.get(e.shard) ?? []), e]);
  const violations: Violation[] = [];
  for (const [shard, intervals] of [...byShard].sort(([a], [b]) => a - b)) {
    for (const [a, b] of overlappingPairs(intervals)) {
      violations.push({
        kind: "two-primaries",
        message:
          `shard ${shard} had two primaries at once: ${a.node} (epoch ${a.epoch}) over [${a.from}, ${a.to}] ` +
          `and ${b.node} (epoch ${b.epoch}) over [${b.from}, ${b.to}], overlapping over [${b.from}, ${Math.min(a.to, b.to)}]`,
      });
    }
  }
  return violations;
}

/** Pairs from different nodes whose closed intervals meet, `a` starting first. Sorted by start, so the inner loop stops at the first interval starting after `a` ends. */
function overlappingPairs(intervals: readonly PrimaryAckEvent[]): [PrimaryAckEvent, PrimaryAckEvent][] {
  const sorted = [...intervals].sort((x, y) => x.from - y.from || x.to - y.to);
  const pairs: [PrimaryAckEvent, PrimaryAckEvent][] = [];
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    for (let j = i + 1; j < sorted.length && sorted[j]!.from <= a.to; j++) {
      if (sorted[j]!.node !== a.node) pairs.push([a, sorted[j]!]);
    }
  }
  return pairs;
}
