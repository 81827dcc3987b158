// What backups send their primary: REPL_SYNC (send me your state, then your
// log), REPL_ACK (I hold the log up to here) and REPL_SNAPSHOT_ACK (I restored
// another part of the snapshot), and the snapshot streams that answer REPL_SYNC.
// The primary's side of replication, apart from the coordinator shell as
// worker-inputs.ts is for workers; the backup's side is backup-log.ts.

import type { Logger } from "../cli/log.ts";
import type { Scheduler } from "../core/scheduler.ts";
import type { Connection } from "../net/connection.ts";
import { readControl, type Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, type Role } from "../protocol/messages.ts";
import { readAck, readSnapshotAck } from "./replication-codec.ts";
import type { Replicas } from "./role-control.ts";
import { SnapshotStreams } from "./snapshot-stream.ts";

/** What the backup inputs need of their coordinator. */
export interface BackupInputPort {
  /** Primary, with no failed write to its data directory: it may take on a backup. */
  mayServe(): boolean;
  refuseNotPrimary(conn: Connection, requestId: number): void;
  /** Ships everything logged so far to the backups already there. */
  pump(): void;
  epoch(): number;
  /** The last index of the primary's log. */
  lastIndex(): number;
  scheduler(): Scheduler;
  /** The replica set now (a promotion in etcd mode makes a new one). */
  replicas(): Replicas;
}

const KINDS: ReadonlySet<number> = new Set([Kind.REPL_SYNC, Kind.REPL_ACK, Kind.REPL_SNAPSHOT_ACK]);

export class BackupInputs {
  /** Snapshots being streamed to backups that are loading them (the coordinator pumps, drops and clears them). */
  readonly snapshots: SnapshotStreams;

  constructor(
    private readonly port: BackupInputPort,
    private readonly snapshotBytesMax: number,
    private readonly log: Logger,
  ) {
    this.snapshots = new SnapshotStreams(log);
  }

  handles(kind: number): boolean {
    return KINDS.has(kind);
  }

  message(conn: Connection, role: Role, kind: number, r: Reader): void {
    switch (kind) {
      case Kind.REPL_SYNC: {
        if (role !== "coordinator") throw new ProtocolError("E_BAD_REQUEST", "only coordinators replicate");
        const sync = readControl<{ replicaId?: unknown }>(r);
        // etcd mode names ISR members by incarnation (replica id); static peers by connection.
        conn.state.replicaId = typeof sync.replicaId === "string" ? sync.replicaId : String(conn.state.nodeId);
        return this.sendSnapshot(conn);
      }
      case Kind.REPL_ACK: {
        const ack = readAck(r);
        if (ack.epoch !== this.port.epoch()) return;
        const replicas = this.port.replicas();
        replicas.ack(conn, ack.index, performance.now());
        if (Number.isFinite(ack.clockMs)) replicas.clockOffset?.(conn, Date.now() - ack.clockMs);
        return;
      }
      case Kind.REPL_SNAPSHOT_ACK: {
        const ack = readSnapshotAck(r);
        if (this.snapshots.restored(conn, ack.epoch, ack.index, ack.parts)) this.port.replicas().progress?.(conn, performance.now());
        return;
      }
    }
  }

  /**
   * Streams this primary's state at the last shipped entry to a backup, in parts cut
   * while it goes on serving (snapshot-stream.ts); the entries after it follow on
   * the same connection.
   */
  private sendSnapshot(conn: Connection): void {
    if (!this.port.mayServe()) return this.port.refuseNotPrimary(conn, 0);
    this.port.pump(); // everything so far goes out to existing backups first: the snapshot follows the last shipped entry
    const index = this.port.lastIndex();
    this.port.replicas().add(conn, index, performance.now());
    this.snapshots.start(conn, this.port.epoch(), index, this.port.scheduler(), this.snapshotBytesMax);
    this.log.info("backup syncing", { backup: conn.state.nodeId, index });
  }
}
