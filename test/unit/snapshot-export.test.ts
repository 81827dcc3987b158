// A snapshot cut in parts while the scheduler keeps changing (copy-on-write,
// src/core/snapshot-export.ts) restores to the state at its start: between any
// two parts, a seeded mix of every kind of change (submits with parents and
// delays, dispatch, results, failures into the DLQ, cancels, heartbeats, worker
// loss, requeues, purges, retention evicting tasks, lease expiry).
//   SNAPSHOT_SEED=N bun test test/unit/snapshot-export.test.ts   (one seed)

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { SnapshotAssembly, type PartLimits, type SnapshotPart } from "../../src/core/snapshot-parts.ts";
import { isFinal } from "../../src/core/task.ts";
import { makeScheduler, request, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

const OPTIONS = { ...TEST_OPTIONS, queueMax: 100_000, retainedMax: 150, dlqMax: 40, leaseMs: 50, workerTimeoutMs: 400 };
const LIMITS: PartLimits = { bytesMax: 4_000, idsMax: 16 };
const SEEDS = process.env.SNAPSHOT_SEED !== undefined ? [Number(process.env.SNAPSHOT_SEED)] : Array.from({ length: 40 }, (_, i) => i + 1);
const STEPS_MAX = 2_000;

/** A scheduler with some of every state, driven by `prng`; `step` changes it a little. */
class Driver {
  readonly s: Scheduler = makeScheduler(OPTIONS);
  now = 1_000;
  private workers = 0;

  constructor(private readonly prng: Prng) {
    for (let i = 0; i < 3; i++) this.join();
    for (let i = 0; i < 400; i++) this.step();
  }

  private join(): void {
    this.workers++;
    this.s.workerJoined(this.workers, 1 + this.prng.int(4), this.prng.int(3) === 0 ? ["gpu"] : [], this.now);
  }

  private anyTask(): number {
    return this.s.exportState().tasks[0]?.id === undefined ? 0 : this.pick();
  }

  private pick(): number {
    const ids = this.s.exportState().tasks.map((t) => t.id);
    return ids[this.prng.int(ids.length)] ?? 0;
  }

  step(): void {
    const p = this.prng;
    this.now += p.int(20);
    const s = this.s;
    switch (p.int(12)) {
      case 0:
      case 1:
      case 2: {
        const parent = p.int(4) === 0 ? this.anyTask() : 0;
        s.submit(request({
          payload: new Uint8Array(p.int(300)), priority: p.int(4), maxAttempts: 1 + p.int(2), idempotencyKey: p.int(2) === 0 ? `k${p.int(500)}` : "",
          tags: p.int(6) === 0 ? ["gpu"] : [], runAt: p.int(8) === 0 ? this.now + p.int(200) : 0, dependsOn: parent !== 0 ? [parent] : [],
          watcher: p.int(3) === 0 ? 1 + p.int(5) : 0, watchRequestId: p.int(100),
        }), this.now);
        break;
      }
      case 3:
      case 4:
        s.dispatch(this.now);
        break;
      case 5:
      case 6: {
        const leased = s.exportState().tasks.filter((t) => t.state === "leased");
        const t = leased[p.int(leased.length)];
        if (t !== undefined) s.result(t.workerId, t.id, t.attempt, p.int(3) !== 0, new Uint8Array(p.int(50)), this.now);
        break;
      }
      case 7: {
        const id = this.anyTask();
        if (id !== 0) s.cancel(id, this.now);
        break;
      }
      case 8: {
        const dead = s.exportState().dlq;
        if (dead.length > 0) p.int(4) === 0 ? s.purge([dead[p.int(dead.length)]!]) : s.requeue(dead[p.int(dead.length)]!, this.now);
        break;
      }
      case 9:
        s.heartbeat(1 + p.int(this.workers), this.now);
        break;
      case 10:
        if (p.int(10) === 0) s.workerLeft(1 + p.int(this.workers), this.now);
        else if (p.int(10) === 0) this.join();
        else s.watchTask(this.anyTask(), { conn: 1 + p.int(5), requestId: p.int(100) });
        break;
      default:
        this.now += p.int(100);
        s.tick(this.now);
    }
    s.takeReady();
  }
}

function restore(parts: SnapshotPart[]): Scheduler {
  const a = new SnapshotAssembly(OPTIONS.agingMs);
  for (const p of parts) a.add(structuredClone(p));
  return new Scheduler(OPTIONS, a.finish());
}

describe("a snapshot cut while the scheduler changes", () => {
  for (const seed of SEEDS) {
    test(`seed=${seed}: the parts restore to the state at its start`, () => {
      const prng = new Prng(seed);
      const d = new Driver(prng);
      const atStart = structuredClone(d.s.exportState());
      const exporting = d.s.startExport(LIMITS);
      const parts: SnapshotPart[] = [];
      let changes = 0;
      for (let part = exporting.next(); part !== undefined; part = exporting.next()) {
        parts.push(structuredClone(part));
        const n = prng.int(6);
        for (let i = 0; i < n && changes < STEPS_MAX; i++, changes++) d.step();
      }
      const restored = restore(parts).exportState();
      if (!Bun.deepEquals(restored, atStart)) console.log(`reproduce with SNAPSHOT_SEED=${seed}`);
      expect(restored).toEqual(atStart);
      // The run did change what was snapshotted: otherwise this proves nothing.
      expect(d.s.exportState()).not.toEqual(atStart);
      expect(atStart.tasks.some((t) => isFinal(t.state))).toBe(true);
      expect(parts.length).toBeGreaterThan(5);
    });
  }

  test("a closed export keeps nothing and the tables forget it", () => {
    const d = new Driver(new Prng(7));
    const e = d.s.startExport(LIMITS);
    e.next();
    e.close();
    for (let i = 0; i < 50; i++) d.step();
    expect(e.next()).toBeUndefined();
  });
});
