// The backup side of replication (src/coordinator/backup-log.ts) when its data
// directory fails: what it could not make durable, it never acknowledges, and a
// snapshot it could not write does not make it synced (it could lead on it).

import { expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { BackupLog, type BackupHost } from "../../src/coordinator/backup-log.ts";
import type { DataDir } from "../../src/coordinator/data-dir.ts";
import { EventLog, Ev } from "../../src/coordinator/event-log.ts";
import type { RoleControl } from "../../src/coordinator/role-control.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { FRAME_HEADER_BYTES } from "../../src/protocol/frame-decoder.ts";
import { appendFrame, snapshotFrame } from "../sim/replication-wire.ts";
import { FUZZ_SCHEDULER_OPTIONS } from "../fuzz/fuzz-support.ts";

/** A backup of epoch 3 over a data directory whose writes succeed until `disk.failing` is set. */
function backup() {
  const calls = { synced: 0, acks: 0 };
  let synced = false;
  const control = {
    role: "backup", epoch: 3, primaryLabel: "p", get isSynced() {
      return synced;
    },
    synced: () => void ((synced = true), calls.synced++),
    resync: () => undefined,
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
    config: { scheduler: { ...FUZZ_SCHEDULER_OPTIONS } } as BackupHost["config"], log: new Logger("test", "error", () => {}), control,
    scheduler: new Scheduler({ ...FUZZ_SCHEDULER_OPTIONS }), disk: disk as unknown as DataDir,
  };
  return { log: new BackupLog(host), calls, disk };
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
