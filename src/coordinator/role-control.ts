// What the coordinator asks of whatever decides its role: static peers that
// elect on timeouts (peers.ts) or an etcd-led replica group (etcd-control.ts).
// Both drive the same events, so the coordinator has one path for promotion,
// following and stepping down.

import type { Connection } from "../net/connection.ts";
import type { FrameWriter, Reader } from "../protocol/codec.ts";

export type ReplicationRole = "primary" | "backup" | "candidate";

export interface RoleEvents {
  /** This node is primary of `epoch` now. */
  promote(epoch: number): void;
  /** This node starts following a primary: its state is replaced by the coming snapshot. */
  follow(): void;
  /** This primary must stop acting as one (a newer primary, or its lease may have expired). */
  stepDown(reason: string): void;
  /** REPL_SNAPSHOT / REPL_APPEND from the followed primary. */
  onReplication(kind: number, r: Reader): void;
  onReplicationReadEnd(): void;
}

export interface RoleControl {
  readonly role: ReplicationRole;
  readonly epoch: number;
  /** The primary's address, for E_NOT_PRIMARY messages and stats. */
  readonly primaryLabel: string | undefined;
  /** Backup: a snapshot of the followed primary is applied, so its APPENDs may be. */
  readonly isSynced: boolean;
  recovered(epoch: number, index: number): void;
  /**
   * This node set its data aside (--recover-from-peer) and holds nothing: it must not lead before
   * it holds a primary's snapshot. Static peers need telling; in etcd mode the node took a new
   * replica id, so it is outside the ISR and cannot campaign until the primary has seen it catch up.
   */
  rejoinFromPeer?(): void;
  start(now: number): void;
  stop(): void;
  tick(now: number): void;
  synced(epoch: number): void;
  resync(): void;
  sendToPrimary(encode: (w: FrameWriter) => void): void;
  /** Primary: may it still acknowledge, reply and dispatch at `now` (monotonic ms)? Absent: always. */
  mayLead?(now: number): boolean;
  /** Primary: mayLead said no; stop acting as primary now. */
  fence?(): void;
  /** Backup: this node's wall clock when an APPEND arrived minus the primary's when it left. */
  clockOffset?(offsetMs: number): void;
  /** Graceful stop of a primary: hand the leadership back at once. */
  resign?(): Promise<void>;
}

/** The primary's side of replication: who has what, and so what is committed (replica-set.ts, isr-replica-set.ts). */
/** Times given to Replicas are monotonic ms (performance.now()): a wall-clock step must not shrink the ISR. */
export interface Replicas {
  readonly inSyncCount: number;
  readonly committedIndex: number;
  /** Acknowledging with no other replica holding the entries. */
  alone(now: number): boolean;
  /** A backup that was just sent a snapshot at `snapshotIndex`. */
  add(conn: Connection, snapshotIndex: number, now: number): void;
  ack(conn: Connection, index: number, now: number): void;
  /** A backup loading its snapshot restored another part: alive, though it acknowledges no entry yet. */
  progress?(conn: Connection, now: number): void;
  remove(conn: Connection, now: number, reason: string): void;
  broadcast(encode: (w: FrameWriter) => void): void;
  /** Our wall clock when a backup's ACK arrived minus the backup's when it left. */
  clockOffset?(conn: Connection, offsetMs: number): void;
  /** This process stood still for `stalledMs` until `now`: what replicas sent meanwhile is unread, not late. */
  stalled?(now: number, stalledMs: number): void;
  /** The committed index now, given the last index appended. */
  commit(lastIndex: number, now: number): number;
  closeAll(reason: string): void;
}
