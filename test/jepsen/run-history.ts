// One run of a replica-group scenario turned into a history for checkHistory:
// what clients were told (workload and audit), what the audit saw completed, and
// each coordinator's terms as primary (primary-intervals.ts), plus the checks the
// generic checker does not make (one task id given to two keys, probe acks no term
// explains). Pure: the test hands in what it recorded.

import type { AuditEvent } from "./keyed-audit.ts";
import type { LoadEvent } from "./keyed-load.ts";
import { checkHistory, type HistoryEvent, type PrimaryAckEvent } from "./history.ts";
import { acksOutsideTerms, primaryTerms, type NodeFault, type NodeLine, type ProbeAck } from "./primary-intervals.ts";

export interface RunRecord {
  load: readonly LoadEvent[];
  audit: readonly AuditEvent[];
  lines: readonly NodeLine[];
  faults: readonly NodeFault[];
  /** End of observation: a term still open then is closed here. */
  until: number;
  /** Times in messages are shown relative to this. */
  t0: number;
}

export interface Finding {
  kind: string;
  message: string;
}

export interface RunAnalysis {
  violations: Finding[];
  terms: PrimaryAckEvent[];
  /** One line per fact worth reporting even when nothing is violated. */
  notes: string[];
  counts: Record<string, number>;
  /** One message per refusal code seen through the router (its first), to tell causes apart. */
  refusals: Record<string, string>;
}

type Ack = Extract<LoadEvent, { ev: "ack" }>;

export function analyzeRun(run: RunRecord): RunAnalysis {
  const rel = (at: number) => `+${at - run.t0}ms`;
  const acks = run.load.filter((e): e is Ack => e.ev === "ack");
  const terms = primaryTerms(run.lines, run.faults, run.until);
  const probeAcks: ProbeAck[] = acks.filter((a) => a.via !== "router").map((a) => ({ node: a.via, key: a.key, taskId: a.taskId, sentAt: a.sentAt, at: a.at }));
  const outside = acksOutsideTerms(probeAcks, terms, run.faults);
  const history: HistoryEvent[] = [
    ...acks.map((a): HistoryEvent => ({ kind: "ack", key: a.key, taskId: String(a.taskId), at: a.at })),
    ...run.audit.flatMap((e): HistoryEvent[] => {
      if (e.ev === "resubmitted") return [{ kind: "ack", key: e.key, taskId: String(e.taskId), at: e.at }];
      if (e.ev === "state" && e.state === "completed") return [{ kind: "completed", taskId: String(e.taskId), at: e.at }];
      return [];
    }),
    ...terms,
    ...outside.map((o) => o.asInterval),
  ];
  const violations: Finding[] = checkHistory(history).map((v) => ({ kind: v.kind, message: relativeTimes(v.message, run.t0) }));
  violations.push(...taskIdsForTwoKeys(acks));
  for (const o of outside) {
    violations.push({
      kind: "ack-outside-term",
      message: `${o.ack.node} acknowledged key ${o.ack.key} (task ${o.ack.taskId}) to a probe between ${rel(o.window[0])} and ${rel(o.window[1])}, when its log shows it was not primary`,
    });
  }
  const notes: string[] = [];
  const states = new Map<string, number>();
  for (const e of run.audit) {
    if (e.ev === "state" && e.state !== "completed") notes.push(`task ${e.taskId} ended the audit ${e.state}`);
    if (e.ev === "state") states.set(e.state, (states.get(e.state) ?? 0) + 1);
    if (e.ev === "state-failed") notes.push(`status of task ${e.taskId}: ${e.code}`);
    if (e.ev === "resubmit-failed") notes.push(`re-asking key ${e.key}: ${e.code}`);
  }
  return { violations, terms, notes, counts: counts(run.load, states), refusals: refusalSamples(run.load) };
}

/** A task id is one task: answering two different keys with it means one of them was lost (its id reused). */
function taskIdsForTwoKeys(acks: readonly Ack[]): Finding[] {
  const keys = new Map<number, Set<string>>();
  for (const a of acks) keys.set(a.taskId, (keys.get(a.taskId) ?? new Set()).add(a.key));
  return [...keys].filter(([, k]) => k.size > 1).map(([taskId, k]) => ({ kind: "task-id-for-two-keys", message: `task id ${taskId} was acknowledged for ${k.size} keys: ${[...k].join(", ")}` }));
}

function counts(load: readonly LoadEvent[], states: Map<string, number>): Record<string, number> {
  const c: Record<string, number> = {};
  const inc = (k: string) => (c[k] = (c[k] ?? 0) + 1);
  for (const e of load) {
    if (e.ev === "ack") inc(e.via === "router" ? (e.late ? "acks.router.late" : "acks.router") : `acks.probe.${e.via}${e.late ? ".late" : ""}`);
    else if (e.ev === "refused") inc(`refused.${e.via === "router" ? "router" : "probe"}.${e.code}`);
    else if (e.ev === "unacked") inc("unacked");
  }
  for (const [state, n] of states) c[`audit.${state}`] = n;
  return c;
}

function refusalSamples(load: readonly LoadEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of load) if (e.ev === "refused" && e.via === "router" && !(e.code in out)) out[e.code] = e.message ?? "";
  return out;
}

/** Absolute ms times (13 digits) in a checker message, shown relative to t0. */
function relativeTimes(message: string, t0: number): string {
  return message.replace(/\b1\d{12}\b/g, (ms) => `+${Number(ms) - t0}ms`);
}

/** The terms as a short table line: `c1 e12 [+0ms, +5012ms]; c2 e40 [...]`. */
export function describeTerms(terms: readonly PrimaryAckEvent[], t0: number): string {
  return [...terms].sort((a, b) => a.from - b.from).map((t) => `${t.node} e${t.epoch} [+${t.from - t0}, +${t.to - t0}]`).join("; ");
}
