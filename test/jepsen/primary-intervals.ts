// When did each coordinator act as primary? Derived, conservatively, from its
// own log lines (promoted ... fenced / stepping down) and the faults the test
// injected (kill -9, SIGSTOP, SIGCONT), all on this one machine's clock, and
// checked against the acknowledgements probe clients got from each node. Pure.

import type { PrimaryAckEvent } from "./history.ts";

/** One log line of one process; `life` counts the node's starts (restarts get a new one). */
export interface NodeLine {
  node: string;
  life: number;
  at: number;
  event: string;
  epoch?: number;
}

/** A signal the test sent to one life of a node, at the time it sent it. */
export interface NodeFault {
  node: string;
  life: number;
  at: number;
  kind: "kill" | "stop" | "cont";
}

/** An acknowledgement a probe client got straight from `node`: sent at sentAt, answered at `at`. */
export interface ProbeAck {
  node: string;
  key: string;
  taskId: number;
  sentAt: number;
  at: number;
}

export const PROMOTED = "promoted to primary";
/** Either ends a primary's term: etcd-control.ts logs the first, coordinator.ts the second. */
export const TERM_ENDS = new Set(["fenced: stopped acting as primary", "stepping down"]);
/** Lines only an acting primary writes: seen after a SIGCONT, they show it went on leading. */
const PRIMARY_WORK = new Set(["in-sync replicas changed", "proposing in-sync replicas", "backup syncing", "primary going on alone"]);

/**
 * Each node's terms as primary, one interval per term: from its "promoted" line to the first
 * of its fenced / stepping-down line, the SIGKILL or SIGSTOP the test sent, or `until`.
 * After a SIGCONT the term stays closed at the SIGSTOP only if the node's next word is a
 * fence (with no primary work logged before it): it was stopped in between, and a paused
 * leader that fences before acting acknowledged nothing after the pause (probe acks say
 * otherwise if it did: see acksOutsideTerms). Otherwise the term reopens at the SIGCONT.
 */
export function primaryTerms(lines: readonly NodeLine[], faults: readonly NodeFault[], until: number, shard = 0): PrimaryAckEvent[] {
  const terms: PrimaryAckEvent[] = [];
  for (const [life, steps] of byLife(lines, faults)) {
    let open: { epoch: number; from: number } | undefined;
    let paused: { epoch: number } | undefined;
    const close = (to: number) => {
      if (open !== undefined) terms.push({ kind: "primary-ack", shard, node: life.split("#")[0]!, epoch: open.epoch, from: open.from, to: Math.max(open.from, to) });
      open = undefined;
    };
    for (const [i, step] of steps.entries()) {
      if ("kind" in step) {
        if (step.kind === "stop" && open !== undefined) {
          paused = { epoch: open.epoch };
          close(step.at);
        } else if (step.kind === "cont" && paused !== undefined) {
          if (!fencesFirst(steps.slice(i + 1))) open = { epoch: paused.epoch, from: step.at };
          paused = undefined;
        } else if (step.kind === "kill") {
          close(step.at);
          paused = undefined;
        }
      } else if (step.event === PROMOTED) {
        close(step.at);
        open = { epoch: step.epoch ?? 0, from: step.at };
      } else if (TERM_ENDS.has(step.event)) {
        close(step.at);
      }
    }
    close(until);
  }
  return terms;
}

/** After a SIGCONT: does the node fence before any sign of acting as primary (or of another pause)? */
function fencesFirst(after: readonly (NodeLine | NodeFault)[]): boolean {
  for (const step of after) {
    if ("kind" in step) return false;
    if (TERM_ENDS.has(step.event)) return true;
    if (PRIMARY_WORK.has(step.event) || step.event === PROMOTED) return false;
  }
  return false;
}

/** Each life's lines and faults in time order (see sameMsRank for ties). */
function byLife(lines: readonly NodeLine[], faults: readonly NodeFault[]): Map<string, (NodeLine | NodeFault)[]> {
  const lives = new Map<string, (NodeLine | NodeFault)[]>();
  const add = (s: NodeLine | NodeFault) => {
    const id = `${s.node}#${s.life}`;
    lives.set(id, [...(lives.get(id) ?? []), s]);
  };
  lines.forEach(add);
  faults.forEach(add);
  for (const [id, steps] of lives) {
    steps.sort((a, b) => a.at - b.at || sameMsRank(a) - sameMsRank(b));
    lives.set(id, linesOutOfPauses(steps));
  }
  return lives;
}

/**
 * A stopped process writes nothing: a line stamped between a SIGSTOP and its SIGCONT (the
 * node's clock and the test's can differ by a few ms) was written after the SIGCONT.
 */
function linesOutOfPauses(steps: readonly (NodeLine | NodeFault)[]): (NodeLine | NodeFault)[] {
  const out: (NodeLine | NodeFault)[] = [];
  let held: NodeLine[] | undefined;
  for (const step of steps) {
    if (!("kind" in step)) {
      if (held !== undefined) held.push(step);
      else out.push(step);
      continue;
    }
    if (step.kind === "stop") {
      out.push(step);
      held = [];
    } else if (step.kind === "cont") {
      out.push(step, ...(held ?? []));
      held = undefined;
    } else {
      out.push(...(held ?? []), step);
      held = undefined;
    }
  }
  out.push(...(held ?? []));
  return out;
}

/**
 * Order within one millisecond: a stopped process logs nothing until SIGCONT, so a line of
 * the same millisecond as a SIGCONT came after it; one of the same millisecond as a SIGSTOP
 * or kill came before it (the test's and the nodes' timestamps share one clock).
 */
function sameMsRank(step: NodeLine | NodeFault): number {
  if (!("kind" in step)) return 1;
  return step.kind === "cont" ? 0 : 2;
}

/** [from, to] periods during which each node was stopped (SIGSTOP .. SIGCONT, or .. kill). */
export function pausedPeriods(faults: readonly NodeFault[]): Map<string, [number, number][]> {
  const periods = new Map<string, [number, number][]>();
  const since = new Map<string, number>();
  for (const f of [...faults].sort((a, b) => a.at - b.at)) {
    if (f.kind === "stop") since.set(f.node, f.at);
    else if (since.has(f.node)) {
      periods.set(f.node, [...(periods.get(f.node) ?? []), [since.get(f.node)!, f.at]]);
      since.delete(f.node);
    }
  }
  return periods;
}

export interface AckOutsideTerm {
  ack: ProbeAck;
  /** When the node must have sent it: [sent, answered], less any time it was stopped at the start. */
  window: [number, number];
  /** The acknowledgement as a primary-ack interval, for checkHistory (epoch: its latest term's, or 0). */
  asInterval: PrimaryAckEvent;
}

/**
 * Probe acknowledgements that no term of their node explains: the node sent the answer some
 * time in [sentAt, at] (not while it was stopped), and none of its terms meets that window.
 * Each is evidence that the node acted as primary when its log says it was not.
 */
export function acksOutsideTerms(acks: readonly ProbeAck[], terms: readonly PrimaryAckEvent[], faults: readonly NodeFault[], shard = 0): AckOutsideTerm[] {
  const paused = pausedPeriods(faults);
  const out: AckOutsideTerm[] = [];
  for (const ack of acks) {
    let from = ack.sentAt;
    for (const [stop, cont] of paused.get(ack.node) ?? []) if (from >= stop && from < cont) from = cont;
    const own = terms.filter((t) => t.node === ack.node);
    if (own.some((t) => t.from <= ack.at && from <= t.to)) continue;
    const epoch = own.filter((t) => t.from <= ack.at).at(-1)?.epoch ?? 0;
    out.push({ ack, window: [from, ack.at], asInterval: { kind: "primary-ack", shard, node: ack.node, epoch, from: Math.min(from, ack.at), to: ack.at } });
  }
  return out;
}
