// A backup's side of replication: it loads the primary's snapshot, applies its
// appends in order (a gap asks for a new snapshot), makes them durable before it
// acknowledges them, and acknowledges what it holds once per socket read. What it
// holds (appliedIndex) is also where a promotion starts its own log.

import type { Logger } from "../cli/log.ts";
import type { SchedulerState } from "../core/scheduler-state.ts";
import { Scheduler } from "../core/scheduler.ts";
import { Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind } from "../protocol/messages.ts";
import type { CoordinatorConfig } from "./config.ts";
import { applyEntry } from "./event-log.ts";
import { decodeSnapshot, readAppend, writeAck } from "./replication-codec.ts";
import type { RoleControl } from "./role-control.ts";
import type { DataDir } from "./data-dir.ts";

/** What the backup side needs of its coordinator. */
export interface BackupHost {
  readonly config: CoordinatorConfig;
  readonly log: Logger;
  readonly control: RoleControl;
  /** Replaced whole by a snapshot. */
  scheduler: Scheduler;
  /** --data-dir writes; a failed one stops the process (data-dir.ts). */
  readonly disk: DataDir;
}

export class BackupLog {
  /** Index of the last entry this node holds (applied, and durable with --data-dir). */
  appliedIndex = 0;
  private ackedUpTo = 0;
  private readonly entryReader = new Reader();

  constructor(private readonly host: BackupHost) {}

  /** A new primary to follow: its snapshot replaces the state; until then appliedIndex still says what this node holds. */
  following(): void {
    this.ackedUpTo = 0;
  }

  /** REPL_SNAPSHOT or REPL_APPEND from the primary followed. */
  apply(kind: number, r: Reader): void {
    const { config, control, log } = this.host;
    if (kind === Kind.REPL_SNAPSHOT) {
      const snap = decodeSnapshot(r);
      this.host.scheduler = Scheduler.fromState(config.scheduler, snap.state as SchedulerState);
      this.appliedIndex = snap.index;
      if (!this.host.disk.write((wal) => wal.snapshot(snap.epoch, snap.index, snap.state))) return;
      this.ackedUpTo = 0;
      control.synced(snap.epoch);
      log.info("snapshot applied", { epoch: snap.epoch, index: snap.index, tasks: snap.state.tasks.length });
      return;
    }
    if (kind !== Kind.REPL_APPEND) throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from the primary`);
    const batch = readAppend(r);
    if (batch.epoch !== control.epoch) return; // a stale primary
    if (Number.isFinite(batch.clockMs)) control.clockOffset?.(Date.now() - batch.clockMs);
    if (!control.isSynced) return; // before our snapshot
    if (batch.firstIndex !== this.appliedIndex + 1) {
      log.warn("replication gap; resyncing", { expected: this.appliedIndex + 1, got: batch.firstIndex });
      return control.resync();
    }
    const scheduler = this.host.scheduler;
    batch.readEachEntry(this.entryReader, (entry) => applyEntry(scheduler, entry));
    this.appliedIndex += batch.count;
    scheduler.takeReady();
    // Durable here before the acknowledgement (sent at the end of this read) says so.
    if (batch.count > 0) {
      this.host.disk.write((wal) => {
        wal.append(batch.epoch, batch.firstIndex, batch.count, batch.entries);
        if (wal.wantsSnapshot) wal.snapshot(control.epoch, this.appliedIndex, scheduler.exportState());
      });
    }
  }

  /** The end of a read from the primary: acknowledge what is held now, once. */
  acknowledge(): void {
    const control = this.host.control;
    if (this.appliedIndex === this.ackedUpTo || !control.isSynced || this.host.disk.failed) return;
    this.ackedUpTo = this.appliedIndex;
    const index = this.appliedIndex;
    control.sendToPrimary((w) => writeAck(w, control.epoch, index, Date.now()));
  }
}
