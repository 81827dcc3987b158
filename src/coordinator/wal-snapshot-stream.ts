// A backup's snapshot file, written part by part as a streamed snapshot arrives
// rather than all at once after it: encoding and writing 100+ MB in one go stood the
// backup still for seconds once it had loaded, so it acknowledged nothing, and the
// primary dropped it and started over (with --data-dir, again and again). The file is
// the one WriteAheadLog.snapshot() writes: a TSSNAP01 header (body bytes, CRC-32),
// then `u32 epoch | f64 index | msgpack SchedulerState`; here the msgpack map is
// written field by field and the task array task by task, the CRC kept as it goes.
// The temp file replaces the last snapshot only once whole and synced. The log's own
// compaction writes its snapshot the same way (wal-compaction.ts), to a temp file of
// its own and keeping the records appended meanwhile.

import { closeSync, fdatasyncSync, fsyncSync, openSync, unlinkSync, writeSync } from "node:fs";
import { Encoder } from "@msgpack/msgpack";
import type { SchedulerState } from "../core/scheduler-state.ts";
import type { SnapshotHead, SnapshotPart } from "../core/snapshot-parts.ts";
import { SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC, writeAll, type WriteAheadLog } from "./wal.ts";

/**
 * Synced every this many bytes as it is written, so the sync at the end has little left to
 * flush: ~1 ms a sync on the test machine's disk (16 MiB took ~7 ms, a stall in one turn).
 */
export const SNAPSHOT_SYNC_EVERY_BYTES = 2 * 1024 * 1024;

const encoder = new Encoder({ ignoreUndefined: true });

/** Ids encoded per step of rest(): ~2-3 ms of work. */
const IDS_PER_WRITE = 16_384;

/** The SchedulerState fields, in the order they are written (keys of the msgpack map). */
const FIELDS = ["nextSeq", "workerRotation", "counters", "tasks", "ready", "finished", "dlq", "foreignParents", "workers"] as const satisfies ReadonlyArray<keyof SchedulerState>;

export class SnapshotFileStream {
  private readonly fd: number;
  private crc = 0;
  private bodyBytes = 0;
  private unsynced = 0;
  private readonly queued: number[] = [];
  private readonly ids = { finished: [] as number[], dlq: [] as number[] };
  private open = true;
  /** Installed (renamed over the last snapshot) or given up: the temp file name is no longer ours. */
  private over = false;

  /** Starts the file with everything up to the task array (whose length the head gives). */
  constructor(
    private readonly wal: WriteAheadLog,
    private readonly epoch: number,
    private readonly index: number,
    private readonly head: SnapshotHead,
    private readonly tempFile = wal.snapshotTempFile,
  ) {
    this.fd = openSync(tempFile, "w");
    writeAll(this.fd, new Uint8Array(SNAPSHOT_HEADER_BYTES)); // filled in by finish()
    const start = new Uint8Array(12);
    const v = new DataView(start.buffer);
    v.setUint32(0, epoch, true);
    v.setFloat64(4, index, true);
    this.write(start);
    this.write(Uint8Array.of(0x80 | FIELDS.length)); // fixmap
    this.field("nextSeq", head.nextSeq);
    this.field("workerRotation", head.workerRotation);
    this.field("counters", head.counters);
    this.write(encoder.encode("tasks"));
    this.write(arrayHeader(head.taskCount));
  }

  /** A part after the head, as restored (its tasks are written as exportState() gives them). */
  add(part: SnapshotPart): void {
    if (part.k === "head") return;
    if (part.k !== "tasks") {
      for (const id of part.ids) this.ids[part.k].push(id);
      return;
    }
    for (const t of part.tasks) if (t.state === "queued") this.queued.push(t.id);
    // Encoded as one array, written without its header: the tasks one after another, as the
    // file's task array holds them. (A copy per task was ~800 buffers of garbage a part.)
    const packed = encoder.encodeSharedRef(part.tasks);
    this.write(packed.subarray(encodedArrayHeaderBytes(packed)));
  }

  /** The rest of the state, then synced, then in place of the last snapshot (the log kept from byte `keepLogFrom` on: by default emptied). */
  finish(keepLogFrom?: number): void {
    for (const _ of this.rest(keepLogFrom));
  }

  /**
   * finish() a step at a time, for a caller that yields the event loop between steps: the
   * id lists go IDS_PER_WRITE at a time (encoding a million queued ids at once took ~120 ms).
   */
  *rest(keepLogFrom?: number, detail?: () => Record<string, unknown>): Generator<void, void> {
    yield* this.idsField("ready", this.queued);
    yield* this.idsField("finished", this.ids.finished);
    yield* this.idsField("dlq", this.ids.dlq);
    this.field("foreignParents", this.head.foreignParents);
    this.field("workers", this.head.workers);
    const header = new Uint8Array(SNAPSHOT_HEADER_BYTES);
    header.set(SNAPSHOT_MAGIC);
    const h = new DataView(header.buffer);
    h.setUint32(SNAPSHOT_MAGIC.length, this.bodyBytes, true);
    h.setUint32(SNAPSHOT_MAGIC.length + 4, this.crc >>> 0, true);
    writeSync(this.fd, header, 0, header.length, 0);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.open = false;
    yield;
    this.wal.installSnapshot(this.epoch, this.index, this.bodyBytes, this.tempFile, keepLogFrom, detail?.());
    this.over = true;
  }

  /**
   * Given up (a new snapshot, a new primary): the temp file goes, the last snapshot stays.
   * Also once rest() has closed the file but not yet installed it (a turn between the two):
   * a snapshot-sized file would otherwise stay on disk until the next one overwrote it.
   */
  abandon(): void {
    if (this.over) return;
    this.over = true;
    if (this.open) {
      this.open = false;
      closeSync(this.fd);
    }
    try {
      unlinkSync(this.tempFile);
    } catch {
      // already gone: nothing to clean up
    }
  }

  /** A list of ids, written a slice at a time (one array header, then each slice's values). */
  private *idsField(name: (typeof FIELDS)[number], ids: number[]): Generator<void, void> {
    this.write(encoder.encode(name));
    this.write(arrayHeader(ids.length));
    for (let at = 0; at < ids.length; at += IDS_PER_WRITE) {
      const packed = encoder.encode(ids.slice(at, at + IDS_PER_WRITE));
      this.write(packed.subarray(encodedArrayHeaderBytes(packed)));
      yield;
    }
  }

  private field(name: (typeof FIELDS)[number], value: unknown): void {
    this.write(encoder.encode(name));
    this.write(encoder.encode(value));
  }

  private write(bytes: Uint8Array): void {
    writeAll(this.fd, bytes);
    this.crc = Bun.hash.crc32(bytes, this.crc);
    this.bodyBytes += bytes.length;
    this.unsynced += bytes.length;
    if (this.unsynced >= SNAPSHOT_SYNC_EVERY_BYTES) {
      fdatasyncSync(this.fd);
      this.unsynced = 0;
    }
  }
}

/** How many bytes of an encoded array are its header (fixarray, array 16, array 32). */
function encodedArrayHeaderBytes(packed: Uint8Array): number {
  const first = packed[0]!;
  if (first >= 0x90 && first <= 0x9f) return 1;
  if (first === 0xdc) return 3;
  if (first === 0xdd) return 5;
  throw new Error(`not a msgpack array (first byte ${first})`);
}

function arrayHeader(n: number): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = 0xdd; // array 32
  new DataView(b.buffer).setUint32(1, n); // msgpack lengths are big-endian
  return b;
}
