// A state cut into bounded parts and restored part by part is the state it was cut from,
// and parts out of order or short of what the head promised are refused.

import { describe, expect, test } from "bun:test";
import { encodeSnapshotPart, readSnapshotPart, TASK_FIELDS, taskOfRow, writeSnapshotPart } from "../../src/coordinator/replication-codec.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { FrameWriter, forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { SnapshotAssembly, taskBytesEstimate, type SnapshotPart } from "../../src/core/snapshot-parts.ts";
import { FAIL, makeScheduler, OK, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

/** Queued, leased, completed and dead-lettered tasks, some with payloads of several sizes. */
function busyScheduler(): Scheduler {
  const s = makeScheduler({ queueMax: 10_000, retainedMax: 10_000, dlqMax: 10_000 });
  s.workerJoined(1, 20, [], 0);
  s.workerJoined(2, 20, ["gpu"], 0);
  for (let i = 0; i < 600; i++) submitOk(s, i, { priority: i % 5, payload: new Uint8Array(i % 7 === 0 ? 3000 : 10), maxAttempts: 1, idempotencyKey: i % 3 === 0 ? `k${i}` : "" });
  for (let round = 0; round < 3; round++) {
    s.dispatch(1000 + round);
    const leased = [...s.takeReady().assignments.values()].flat();
    for (const [n, t] of leased.slice(0, 25).entries()) s.result(t.workerId, t.id, t.attempt, n % 4 === 0 ? FAIL : OK, new Uint8Array(5), 1100 + round);
    s.takeReady();
  }
  return s;
}

function cut(s: Scheduler, limits = { bytesMax: 8000, idsMax: 50 }): SnapshotPart[] {
  const cutter = s.startExport(limits);
  const parts: SnapshotPart[] = [];
  for (let p = cutter.next(); p !== undefined; p = cutter.next()) parts.push(structuredClone(p));
  return parts;
}

function assemble(parts: SnapshotPart[]): Scheduler {
  const a = new SnapshotAssembly(TEST_OPTIONS.agingMs);
  for (const p of parts) a.add(p);
  return new Scheduler(TEST_OPTIONS, a.finish());
}

describe("snapshot parts", () => {
  test("restored part by part, the state equals the one cut", () => {
    const s = busyScheduler();
    const state = s.exportState();
    expect(state.ready.length).toBeGreaterThan(100);
    expect(state.tasks.some((t) => t.state === "leased")).toBe(true);
    expect(state.finished.length).toBeGreaterThan(0);
    expect(state.dlq.length).toBeGreaterThan(0);
    const parts = cut(s);
    expect(parts.length).toBeGreaterThan(10);
    expect(assemble(parts).exportState()).toEqual(state);
  });

  test("each part stays within its limits (a task bigger than the limit goes alone)", () => {
    const limits = { bytesMax: 8000, idsMax: 50 };
    for (const p of cut(busyScheduler(), limits)) {
      if (p.k === "tasks") {
        const bytes = p.tasks.reduce((n, t) => n + taskBytesEstimate(t), 0);
        expect(p.tasks.length === 1 || bytes <= limits.bytesMax).toBe(true);
      } else if (p.k !== "head") expect(p.ids.length).toBeLessThanOrEqual(limits.idsMax);
    }
  });

  test("a streamed snapshot that breaks an invariant is refused, as a whole one is (a task both queued and leased)", () => {
    const parts = cut(busyScheduler());
    // A leased task that also says queued: the worker's lease list still holds it.
    const leased = parts.flatMap((p) => (p.k === "tasks" ? p.tasks : [])).find((t) => t.state === "leased")!;
    leased.state = "queued";
    const head = parts.find((p) => p.k === "head") as Extract<SnapshotPart, { k: "head" }>;
    head.head.readyCount++;
    expect(() => assemble(parts)).toThrow(/snapshot refused, not loaded: invariant broken/);
  });

  test("an empty scheduler is one part, and restores", () => {
    const s = makeScheduler();
    const parts = cut(s);
    expect(parts.map((p) => p.k)).toEqual(["head"]);
    expect(assemble(parts).exportState()).toEqual(s.exportState());
  });

  test("parts out of order, missing or extra are refused", () => {
    const parts = cut(busyScheduler());
    const lastTasks = parts.findLastIndex((p) => p.k === "tasks");
    expect(() => assemble(parts.slice(1))).toThrow(/before its head/);
    expect(() => assemble(parts.slice(0, -1))).toThrow(/ended with/);
    expect(() => assemble([...parts.slice(0, lastTasks), ...parts.slice(lastTasks + 1)])).toThrow(/before all/);
    expect(() => assemble([...parts, parts.at(-1)!])).toThrow(/more/);
    const swapped = [...parts];
    [swapped[lastTasks], swapped[lastTasks + 1]] = [swapped[lastTasks + 1]!, swapped[lastTasks]!];
    expect(() => assemble(swapped)).toThrow();
  });
});

describe("snapshot parts on the wire (REPL_SNAPSHOT_PART)", () => {
  /** Each part through FrameWriter and forEachMessage, as a backup reads it. */
  function throughTheWire(parts: SnapshotPart[]): SnapshotPart[] {
    const back: SnapshotPart[] = [];
    for (const [seq, part] of parts.entries()) {
      const w = new FrameWriter(256);
      writeSnapshotPart(w, 7, 99, seq, seq === parts.length - 1, encodeSnapshotPart(part));
      forEachMessage(w.finish().subarray(4), new Reader(), (kind, r) => {
        expect(kind).toBe(Kind.REPL_SNAPSHOT_PART);
        const f = readSnapshotPart(r);
        expect({ epoch: f.epoch, index: f.index, seq: f.seq, last: f.last }).toEqual({ epoch: 7, index: 99, seq, last: seq === parts.length - 1 });
        back.push(f.part);
      });
    }
    return back;
  }

  test("a state sent part by part and restored is the state cut", () => {
    const s = busyScheduler();
    expect(assemble(throughTheWire(cut(s))).exportState()).toEqual(s.exportState());
  });

  test("tasks travel as rows of TASK_FIELDS, which names every field of a task", () => {
    const s = busyScheduler();
    const fields = new Set<string>();
    for (const t of s.exportState().tasks) for (const key of Object.keys(t)) fields.add(key);
    expect([...fields].sort()).toEqual([...TASK_FIELDS].sort());
    // taskOfRow reads each field from its place in the row.
    const row = TASK_FIELDS.map((_, i) => i + 1);
    expect(Object.entries(taskOfRow(row))).toEqual(TASK_FIELDS.map((f, i) => [f, i + 1]));
  });
});
