// Prometheus text exposition (format 0.0.4) of what the processes already
// report as stats. Pure: stats in, text out. Names carry their unit and
// counters end in _total, as promtool expects.

import type { ClusterStats, CoordinatorStats, WalStats } from "../protocol/messages.ts";

type Labels = Record<string, string | number>;

/** Collects families so each gets one HELP and TYPE line, then its samples. */
export class Exposition {
  private readonly families = new Map<string, { help: string; type: string; lines: string[] }>();

  add(name: string, type: "counter" | "gauge" | "histogram", help: string, value: number, labels: Labels = {}, suffix = ""): void {
    let family = this.families.get(name);
    if (family === undefined) this.families.set(name, (family = { help, type, lines: [] }));
    family.lines.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
  }

  text(): string {
    let out = "";
    for (const [name, f] of this.families) out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n${f.lines.join("\n")}\n`;
    return out;
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const P = "taskscheduler_";

/** One coordinator's series; `address` tells replicas of a shard apart. */
export function coordinatorMetrics(e: Exposition, s: CoordinatorStats, address: string): void {
  const base = { shard: s.shard, node: s.nodeId, address };
  const role = { ...base, role: s.replication.role };
  e.add(`${P}coordinator_up`, "gauge", "1 when the coordinator answered the last stats request", 1, base);
  e.add(`${P}coordinator_primary`, "gauge", "1 on the shard's primary, 0 on a backup", s.primary ? 1 : 0, base);
  e.add(`${P}coordinator_epoch`, "gauge", "replication epoch (increments at each failover)", s.epoch, base);
  e.add(`${P}replication_applied_index`, "gauge", "last replication log entry applied", s.replication.appliedIndex, role);
  e.add(`${P}replication_committed_index`, "gauge", "last log entry every in-sync backup has", s.replication.committedIndex, role);
  e.add(`${P}replication_backups_in_sync`, "gauge", "backups in sync with this primary", s.replication.backupsInSync, role);
  e.add(`${P}replication_alone`, "gauge", "1 when the primary acknowledges without a backup", s.replication.alone ? 1 : 0, role);
  if (s.replication.isr !== undefined) e.add(`${P}replication_isr_members`, "gauge", "etcd mode: replicas in the in-sync set, this primary included", s.replication.isr.length, role);
  for (const [state, n] of [["waiting", s.waiting], ["delayed", s.delayed], ["queued", s.queued], ["leased", s.leased], ["dead", s.dead], ["unmatched", s.unmatched]] as const) {
    e.add(`${P}tasks`, "gauge", "tasks by state now (unmatched: queued tasks no connected worker has the tags and handler for)", n, { ...role, state });
  }
  const counters: Array<[string, number, string]> = [
    ["tasks_submitted_total", s.submitted, "tasks accepted"],
    ["tasks_completed_total", s.completed, "tasks completed"],
    ["tasks_failed_total", s.failed, "tasks failed for good (into the dead-letter queue)"],
    ["tasks_cancelled_total", s.cancelled, "tasks cancelled"],
    ["task_retries_total", s.retried, "attempts retried after a failure, timeout or lost worker"],
    ["tasks_deadline_missed_total", s.deadlineMissed, "tasks failed for not starting before their deadline"],
    ["submissions_rejected_queue_full_total", s.rejectedQueueFull, "submissions refused with E_QUEUE_FULL"],
  ];
  for (const [name, value, help] of counters) e.add(`${P}${name}`, "counter", help, value, role);
  const h = s.latencyHistogram;
  if (h !== undefined && s.primary) secondsHistogram(e, `${P}task_latency_seconds`, "submission to end of tasks that ended on this primary", h, base);
  if (s.wal !== undefined) walMetrics(e, s.wal, role);
  if (!s.primary) return;
  for (const w of s.workers) {
    const labels = { shard: s.shard, worker: w.nodeId || String(w.id) };
    e.add(`${P}worker_slots`, "gauge", "task slots a worker announced", w.slots, labels);
    e.add(`${P}worker_busy_slots`, "gauge", "slots running a task now", w.slots - w.free, labels);
    e.add(`${P}worker_heartbeat_age_seconds`, "gauge", "time since the worker was last heard", w.heartbeatAgeMs / 1000, labels);
    e.add(`${P}worker_tasks_completed_total`, "counter", "tasks a worker completed for this shard", w.done, labels);
    e.add(`${P}worker_tasks_failed_total`, "counter", "failed attempts a worker reported for this shard", w.failed, labels);
  }
}

/** The write-ahead log (primary and backups both keep one): entries per fsync is entries_total / commits_total. */
function walMetrics(e: Exposition, w: WalStats, labels: Labels): void {
  e.add(`${P}wal_commits_total`, "counter", "write-ahead log records appended (one fdatasync each without --fsync-interval-ms)", w.commits, labels);
  e.add(`${P}wal_syncs_total`, "counter", "fdatasyncs of the write-ahead log", w.syncs, labels);
  e.add(`${P}wal_entries_total`, "counter", "replication log entries those records carried", w.entries, labels);
  e.add(`${P}wal_bytes_total`, "counter", "bytes appended to the write-ahead log", w.bytes, labels);
  e.add(`${P}wal_snapshots_total`, "counter", "snapshots written (each one empties the log)", w.snapshots, labels);
  secondsHistogram(e, `${P}wal_fsync_seconds`, "time in fdatasync per write-ahead log sync", w.fsyncHistogram, labels);
}

/** A cumulative histogram kept in ms, exposed in seconds. */
function secondsHistogram(e: Exposition, name: string, help: string, h: { le: number[]; counts: number[]; sumMs: number; count: number }, labels: Labels): void {
  h.le.forEach((le, i) => e.add(name, "histogram", help, h.counts[i]!, { ...labels, le: le / 1000 }, "_bucket"));
  e.add(name, "histogram", help, h.count, { ...labels, le: "+Inf" }, "_bucket");
  e.add(name, "histogram", help, h.sumMs / 1000, labels, "_sum");
  e.add(name, "histogram", help, h.count, labels, "_count");
}

/** A worker's own series (what it ran, across every coordinator it serves). */
export function workerMetrics(nodeId: string, c: { received: number; done: number; failed: number; dropped: number; held?: number }, running: number, slots: number): string {
  const e = new Exposition();
  const labels = { worker: nodeId };
  e.add(`${P}worker_process_slots`, "gauge", "task slots (threads x concurrency)", slots, labels);
  e.add(`${P}worker_process_running`, "gauge", "tasks on the executor threads now", running, labels);
  e.add(`${P}worker_process_tasks_received_total`, "counter", "leases received", c.received, labels);
  e.add(`${P}worker_process_tasks_succeeded_total`, "counter", "attempts that succeeded", c.done, labels);
  e.add(`${P}worker_process_tasks_failed_total`, "counter", "attempts that failed", c.failed, labels);
  e.add(`${P}worker_process_results_dropped_total`, "counter", "results dropped (no primary for too long, or link too slow)", c.dropped, labels);
  e.add(`${P}worker_process_tasks_waited_for_slot_total`, "counter", "leases that arrived with every slot busy (credit moving between coordinators) and waited for one", c.held ?? 0, labels);
  return e.text();
}

export function clusterMetrics(stats: ClusterStats, routerLabels: Labels | undefined): string {
  const e = new Exposition();
  if (routerLabels !== undefined) {
    e.add(`${P}router_clients`, "gauge", "client connections to the router", stats.router.clients, routerLabels);
    e.add(`${P}router_requests_forwarded_total`, "counter", "submissions forwarded to coordinators", stats.router.forwarded, routerLabels);
    e.add(`${P}router_uptime_seconds`, "gauge", "time since the router started", stats.router.uptimeMs / 1000, routerLabels);
  }
  for (const c of stats.coordinators) {
    if (c.stats !== undefined) coordinatorMetrics(e, c.stats, c.address);
    else e.add(`${P}coordinator_up`, "gauge", "1 when the coordinator answered the last stats request", 0, { shard: "unknown", node: "", address: c.address });
  }
  return e.text();
}
