// Held heartbeats (src/core/held-heartbeats.ts): what is held and handed back,
// and, from seeded random runs, that a primary holding heartbeats as the
// coordinator does ends every step where one that logs each heartbeat on
// arrival does: the same effects, the same state once it logs what it held,
// and the same ticks. Reproduce a failure with the seed it prints:
// HEARTBEAT_SEED=N bun test test/unit/held-heartbeats.test.ts

import { describe, expect, test } from "bun:test";
import { HeldHeartbeats } from "../../src/core/held-heartbeats.ts";
import { Prng } from "../../src/core/prng.ts";
import type { Ready, Scheduler } from "../../src/core/scheduler.ts";
import { makeScheduler, request, utf8 } from "../support/scheduler-fixtures.ts";

describe("HeldHeartbeats", () => {
  test("keeps the latest heartbeat of each worker, in arrival order", () => {
    const held = new HeldHeartbeats();
    expect(held.hold({ workerId: 1, at: 10, running: [5] })).toEqual([]);
    expect(held.hold({ workerId: 2, at: 11, running: [] })).toEqual([]);
    expect(held.hold({ workerId: 1, at: 12, running: [5, 6] })).toEqual([]); // names all the first did
    expect(held.size).toBe(2);
    expect(held.heardAt(1)).toBe(12);
    expect(held.take()).toEqual([{ workerId: 2, at: 11, running: [] }, { workerId: 1, at: 12, running: [5, 6] }]);
    expect(held.size).toBe(0);
    expect(held.heardAt(1)).toBeUndefined();
  });

  test("hands back an earlier heartbeat that names a task the later one does not: its lease extension must be logged", () => {
    const held = new HeldHeartbeats();
    held.hold({ workerId: 1, at: 10, running: [5, 6] });
    expect(held.hold({ workerId: 1, at: 20, running: [6] })).toEqual([{ workerId: 1, at: 10, running: [5, 6] }]);
    expect(held.take()).toEqual([{ workerId: 1, at: 20, running: [6] }]);
  });
});

const STEPS = 3_000;
const WORKERS = 3;
/** Between steps: long against the heartbeat interval, short against leases and worker time-outs. */
const STEP_MS_MAX = 60;
const envSeed = process.env.HEARTBEAT_SEED;
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : [1, 2, 3, 42, 0xbeef];

/** Effects as comparable plain data. */
function effects(ready: Ready): unknown {
  return {
    assignments: [...ready.assignments].map(([w, tasks]) => [w, tasks.map((t) => [t.id, t.attempt])]),
    finished: ready.finished.map((t) => [t.id, t.state]),
    lostWorkers: ready.lostWorkers,
  };
}

/**
 * Two primaries fed the same inputs: `eager` applies each heartbeat on arrival;
 * `lazy` holds them and applies them as coordinator.ts logs them (before any
 * other input, and before a tick that would change something).
 */
class Twins {
  readonly eager = makeScheduler({ leaseMs: 400, workerTimeoutMs: 700 });
  readonly lazy = makeScheduler({ leaseMs: 400, workerTimeoutMs: 700 });
  readonly held = new HeldHeartbeats();
  readonly seen = { merged: 0, handedBack: 0, ticks: 0, heldThroughTicks: 0, lost: 0 };

  heartbeat(workerId: number, now: number, running: number[]): void {
    this.eager.heartbeat(workerId, now, running);
    const before = this.held.size;
    const logNow = this.held.hold({ workerId, at: now, running });
    for (const beat of logNow) this.lazy.heartbeat(beat.workerId, beat.at, beat.running);
    if (logNow.length > 0) this.seen.handedBack++;
    else if (this.held.size === before) this.seen.merged++;
  }

  /** Any other input: held heartbeats are applied first, then both must agree exactly. Returns the effects. */
  input(apply: (s: Scheduler) => void): Ready {
    this.logHeld();
    apply(this.eager);
    apply(this.lazy);
    return this.compare();
  }

  tick(now: number): void {
    const eagerTicks = this.eager.tickWouldChange(now);
    let lazyTicks = this.lazy.tickWouldChange(now);
    if (lazyTicks) {
      this.logHeld();
      lazyTicks = this.lazy.tickWouldChange(now);
    } else if (this.held.size > 0) this.seen.heldThroughTicks++;
    expect(lazyTicks).toBe(eagerTicks);
    if (!eagerTicks) return;
    this.seen.ticks++;
    this.eager.tick(now);
    this.lazy.tick(now);
    this.compare();
  }

  private logHeld(): void {
    for (const beat of this.held.take()) this.lazy.heartbeat(beat.workerId, beat.at, beat.running);
  }

  private compare(): Ready {
    const [a, b] = [this.eager.takeReady(), this.lazy.takeReady()];
    this.seen.lost += a.lostWorkers.length;
    expect(effects(b)).toEqual(effects(a));
    expect(this.lazy.exportState()).toEqual(this.eager.exportState());
    return a;
  }
}

function run(seed: number, twins: Twins): void {
  const prng = new Prng(seed);
  const running = new Map<number, number[]>(); // per worker: the task ids it runs (as it would name them)
  const silentUntil = new Map<number, number>();
  let now = 0;
  for (let w = 1; w <= WORKERS; w++) {
    twins.input((s) => s.workerJoined(w, 2, [], now));
    running.set(w, []);
  }
  for (let step = 0; step < STEPS; step++) {
    now += 1 + prng.int(STEP_MS_MAX);
    const roll = prng.int(100);
    if (roll < 10) twins.input((s) => void s.submit(request({ payload: utf8.encode(`t${step}`) }), now));
    else if (roll < 15) {
      // A result for a task one worker runs, or a worker that leaves and comes back.
      const w = 1 + prng.int(WORKERS);
      const ids = running.get(w)!;
      if (ids.length > 0 && prng.int(8) > 0) {
        const id = ids.splice(prng.int(ids.length), 1)[0]!;
        const attempt = twins.eager.task(id)?.attempt ?? 0;
        twins.input((s) => s.result(w, id, attempt, true, utf8.encode("ok"), now));
      } else if (twins.eager.worker(w) !== undefined) {
        twins.input((s) => s.workerLeft(w, now));
        running.set(w, []);
      } else twins.input((s) => s.workerJoined(w, 2, [], now));
    } else if (roll < 20) {
      // Silent for a while: sometimes longer than a lease or the worker time-out.
      silentUntil.set(1 + prng.int(WORKERS), now + prng.int(1_000));
    }
    for (let w = 1; w <= WORKERS; w++) {
      if (twins.eager.worker(w) === undefined || now < (silentUntil.get(w) ?? 0)) continue;
      // Now and then a worker forgets a task (a crashed job): its heartbeats stop naming it.
      const ids = running.get(w)!;
      if (ids.length > 0 && prng.int(40) === 0) ids.splice(prng.int(ids.length), 1);
      twins.heartbeat(w, now, [...ids]);
    }
    twins.tick(now);
    if (twins.eager.dispatchWouldChange(now)) {
      for (const [w, tasks] of twins.input((s) => s.dispatch(now)).assignments) running.get(w)!.push(...tasks.map((t) => t.id));
    }
    for (const [w, ids] of running) if (twins.eager.worker(w) === undefined) ids.length = 0; // lost by the tick
  }
}

describe("held heartbeats change no decision", () => {
  for (const seed of SEEDS) {
    test(`seed=${seed}: the same effects, states and ticks as logging every heartbeat`, () => {
      const twins = new Twins();
      try {
        run(seed, twins);
      } catch (err) {
        throw new Error(`seed=${seed}: ${String(err)}`, { cause: err });
      }
      // The run must have held heartbeats through quiet ticks, merged them, handed some back, and dropped workers.
      for (const [what, count] of Object.entries(twins.seen)) expect({ what, atLeastOne: count > 0 }).toEqual({ what, atLeastOne: true });
    });
  }
});
