// A backup's share of a replicated task, without sockets or other processes: a
// primary's log of no-op tasks (each with an idempotency key, as the client sends
// them) is built in memory the way the primary builds it (append the input, apply
// it, one DISPATCH per batch), cut into appends of one batch each, and then
// applied by a fresh scheduler exactly as a backup applies appends
// (BackupLog: readEntries -> applyEntry -> takeReady). Prints µs per task to
// apply, and the share of each entry type; run it with `bun --cpu-prof-md` to see
// where in the code.
//
//   bun bench/backup-apply.ts [--tasks 600000] [--batch 256] [--runs 5]

import { parseArgs } from "node:util";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";
import { applyEntry, encodeWorkerJoined, Ev, EventLog } from "../src/coordinator/event-log.ts";
import { readEntries } from "../src/coordinator/replication-codec.ts";
import { FrameWriter, Reader, writeResult, writeSubmit } from "../src/protocol/codec.ts";
import { SUBMIT_FLAG_NOTIFY, TaskStatus } from "../src/protocol/messages.ts";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "600000" },
    batch: { type: "string", default: "256" },
    runs: { type: "string", default: "5" },
  },
});
const TASKS = Number(values.tasks);
const BATCH = Number(values.batch);
const WORKER = 1;
const EMPTY = new Uint8Array(0);
/** The message header in front of a body in a FrameWriter holding one message: u32 frame bytes | u8 kind | u32 body bytes. */
const BODY_AT = 9;

const options = { ...DEFAULT_SCHEDULER_OPTIONS, shard: 0 };
const wire = new FrameWriter(1024);
const reader = new Reader();

/** One message's body as a coordinator receives it. */
function body(encode: (w: FrameWriter) => void): Uint8Array {
  wire.reset();
  encode(wire);
  return wire.finish().subarray(BODY_AT);
}

/** The primary's log, one batch per append (what one pump ships), with the entry type of each entry. */
function primaryLog(): Array<{ firstIndex: number; count: number; bytes: Uint8Array }> {
  const scheduler = new Scheduler(options);
  const log = new EventLog();
  const appends: Array<{ firstIndex: number; count: number; bytes: Uint8Array }> = [];
  const record = (type: number, subject: number, b: Uint8Array = EMPTY, now = 0) => {
    const start = log.append(type, now, subject, b);
    return applyEntry(scheduler, reader.reset(log.bytes, start, log.length));
  };
  record(Ev.WORKER_JOINED, WORKER, encodeWorkerJoined(BATCH, [], ["noop"]));
  let seq = 0;
  for (let done = 0, now = 1; done < TASKS; now++) {
    for (let i = 0; i < BATCH && done < TASKS; i++, done++) {
      const submit = body((w) => writeSubmit(w, {
        requestId: seq, priority: 100, flags: SUBMIT_FLAG_NOTIFY, maxAttempts: 3, timeoutMs: 0, type: "noop", idempotencyKey: `12345-lq8x3k-${seq++}`, payload: EMPTY,
      }));
      record(Ev.SUBMIT, 7, submit, now);
    }
    record(Ev.DISPATCH, 0, EMPTY, now);
    const leased = scheduler.takeReady().assignments.get(WORKER) ?? [];
    for (const t of leased) record(Ev.RESULT, WORKER, body((w) => writeResult(w, t.id, t.attempt, TaskStatus.OK, EMPTY)), now);
    scheduler.takeReady();
    const batch = log.take();
    appends.push({ firstIndex: batch.firstIndex, count: batch.count, bytes: batch.bytes.slice() });
  }
  return appends;
}

/** Applies every append to a fresh scheduler as BackupLog does; returns µs per task. */
function applyAsBackup(appends: ReturnType<typeof primaryLog>, timeByType?: Map<number, number>): number {
  const scheduler = new Scheduler(options);
  const entryReader = new Reader();
  const started = performance.now();
  for (const a of appends) {
    const batch = readEntries(1, a.firstIndex, a.count, a.bytes);
    if (timeByType === undefined) batch.readEachEntry(entryReader, (entry) => applyEntry(scheduler, entry));
    else {
      batch.readEachEntry(entryReader, (entry) => {
        const type = entry.bytes[entry.pos]!;
        const t = performance.now();
        applyEntry(scheduler, entry);
        timeByType.set(type, (timeByType.get(type) ?? 0) + performance.now() - t);
      });
    }
    scheduler.takeReady();
  }
  return ((performance.now() - started) * 1000) / TASKS;
}

const appends = primaryLog();
const entries = appends.reduce((n, a) => n + a.count, 0);
const bytes = appends.reduce((n, a) => n + a.bytes.length, 0);
console.log(`${TASKS} no-op tasks, batches of ${BATCH}: ${(entries / TASKS).toFixed(2)} entries and ${(bytes / TASKS).toFixed(1)} log bytes per task`);
const runs: number[] = [];
for (let i = 0; i < Number(values.runs); i++) runs.push(applyAsBackup(appends));
runs.sort((a, b) => a - b);
console.log(`backup apply: ${runs[Math.floor(runs.length / 2)]!.toFixed(2)} µs per task (median of ${runs.length}; min ${runs[0]!.toFixed(2)}, max ${runs.at(-1)!.toFixed(2)})`);
const byType = new Map<number, number>();
applyAsBackup(appends, byType);
const total = [...byType.values()].reduce((a, b) => a + b, 0);
const names = new Map(Object.entries(Ev).map(([name, n]) => [n as number, name]));
console.log(`by entry type (timed one by one, so the sum is above the figure): ${[...byType].map(([t, ms]) => `${names.get(t)} ${((ms * 1000) / TASKS).toFixed(2)} µs/task (${Math.round((ms / total) * 100)}%)`).join(", ")}`);
