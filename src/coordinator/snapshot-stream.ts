// The primary's side of a streamed snapshot: the state at one log index, cut into
// bounded parts while the primary goes on (core/snapshot-export.ts) and sent a window at a time as the backup
// says it has restored them. The window, not the socket, bounds what a slow backup
// makes this process hold (SNAPSHOT_WINDOW_PARTS parts), one part is encoded per
// event-loop turn so clients are served between parts, and each acknowledgement is
// the backup's sign of life while it loads (replica-set.ts counts it as progress).
// Log entries appended meanwhile go out on the same connection as usual; the backup
// keeps them until its snapshot is whole (backup-log.ts).

import type { Logger } from "../cli/log.ts";
import type { Scheduler } from "../core/scheduler.ts";
import type { SnapshotExport } from "../core/snapshot-export.ts";
import { PART_LIMITS, type PartLimits, type SnapshotPart } from "../core/snapshot-parts.ts";
import type { Connection } from "../net/connection.ts";
import { encodeSnapshotPart, writeSnapshotPart } from "./replication-codec.ts";

/** Parts sent and not yet restored by the backup: ~8 x 128 KiB in flight per loading backup. */
export const SNAPSHOT_WINDOW_PARTS = 8;

/** Parts of ~128 KiB (~800 small tasks): cutting and encoding one takes 1-3 ms, so a turn of the event loop stays short. */
export const SNAPSHOT_PART_LIMITS: PartLimits = { ...PART_LIMITS, bytesMax: 128 * 1024 };

const END_PART: SnapshotPart = { k: "dlq", ids: [] };

class SnapshotStream {
  private sent = 0;
  private restored = 0;
  private bytes = 0;
  private readonly cutter: SnapshotExport;
  private allCut = false;
  private readonly startedAt = performance.now();

  constructor(
    readonly conn: Connection,
    readonly epoch: number,
    readonly index: number,
    scheduler: Scheduler,
    private readonly bytesMax: number,
    private readonly log: Logger,
    limits: PartLimits,
  ) {
    this.cutter = scheduler.startExport(limits);
  }

  get allSent(): boolean {
    return this.allCut;
  }

  get wantsToSend(): boolean {
    return !this.allSent && this.sent - this.restored < SNAPSHOT_WINDOW_PARTS && this.conn.writable();
  }

  /** Sends the next part. False when the snapshot grew past bytesMax (the connection is failed). */
  sendOne(): boolean {
    // A part may hold the scheduler's own task objects: it is encoded now, before they change.
    // After the last, an empty part marks the end (so no part is cut ahead to know it is the last).
    const part = this.cutter.next();
    if (part === undefined) this.allCut = true;
    const body = encodeSnapshotPart(part ?? END_PART);
    this.bytes += body.length;
    if (this.bytes > this.bytesMax) {
      this.log.error("snapshot too large", { backup: this.conn.state.nodeId, bytes: this.bytes, limit: this.bytesMax });
      this.conn.fail("E_TOO_LARGE", `snapshot of over ${this.bytesMax} bytes is over --snapshot-bytes-max`);
      return false;
    }
    writeSnapshotPart(this.conn.writer, this.epoch, this.index, this.sent, this.allSent, body);
    this.conn.queueFlush();
    this.sent++;
    return true;
  }

  /** The backup restored `parts` parts; true if that is news. */
  restoredUpTo(parts: number): boolean {
    if (parts <= this.restored || parts > this.sent) return false;
    this.restored = parts;
    if (this.allSent && this.restored === this.sent) {
      this.log.info("snapshot sent", { backup: this.conn.state.nodeId, index: this.index, parts: this.sent, bytes: this.bytes, ms: Math.round(performance.now() - this.startedAt) });
    }
    return true;
  }

  get finished(): boolean {
    return this.allSent && this.restored === this.sent;
  }

  /** Given up: the scheduler stops keeping copies for it. */
  close(): void {
    this.cutter.close();
  }
}

/** Every snapshot being streamed, by connection; parts go out one per event-loop turn across all of them. */
export class SnapshotStreams {
  private readonly streams = new Map<number, SnapshotStream>();
  private scheduled = false;

  constructor(
    private readonly log: Logger,
    private readonly limits: PartLimits = SNAPSHOT_PART_LIMITS,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** Starts streaming the scheduler's state as it is now (at log index `index`) to a backup. */
  start(conn: Connection, epoch: number, index: number, scheduler: Scheduler, bytesMax: number): void {
    this.remove(conn);
    this.streams.set(conn.id, new SnapshotStream(conn, epoch, index, scheduler, bytesMax, this.log, this.limits));
    this.pump();
  }

  /** REPL_SNAPSHOT_ACK: true if the backup made progress on the snapshot it is being sent. */
  restored(conn: Connection, epoch: number, index: number, parts: number): boolean {
    const s = this.streams.get(conn.id);
    if (s === undefined || s.epoch !== epoch || s.index !== index || !s.restoredUpTo(parts)) return false;
    if (s.finished) this.streams.delete(conn.id);
    else this.pump();
    return true;
  }

  remove(conn: Connection): void {
    this.streams.get(conn.id)?.close();
    this.streams.delete(conn.id);
  }

  clear(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }

  /**
   * Sends one part to each backup whose window is open, then yields the event loop
   * and comes back while any window is still open (a socket that was full is tried
   * again on the next acknowledgement or pump()).
   */
  pump(): void {
    for (const s of [...this.streams.values()]) {
      if (!s.wantsToSend) continue;
      if (!s.sendOne()) this.remove(s.conn);
    }
    if (this.scheduled || ![...this.streams.values()].some((s) => s.wantsToSend)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }
}
