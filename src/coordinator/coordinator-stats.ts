// A coordinator's STATS answer (also what /metrics and `top` show), built from
// what the coordinator holds: its scheduler's counters, its replication state,
// recent latency and, with --data-dir, its write-ahead log.

import type { HeldHeartbeats } from "../core/held-heartbeats.ts";
import type { Scheduler } from "../core/scheduler.ts";
import type { LatencyBuckets } from "../metrics/latency-buckets.ts";
import type { CoordinatorStats } from "../protocol/messages.ts";
import type { Readiness } from "../metrics/metrics-server.ts";
import type { RecentLatency } from "./recent-latency.ts";
import { workerInfos } from "./request-shapes.ts";
import type { WriteAheadLog } from "./wal.ts";
import { EtcdControl } from "./etcd-control.ts";
import { IsrReplicaSet } from "./isr-replica-set.ts";
import type { Replicas, RoleControl } from "./role-control.ts";

/**
 * Where this node stands in replication. `logIndex`: the primary's last entry;
 * `appliedIndex`: what a backup holds. etcd mode adds the replica id, the ISR
 * (primary) and why this node does not lead (candidate).
 */
export function replicationStats(control: RoleControl, replicas: Replicas, logIndex: number, appliedIndex: number, monotonicNow: number): CoordinatorStats["replication"] {
  const primary = control.role === "primary";
  return {
    role: control.role,
    appliedIndex: primary ? logIndex : appliedIndex,
    committedIndex: primary ? replicas.committedIndex : appliedIndex,
    backupsInSync: replicas.inSyncCount,
    alone: primary && replicas.alone(monotonicNow),
    following: control.primaryLabel,
    ...(control instanceof EtcdControl && {
      replicaId: control.replicaId,
      ...(primary && replicas instanceof IsrReplicaSet && { isr: [...replicas.members] }),
      ...(control.notLeadingReason !== "" && { notLeading: control.notLeadingReason }),
    }),
  };
}

export interface StatsSources {
  nodeId: string;
  shard: number;
  epoch: number;
  scheduler: Scheduler;
  uptimeMs: number;
  replication: CoordinatorStats["replication"];
  /** The worker process behind a worker id, from its connection. */
  workerNodeId(workerId: number): string;
  latency: RecentLatency;
  latencyBuckets: LatencyBuckets;
  wal: WriteAheadLog | undefined;
  /** Heartbeats the primary has not logged yet: a worker was heard when the latest came. */
  heartbeats: HeldHeartbeats;
}

export function coordinatorStats(requestId: number, now: number, from: StatsSources): CoordinatorStats {
  const scheduler = from.scheduler;
  const c = scheduler.counters;
  return {
    requestId, nodeId: from.nodeId, shard: from.shard, epoch: from.epoch, primary: from.replication.role === "primary",
    replication: from.replication,
    uptimeMs: from.uptimeMs, queued: scheduler.queuedCount, queuedByPriority: scheduler.queuedByPriority, leased: scheduler.leasedTotal,
    submitted: c.submitted, completed: c.completed, failed: c.failed, retried: c.retried,
    rejectedQueueFull: c.rejectedQueueFull, retained: scheduler.retainedCount,
    waiting: scheduler.waitingTotal, delayed: scheduler.delayedTotal, cancelled: c.cancelled,
    deadlineMissed: c.deadlineMissed, dead: scheduler.dlqCount, unmatched: scheduler.unmatchedCount,
    latencyMs: from.latency.summary(now), latencyHistogram: from.latencyBuckets.snapshot(),
    workers: workerInfos(scheduler, (id) => from.workerNodeId(id), (id) => from.heartbeats.heardAt(id), now),
    ...(from.wal !== undefined && { wal: from.wal.stats() }),
  };
}

/** /readyz: a primary that may still lead and is not handing over, or a backup holding its primary's state. */
export function readinessOf(control: RoleControl, stopping: boolean, shard: number, monotonicNow: number): Readiness {
  const at = { role: control.role, shard, epoch: control.epoch };
  if (stopping) return { ready: false, reason: "shutting down", ...at };
  if (control.role === "primary") {
    const leads = control.mayLead?.(monotonicNow) !== false;
    return { ready: leads, reason: leads ? "primary, accepting" : "primary, but its leader lease may have expired", ...at };
  }
  if (control.role === "backup") return { ready: control.isSynced, reason: control.isSynced ? "backup, in sync" : "backup, not synced with the primary yet", ...at };
  return { ready: false, reason: "no role yet (candidate)", ...at };
}
