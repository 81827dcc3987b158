// The backup side of replication (src/coordinator/backup-log.ts) when its data
// directory fails: what it could not make durable, it never acknowledges, and a
// snapshot it could not write does not make it synced (it could lead on it). And
// the appends it keeps while a snapshot loads are bounded by --loading-appends-bytes-max.

import { expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { BackupLog, type BackupHost } from "../../src/coordinator/backup-log.ts";
import type { DataDir } from "../../src/coordinator/data-dir.ts";
import { EventLog, Ev } from "../../src/coordinator/event-log.ts";
import type { RoleControl } from "../../src/coordinator/role-control.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame-decoder.ts";
import { encodeSnapshotPart, writeSnapshotPart } from "../../src/coordinator/replication-codec.ts";
import { FrameWriter } from "../../src/protocol/codec.ts";
import { appendFrame, snapshotFrame } from "../sim/replication-wire.ts";
import { FUZZ_SCHEDULER_OPTIONS } from "../fuzz/fuzz-support.ts";

/** A backup of epoch 3 over a data directory whose writes succeed until `disk.failing` is set. */
function backup(loadingAppendsBytesMax = 256 * 1024 * 1024) {
  const calls = { synced: 0, acks: 0, resyncs: 0 };
  const lines: string[] = [];
  let synced = false;
  const control = {
    role: "backup", epoch: 3, primaryLabel: "p", get isSynced() {
      return synced;
    },
    synced: () => void ((synced = true), calls.synced++),
    resync: () => void calls.resyncs++,
    sendToPrimary: () => void calls.acks++,
  } as unknown as RoleControl;
  const disk = {
    failing: false, failed: false,
    write(write: (wal: unknown) => void) {
      if (this.failed || this.failing) return !(this.failed = true);
      write({ append: () => undefined, snapshot: () => undefined, wantsSnapshot: false });
      return true;
    },
    compactIfDue: () => undefined,
  };
  const host: BackupHost = {
    config: { scheduler: { ...FUZZ_SCHEDULER_OPTIONS }, loadingAppendsBytesMax } as BackupHost["config"], log: new Logger("test", "warn", (line) => void lines.push(line)), control,
    scheduler: new Scheduler({ ...FUZZ_SCHEDULER_OPTIONS }), disk: disk as unknown as DataDir,
  };
  return { log: new BackupLog(host), calls, disk, lines };
}

function deliver(log: BackupLog, frame: Uint8Array): void {
  forEachMessage(frame.subarray(FRAME_HEADER_BYTES), new Reader(), (kind, r) => log.apply(kind, r));
}

function oneTick(): { count: number; bytes: Uint8Array } {
  const events = new EventLog(0);
  events.append(Ev.TICK, 1, 0, new Uint8Array(0), 0, 0);
  return events.take();
}

test("an append written durably is acknowledged once; one whose write failed is not", () => {
  const b = backup();
  deliver(b.log, snapshotFrame(3, 0, new Scheduler({ ...FUZZ_SCHEDULER_OPTIONS }).exportState()));
  expect(b.calls.synced).toBe(1);
  const batch = oneTick();
  deliver(b.log, appendFrame(3, 1, batch.count, batch.bytes));
  b.log.acknowledge();
  b.log.acknowledge();
  expect(b.calls.acks).toBe(1);

  b.disk.failing = true;
  deliver(b.log, appendFrame(3, 2, batch.count, batch.bytes));
  b.log.acknowledge();
  expect(b.calls.acks).toBe(1);
});

test("a snapshot whose write failed does not make the backup synced", () => {
  const b = backup();
  b.disk.failing = true;
  deliver(b.log, snapshotFrame(3, 0, new Scheduler({ ...FUZZ_SCHEDULER_OPTIONS }).exportState()));
  expect(b.calls.synced).toBe(0);
});

/** The first part (the head) of a streamed snapshot at `index`, more to come. */
function headPartFrame(epoch: number, index: number): Uint8Array {
  const head = new Scheduler({ ...FUZZ_SCHEDULER_OPTIONS }).startExport().next()!;
  const w = new FrameWriter(1024);
  writeSnapshotPart(w, epoch, index, 0, false, encodeSnapshotPart(head));
  return w.finish().slice();
}

test("appends kept while a snapshot loads past --loading-appends-bytes-max start the load over, and the log says so", () => {
  const batch = oneTick();
  const limit = 3 * batch.bytes.byteLength;
  const b = backup(limit);
  b.disk.write = () => true; // without --data-dir (a DataDir without a log runs no writes)
  deliver(b.log, headPartFrame(3, 0));
  for (let i = 1; i <= 3; i++) deliver(b.log, appendFrame(3, i, batch.count, batch.bytes));
  expect(b.calls.resyncs).toBe(0); // at the limit: still kept
  deliver(b.log, appendFrame(3, 4, batch.count, batch.bytes));
  expect(b.calls.resyncs).toBe(1);
  const line = JSON.parse(b.lines.find((l) => l.includes("starting over"))!);
  expect(line).toMatchObject({ event: "too many appends while loading a snapshot; starting over", kept: 3, bytes: 4 * batch.bytes.byteLength, limit, flag: "--loading-appends-bytes-max" });
});
