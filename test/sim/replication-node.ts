// One coordinator of the simulated shard: the REAL Scheduler (and, as primary,
// EventLog), and as a backup the receiving end of the replication stream as
// coordinator.ts has it: bytes through a FrameDecoder, REPL_SNAPSHOT restored
// with decodeSnapshot + Scheduler.fromState, REPL_APPEND applied in order and
// in its epoch with applyEntry, then an ack of what was applied.

import { applyEntry, EventLog } from "../../src/coordinator/event-log.ts";
import { decodeSnapshot, readAppend } from "../../src/coordinator/replication-codec.ts";
import { Scheduler, type SchedulerOptions } from "../../src/core/scheduler.ts";
import { forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { KNOWN_BUGS } from "./replication-known-bugs.ts";

export type NodeRole = "primary" | "backup" | "down";

/** Peer links accept frames as large as a snapshot. */
const FRAME_BYTES_MAX = 1 << 30;

export class SimNode {
  role: NodeRole = "backup";
  epoch = 0;
  scheduler: Scheduler;
  /** Last entry applied (on the primary: appended and applied). */
  appliedIndex = 0;
  /** Has applied a snapshot from its primary: only then do batches apply (peers.ts stateSynced). */
  synced = false;
  log: EventLog | undefined;
  /** Bumped per connection to a primary and per restart: bytes sent to an older one are dropped. */
  connection = 0;
  /** When its snapshot request (REPL_SYNC) reaches the primary: after a restart, a failover, a drop. */
  syncAt: number | undefined;
  downSince = 0;
  /** The process is stopped until then: it reads nothing and acks nothing. */
  pausedUntil = 0;
  private decoder = new FrameDecoder(FRAME_BYTES_MAX);
  private wireReader = new Reader();
  private readonly entryReader = new Reader();
  private ackedUpTo = 0;

  constructor(
    readonly name: string,
    private readonly options: SchedulerOptions,
  ) {
    this.scheduler = new Scheduler(options);
  }

  /** The reader a primary applies its own entries with. */
  get reader(): Reader {
    return this.entryReader;
  }

  /** A new connection to the primary: a fresh decoder; its state waits for the snapshot. */
  connect(): number {
    this.decoder = new FrameDecoder(FRAME_BYTES_MAX);
    this.wireReader = new Reader();
    this.synced = false;
    this.ackedUpTo = 0;
    this.syncAt = undefined;
    return ++this.connection;
  }

  /** Bytes off the replication connection, in order, split anyhow. */
  receive(chunks: ReadonlyArray<{ bytes: Uint8Array }>): void {
    for (const chunk of chunks) {
      this.decoder.push(chunk.bytes, (body) => forEachMessage(body, this.wireReader, (kind, r) => this.fromPrimary(kind, r)));
    }
  }

  /** At the end of a read: the index to acknowledge, if it moved (coordinator.ackPrimary). */
  takeAck(): number | undefined {
    if (!this.synced || this.appliedIndex === this.ackedUpTo) return undefined;
    this.ackedUpTo = this.appliedIndex;
    return this.appliedIndex;
  }

  becomePrimary(epoch: number): void {
    this.role = "primary";
    this.epoch = epoch;
    this.syncAt = undefined;
    this.log = new EventLog(this.appliedIndex);
  }

  /** kill -9. */
  down(now: number): void {
    this.role = "down";
    this.log = undefined;
    this.synced = false;
    this.syncAt = undefined;
    this.downSince = now;
  }

  /** A new, empty process; it asks the primary for a snapshot at `syncAt`. */
  restart(syncAt: number): void {
    this.role = "backup";
    this.connection++;
    this.epoch = 0;
    this.scheduler = new Scheduler(this.options);
    this.appliedIndex = 0;
    this.synced = false;
    this.pausedUntil = 0;
    this.syncAt = syncAt;
  }

  /** coordinator.fromPrimary. */
  private fromPrimary(kind: number, r: Reader): void {
    if (kind === Kind.REPL_SNAPSHOT) {
      const snap = decodeSnapshot(KNOWN_BUGS.copySnapshotFrame ? new Reader().reset(r.bytes.slice(r.pos, r.end)) : r);
      if (snap.epoch < this.epoch) throw new Error(`${this.name} at epoch ${this.epoch} got a snapshot of epoch ${snap.epoch}`);
      this.scheduler = Scheduler.fromState(this.options, snap.state);
      this.appliedIndex = snap.index;
      this.ackedUpTo = 0;
      this.synced = true;
      this.epoch = snap.epoch;
      return;
    }
    if (kind !== Kind.REPL_APPEND) throw new Error(`${this.name} got message kind ${kind} on its replication stream`);
    const batch = readAppend(r);
    if (batch.epoch !== this.epoch || !this.synced) return; // a stale primary, or before our snapshot
    if (batch.firstIndex !== this.appliedIndex + 1) {
      throw new Error(`${this.name} got entries from ${batch.firstIndex} after applying ${this.appliedIndex}: a batch was lost or reordered`);
    }
    batch.forEachEntry((entry) => applyEntry(this.scheduler, this.entryReader.reset(entry)));
    this.appliedIndex += batch.count;
    this.scheduler.takeReady(); // a backup's effects are the primary's business
  }
}
