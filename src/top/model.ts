// The dashboard's state: polls in, a view out. Pure (time arrives in each
// poll), so throughput, history and the unreachable cases are unit-tested
// without sockets or a terminal.

import type { ClusterStats, CoordinatorStats, Role } from "../protocol/messages.ts";
import { HISTORY_POLLS_DEFAULT } from "./config.ts";

/** One STATS answer, stamped with when it arrived. */
export interface PollOk {
  ok: true;
  atMs: number;
  /** "host:port" top is connected to. */
  target: string;
  /** What the server said it is in the handshake: router or coordinator. */
  serverRole: Role;
  stats: ClusterStats;
}

/** top could not connect, or the connection dropped, or the request timed out. */
export interface PollFailed {
  ok: false;
  atMs: number;
  target: string;
  /** A sentence for the screen, e.g. "coordinator 127.0.0.1:5000 unreachable: ...". */
  error: string;
}

export type Poll = PollOk | PollFailed;

export interface CoordinatorView {
  address: string;
  reachable: boolean;
  /** Why the router could not reach it. */
  error?: string;
  stats?: CoordinatorStats;
  /** Completed tasks per second since the previous poll; undefined on the first poll or after a restart. */
  throughputPerS?: number;
}

export interface ClusterTotals {
  coordinators: number;
  reachable: number;
  queued: number;
  /** Of the queued: tasks no connected worker can run (tags it lacks, or a type it has no handler for). */
  unmatched: number;
  leased: number;
  completed: number;
  failed: number;
  retried: number;
  rejectedQueueFull: number;
  /** Distinct worker processes. */
  workers: number;
  /** Summed over every worker-coordinator link: a worker serving several splits its slots among them, so this is its real total. */
  slots: number;
  busy: number;
  throughputPerS?: number;
}

export interface DashboardView {
  target: string;
  serverRole?: Role;
  /** When the poll behind this view ended. */
  atMs: number;
  /** top's own connection error; the coordinators shown are then from lastOkAtMs. */
  error?: string;
  lastOkAtMs?: number;
  coordinators: CoordinatorView[];
  totals: ClusterTotals;
  /** Cluster throughput per poll, oldest first; null where a poll failed or had no previous one. */
  history: (number | null)[];
  polls: number;
}

interface Previous {
  completed: number;
  atMs: number;
}

export class TopModel {
  private readonly previous = new Map<string, Previous>();
  private readonly history: (number | null)[] = [];
  private lastOk: { view: DashboardView; atMs: number } | undefined;
  private polls = 0;

  constructor(private readonly historyMax = HISTORY_POLLS_DEFAULT) {}

  /** Folds one poll in and returns the view to draw. */
  observe(poll: Poll): DashboardView {
    this.polls++;
    if (!poll.ok) return this.failed(poll);
    const coordinators = poll.stats.coordinators.map((c) => this.coordinator(c, poll.atMs));
    const totals = clusterTotals(coordinators);
    this.push(totals.throughputPerS ?? null);
    const view: DashboardView = {
      target: poll.target,
      serverRole: poll.serverRole,
      atMs: poll.atMs,
      coordinators,
      totals,
      history: [...this.history],
      polls: this.polls,
    };
    this.lastOk = { view, atMs: poll.atMs };
    return view;
  }

  private failed(poll: PollFailed): DashboardView {
    // Keep the last picture (marked stale by `error`) rather than blanking the
    // screen: the numbers before the drop are what someone debugging it wants.
    this.push(null);
    const last = this.lastOk?.view;
    const view: DashboardView = {
      target: poll.target,
      atMs: poll.atMs,
      error: poll.error,
      coordinators: last?.coordinators.map(({ throughputPerS: _, ...c }) => c) ?? [],
      totals: last ? { ...last.totals, throughputPerS: undefined } : clusterTotals([]),
      history: [...this.history],
      polls: this.polls,
    };
    if (last?.serverRole !== undefined) view.serverRole = last.serverRole;
    if (this.lastOk !== undefined) view.lastOkAtMs = this.lastOk.atMs;
    return view;
  }

  private coordinator(c: ClusterStats["coordinators"][number], atMs: number): CoordinatorView {
    const view: CoordinatorView = { address: c.address, reachable: c.reachable && c.stats !== undefined };
    if (c.error !== undefined) view.error = c.error;
    if (c.stats === undefined) return view;
    view.stats = c.stats;
    // Keyed by node as well as address: a different process on the same port
    // starts its counters again, and a difference across the two means nothing.
    const key = `${c.address}/${c.stats.nodeId}`;
    const prev = this.previous.get(key);
    this.previous.set(key, { completed: c.stats.completed, atMs });
    const throughput = throughputPerS(prev, c.stats.completed, atMs);
    if (throughput !== undefined) view.throughputPerS = throughput;
    return view;
  }

  private push(value: number | null): void {
    this.history.push(value);
    if (this.history.length > this.historyMax) this.history.splice(0, this.history.length - this.historyMax);
  }
}

/**
 * Tasks per second from two readings of a monotonic counter. Undefined without
 * a previous reading, when no time passed, or when the counter went backwards
 * (the coordinator restarted: its count since then is not a rate over this gap).
 */
export function throughputPerS(prev: Previous | undefined, completed: number, atMs: number): number | undefined {
  if (prev === undefined) return undefined;
  const elapsedMs = atMs - prev.atMs;
  if (elapsedMs <= 0 || completed < prev.completed) return undefined;
  return ((completed - prev.completed) * 1000) / elapsedMs;
}

/**
 * Sums over primaries only: a backup reports the shard's replicated counters
 * too, and adding both would count every task twice.
 */
export function clusterTotals(coordinators: readonly CoordinatorView[]): ClusterTotals {
  const totals: ClusterTotals = {
    coordinators: coordinators.length, reachable: 0, queued: 0, unmatched: 0, leased: 0, completed: 0, failed: 0,
    retried: 0, rejectedQueueFull: 0, workers: 0, slots: 0, busy: 0,
  };
  let throughput: number | undefined;
  // A worker serving several shards has a link to each; count the process once.
  const workerNodes = new Set<string>();
  for (const c of coordinators) {
    if (c.reachable) totals.reachable++;
    const s = c.stats;
    if (s === undefined || !s.primary) continue;
    totals.queued += s.queued;
    totals.unmatched += s.unmatched;
    totals.leased += s.leased;
    totals.completed += s.completed;
    totals.failed += s.failed;
    totals.retried += s.retried;
    totals.rejectedQueueFull += s.rejectedQueueFull;
    for (const w of s.workers) {
      workerNodes.add(w.nodeId || `${c.address}#${w.id}`);
      totals.slots += w.slots;
      totals.busy += w.slots - w.free;
    }
    if (c.throughputPerS !== undefined) throughput = (throughput ?? 0) + c.throughputPerS;
  }
  totals.workers = workerNodes.size;
  if (throughput !== undefined) totals.throughputPerS = throughput;
  return totals;
}
