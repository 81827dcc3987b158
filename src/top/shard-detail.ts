// The shard detail view: every replica of one shard with its role, epoch,
// replication progress (applied index, lag behind the primary's commit) and
// whether it is in sync (the ISR in etcd mode), plus the shard's task counts.
// Pure, like render.ts: the figures all come from the router's stats.

import type { CoordinatorStats } from "../protocol/messages.ts";
import { count, duration, fittedTable, type Column } from "./format.ts";
import type { CoordinatorView, DashboardView } from "./model.ts";
import type { Line } from "./render.ts";

// At 80 columns UPTIME, REPLICA ID, NODE and FOLLOWING give way, in that order.
const REPLICA_COLUMNS: readonly Column[] = [
  { title: "ADDRESS", align: "left" }, { title: "NODE", align: "left", dropRank: 3 }, { title: "ROLE", align: "left" },
  { title: "EPOCH", align: "right" }, { title: "APPLIED", align: "right" }, { title: "LAG", align: "right" },
  { title: "IN SYNC", align: "left" }, { title: "FOLLOWING", align: "left", dropRank: 4, hideWhenEmpty: true },
  { title: "REPLICA ID", align: "left", dropRank: 2, hideWhenEmpty: true }, { title: "UPTIME", align: "right", dropRank: 1 },
];

/** The shards the view knows, in order: what the arrow keys move through. */
export function shardsOf(view: DashboardView | undefined): number[] {
  const shards = new Set<number>();
  for (const c of view?.coordinators ?? []) if (c.stats !== undefined) shards.add(c.stats.shard);
  return [...shards].sort((a, b) => a - b);
}

/** The next (delta 1) or previous (-1) shard after `current`, wrapping; the first when none is selected. */
export function stepShard(shards: readonly number[], current: number | undefined, delta: 1 | -1): number | undefined {
  if (shards.length === 0) return undefined;
  const at = current === undefined ? -1 : shards.indexOf(current);
  if (at < 0) return delta === 1 ? shards[0] : shards[shards.length - 1];
  return shards[(at + delta + shards.length) % shards.length];
}

export function shardDetailLines(view: DashboardView | undefined, shard: number, width: number): Line[] {
  const replicas = (view?.coordinators ?? []).filter((c) => c.stats?.shard === shard).sort((a, b) => a.address.localeCompare(b.address));
  const primary = replicas.find((c) => c.reachable && role(c.stats!) === "primary")?.stats;
  const lines: Line[] = [{ text: "", style: "normal" }];
  if (replicas.length === 0) {
    lines.push({ text: `SHARD ${shard}: no replica reports this shard (yet)`, style: "heading" });
    return [...lines, ...footer()];
  }
  const epoch = Math.max(...replicas.map((c) => c.stats!.epoch));
  lines.push({ text: `SHARD ${shard}   ${replicas.length} replica${replicas.length === 1 ? "" : "s"}   epoch ${epoch}   primary ${primary === undefined ? "none" : replicas.find((c) => c.stats === primary)!.address}`, style: "heading" });
  if (primary !== undefined) {
    const r = primary.replication;
    const isr = r?.isr !== undefined ? `   ISR (etcd) ${r.isr.join(", ")}` : "";
    lines.push({ text: `  committed ${count(r?.committedIndex ?? 0)}   ${r === undefined || r.alone ? "acknowledging alone" : `${r.backupsInSync} backup${r.backupsInSync === 1 ? "" : "s"} in sync`}${isr}`, style: "normal" });
    lines.push({ text: `  tasks  queued ${count(primary.queued)}   leased ${count(primary.leased)}   completed ${count(primary.completed)}   failed ${count(primary.failed)}   dead-letter ${count(primary.dead)}`, style: "normal" });
    const slots = primary.workers.reduce((n, w) => n + w.slots, 0);
    const busy = primary.workers.reduce((n, w) => n + w.slots - w.free, 0);
    lines.push({ text: `  workers ${primary.workers.length}   slots ${count(slots)} (${count(busy)} busy)`, style: "normal" });
  }
  const [header, ...rows] = fittedTable(REPLICA_COLUMNS, replicas.map((c) => replicaCells(c, primary, replicas.length - 1)), width);
  lines.push({ text: "", style: "normal" }, { text: header!, style: "dim" });
  lines.push(...rows.map((text, i) => ({ text, style: replicas[i]!.reachable ? ("normal" as const) : ("error" as const) })));
  for (const c of replicas) {
    if (!c.reachable) lines.push({ text: `${c.address} unreachable: ${c.error ?? "no stats"}`, style: "error" });
    else if (c.stats!.replication?.notLeading !== undefined) lines.push({ text: `${c.address} may not lead: ${c.stats!.replication.notLeading}`, style: "dim" });
  }
  return [...lines, ...footer()];
}

function footer(): Line[] {
  return [{ text: "", style: "normal" }, { text: "Up/Down or 0-9: another shard   Enter or Esc: back   ? help", style: "dim" }];
}

function role(s: CoordinatorStats): string {
  return s.replication?.role ?? (s.primary ? "primary" : "backup");
}

function replicaCells(c: CoordinatorView, primary: CoordinatorStats | undefined, backups: number): string[] {
  const s = c.stats!;
  if (!c.reachable) return [c.address, s.nodeId, "DOWN", String(s.epoch), "-", "-", "-", "-", "-", "-"];
  const r = s.replication;
  const isPrimary = role(s) === "primary";
  const lag = isPrimary || primary?.replication === undefined || r === undefined ? "-" : count(Math.max(0, primary.replication.committedIndex - r.appliedIndex));
  return [
    c.address, s.nodeId, role(s), String(s.epoch), r === undefined ? "-" : count(r.appliedIndex), lag,
    inSync(s, primary, backups), r?.following ?? "-", r?.replicaId ?? "-", duration(s.uptimeMs),
  ];
}

/**
 * A primary: its backups in sync, or alone. A backup: in the ISR or not (etcd
 * mode, where the primary lists the ISR by replica id); in static mode the
 * primary counts its in-sync backups but does not name them.
 */
function inSync(s: CoordinatorStats, primary: CoordinatorStats | undefined, backups: number): string {
  const r = s.replication;
  if (r === undefined) return "-";
  if (r.role === "primary") return r.alone ? "alone" : `${r.backupsInSync} in sync`;
  const isr = primary?.replication?.isr;
  if (isr !== undefined && r.replicaId !== undefined) return isr.includes(r.replicaId) ? "in ISR" : "not in ISR";
  if (r.notLeading !== undefined) return "not in ISR";
  if (primary?.replication === undefined) return "no primary";
  return primary.replication.backupsInSync >= backups ? "in sync" : "see primary";
}
