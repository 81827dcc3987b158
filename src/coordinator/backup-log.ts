// A backup's side of replication: it loads the primary's snapshot, applies its
// appends in order (a gap asks for a new snapshot), makes them durable before it
// acknowledges them, and acknowledges what it holds once per socket read. What it
// holds (appliedIndex) is also where a promotion starts its own log.
//
// A snapshot comes in parts (snapshot-stream.ts), each restored as it arrives and
// acknowledged (the primary's sign that this backup is alive while it loads). The
// appends that arrive meanwhile are kept, and applied once the snapshot is whole.

import type { Logger } from "../cli/log.ts";
import type { SchedulerState } from "../core/scheduler-state.ts";
import { Scheduler } from "../core/scheduler.ts";
import { Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind } from "../protocol/messages.ts";
import type { CoordinatorConfig } from "./config.ts";
import { applyEntry } from "./event-log.ts";
import { SnapshotAssembly } from "../core/snapshot-parts.ts";
import { decodeSnapshot, readAppend, readEntries, readSnapshotPart, writeAck, writeSnapshotAck, type AppendBatch, type SnapshotPartFrame } from "./replication-codec.ts";
import type { RoleControl } from "./role-control.ts";
import type { DataDir } from "./data-dir.ts";
import { SnapshotFileStream } from "./wal-snapshot-stream.ts";

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

interface Loading {
  epoch: number;
  index: number;
  parts: number;
  assembly: SnapshotAssembly;
  appends: AppendBatch[];
  appendBytes: number;
  startedAt: number;
  /** With --data-dir: the snapshot file, written as the parts come (wal-snapshot-stream.ts). */
  file: SnapshotFileStream | undefined;
}

export class BackupLog {
  /** Index of the last entry this node holds (applied, and durable with --data-dir). */
  appliedIndex = 0;
  private ackedUpTo = 0;
  private readonly entryReader = new Reader();
  /** A snapshot arriving in parts, and the appends that came after it meanwhile. */
  private loading: Loading | undefined;
  /** Parts restored that the primary has not been told of. */
  private partsToAck: { epoch: number; index: number; parts: number } | undefined;

  constructor(private readonly host: BackupHost) {}

  /** A new primary to follow: its snapshot replaces the state; until then appliedIndex still says what this node holds. */
  following(): void {
    this.ackedUpTo = 0;
    this.dropLoading();
    this.partsToAck = undefined;
  }

  /** A snapshot that was loading is given up (its file too; the last snapshot file stays). */
  private dropLoading(): void {
    this.loading?.file?.abandon();
    this.loading = undefined;
  }

  /** REPL_SNAPSHOT or REPL_APPEND from the primary followed. */
  apply(kind: number, r: Reader): void {
    const { config, control, log } = this.host;
    if (kind === Kind.REPL_SNAPSHOT_PART) return this.loadPart(readSnapshotPart(r));
    if (kind === Kind.REPL_SNAPSHOT) {
      this.dropLoading();
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
    const loading = this.loading;
    if (loading !== undefined && batch.epoch === loading.epoch) return this.keep(loading, batch);
    this.applyAppend(batch);
  }

  private applyAppend(batch: AppendBatch): void {
    const { control, log } = this.host;
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
    if (batch.count > 0 && this.host.disk.write((wal) => wal.append(batch.epoch, batch.firstIndex, batch.count, batch.entries))) {
      this.host.disk.compactIfDue(control.epoch, this.appliedIndex, scheduler);
    }
  }

  /** One part of a streamed snapshot: restored now; the last one replaces the state. */
  private loadPart(f: SnapshotPartFrame): void {
    const { config, control, log } = this.host;
    if (f.epoch !== control.epoch) return; // a deposed primary's stream: only the followed epoch loads
    if (f.seq === 0) {
      this.dropLoading();
      this.loading = { epoch: f.epoch, index: f.index, parts: 0, assembly: new SnapshotAssembly(config.scheduler.agingMs), appends: [], appendBytes: 0, startedAt: performance.now(), file: undefined };
    }
    const l = this.loading;
    if (l === undefined || l.epoch !== f.epoch || l.index !== f.index || l.parts !== f.seq) {
      this.dropLoading();
      throw new ProtocolError("E_BAD_FRAME", `snapshot part ${f.seq} at index ${f.index} out of order`);
    }
    let scheduler: Scheduler | undefined;
    try {
      l.assembly.add(f.part);
      if (f.last) scheduler = new Scheduler(config.scheduler, l.assembly.finish());
    } catch (err) {
      this.dropLoading();
      throw new ProtocolError("E_BAD_FRAME", `bad snapshot: ${(err as Error).message}`);
    }
    const written = this.host.disk.write((wal) => {
      if (f.part.k === "head") l.file = new SnapshotFileStream(wal, f.epoch, f.index, f.part.head);
      else l.file?.add(f.part);
    });
    if (!written) return;
    l.parts++;
    this.partsToAck = { epoch: l.epoch, index: l.index, parts: l.parts };
    if (scheduler === undefined) return;
    this.loading = undefined;
    this.host.scheduler = scheduler;
    this.appliedIndex = f.index;
    if (l.file !== undefined && !this.host.disk.write(() => l.file!.finish())) return;
    this.ackedUpTo = 0;
    control.synced(f.epoch);
    log.info("snapshot applied", { epoch: f.epoch, index: f.index, tasks: l.assembly.taskCount, parts: l.parts, keptAppends: l.appends.length, ms: Math.round(performance.now() - l.startedAt) });
    for (const batch of l.appends) this.applyAppend(batch);
  }

  /** An append after the snapshot that is loading: a copy, applied once the snapshot is whole. */
  private keep(l: Loading, batch: AppendBatch): void {
    if (Number.isFinite(batch.clockMs)) this.host.control.clockOffset?.(Date.now() - batch.clockMs);
    if (batch.count === 0) return;
    // A copy of each is kept until the snapshot is whole: --loading-appends-bytes-max bounds them.
    l.appendBytes += batch.entries.byteLength;
    const limit = this.host.config.loadingAppendsBytesMax;
    if (l.appendBytes > limit) {
      this.host.log.warn("too many appends while loading a snapshot; starting over", { kept: l.appends.length, bytes: l.appendBytes, limit, flag: "--loading-appends-bytes-max" });
      this.dropLoading();
      return this.host.control.resync();
    }
    const copy = readEntries(batch.epoch, batch.firstIndex, batch.count, batch.entries.slice());
    l.appends.push(copy);
  }

  /** The end of a read from the primary: acknowledge what is held now, once. */
  acknowledge(): void {
    const control = this.host.control;
    const parts = this.partsToAck;
    if (parts !== undefined && !this.host.disk.failed) {
      this.partsToAck = undefined;
      control.sendToPrimary((w) => writeSnapshotAck(w, parts.epoch, parts.index, parts.parts));
    }
    if (this.appliedIndex === this.ackedUpTo || !control.isSynced || this.host.disk.failed) return;
    this.ackedUpTo = this.appliedIndex;
    const index = this.appliedIndex;
    control.sendToPrimary((w) => writeAck(w, control.epoch, index, Date.now()));
  }
}
