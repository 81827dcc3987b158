// Replication of one shard (a primary and one or two backups) over the real
// EventLog, applyEntry, Scheduler and snapshot code:
//  - a seeded simulation with crashes at random points (replication-cluster.ts),
//    invariants after every step; reproduce a failure with the seed it prints:
//    SIM_SEED=N bun test test/sim/replication-sim   (SIM_TRACE=1: role changes, commits)
//  - the snapshot round trip: export, msgpack, restore, then the same entries on both;
//  - one scenario per src bug the simulation found (replication-known-bugs.ts).
//    Those fail until src is fixed: each loses or corrupts acknowledged work;
//  - an idle-but-queued pair: acks pump the primary, and nothing is logged.

import { describe, expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { applyEntry, encodeRunning, encodeWorkerJoined, Ev, EventLog } from "../../src/coordinator/event-log.ts";
import { ReplicaSet } from "../../src/coordinator/replica-set.ts";
import { decodeSnapshot, readAppend } from "../../src/coordinator/replication-codec.ts";
import { Scheduler, type Ready } from "../../src/core/scheduler.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter, forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { FRAME_HEADER_BYTES, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { BackoffType, Kind, SUBMIT_FLAG_NOTIFY, type SubmitExtras } from "../../src/protocol/messages.ts";
import { Prng } from "../../src/core/prng.ts";
import { ReplicationSim, SIM_OPTIONS, SimFailure } from "./replication-cluster.ts";
import { SimNode } from "./replication-node.ts";
import { Shard, type EffectSink } from "./replication-shard.ts";
import { appendFrame, diffState, outputFor, resultBody, snapshotFrame, submitBody, text } from "./replication-wire.ts";

const CHAOS_STEPS = 2500;
/** Reliable workers and no crashes must finish everything well within this. */
const DRAIN_STEPS_MAX = 3000;

/** Each seed must have exercised what the test claims: failovers, lost backups, restarts, retries, stale results. */
const COVERAGE_LEAST: Record<string, number> = {
  crashes: 1, backupKills: 1, restarts: 1, snapshots: 3, acked: 300, duplicates: 1, staleResults: 1, expiredLeases: 1,
};

const envSeed = process.env.SIM_SEED;
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : [1, 2, 3, 4, 5, 6, 7, 42, 1337, 0xbeef];

describe("replication simulation", () => {
  for (const seed of SEEDS) {
    test(`seed=${seed}: no acknowledged task lost or completed twice through crashes and failovers`, () => {
      const sim = new ReplicationSim(seed, 2 + (seed % 2));
      if (process.env.SIM_TRACE) sim.shard.trace = (line) => console.log(`seed=${seed} step=${sim.step} now=${sim.now} ${line}`);
      try {
        sim.run(CHAOS_STEPS, DRAIN_STEPS_MAX);
      } catch (err) {
        if (err instanceof SimFailure) throw err;
        throw new Error(`seed=${seed} step=${sim.step} now=${sim.now}: ${String(err)}`, { cause: err });
      }
      const c = sim.shard.primary!.scheduler.counters;
      const seen: Record<string, number> = {
        ...sim.stats, ...sim.shard.stats, duplicates: c.duplicates, staleResults: c.staleResults, expiredLeases: c.expiredLeases, epoch: sim.shard.highestEpoch,
      };
      console.log(`seed=${seed}`, JSON.stringify(seen));
      for (const [what, least] of Object.entries(COVERAGE_LEAST)) {
        sim.check((seen[what] ?? 0) >= least, () => `coverage: ${what} = ${seen[what]}, expected at least ${least}`);
      }
      expect(sim.stats.done).toBe(sim.clients.submissions.length);
    }, 30_000);
  }
});

const OPTIONS = { ...SIM_OPTIONS, leaseMs: 1_000, workerTimeoutMs: 3_000, defaultMaxAttempts: 3 };
const utf8 = new TextEncoder();

/** The bytes of one log entry (what EventLog.append writes after its length prefix). */
function entry(type: number, now: number, subject: number, body?: Uint8Array): Uint8Array {
  const log = new EventLog();
  return log.entry(log.append(type, now, subject, body)).slice();
}

function apply(s: Scheduler, bytes: Uint8Array): void {
  applyEntry(s, new Reader().reset(bytes));
}

let nextRequestId = 1;
function submit(now: number, key: string, fields: { priority?: number; maxAttempts?: number; notifyConn?: number; extras?: Partial<SubmitExtras> } = {}): Uint8Array {
  const extras = fields.extras === undefined ? undefined : {
    delayMs: 0, deadlineMs: 0, backoffType: BackoffType.NONE, backoffDelayMs: 0, backoffMaxDelayMs: 0, tags: [], dependsOn: [], ...fields.extras,
  };
  const body = submitBody({
    requestId: nextRequestId++, idempotencyKey: key, payload: utf8.encode(key), priority: fields.priority ?? 1,
    maxAttempts: fields.maxAttempts ?? 0, flags: fields.notifyConn === undefined ? 0 : SUBMIT_FLAG_NOTIFY, ...(extras === undefined ? {} : { extras }),
  });
  return entry(Ev.SUBMIT, now, fields.notifyConn ?? 0, body);
}

function result(now: number, workerId: number, taskId: number, attempt: number, ok: boolean, output: Uint8Array): Uint8Array {
  return entry(Ev.RESULT, now, workerId, resultBody(taskId, attempt, ok, output));
}

/** Effects as comparable plain data: order matters (assignments follow the ready queue). */
function effects(ready: Ready): unknown {
  return {
    assignments: [...ready.assignments].map(([w, tasks]) => [w, tasks.map((t) => [t.id, t.attempt])]),
    finished: ready.finished.map((t) => [t.id, t.state]),
    notices: ready.notices.map((n) => [n.task.id, n.watcher.conn, n.watcher.requestId]),
    aborts: ready.aborts,
    lostWorkers: ready.lostWorkers,
  };
}

/** Leases handed out by the last entries, as [workerId, taskId, attempt]. */
function leases(s: Scheduler): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (const [w, tasks] of s.takeReady().assignments) for (const t of tasks) out.push([w, t.id, t.attempt]);
  return out;
}

/** A REPL_SNAPSHOT frame parsed the way a backup does, from its own buffer. */
function roundTrip(s: Scheduler, index: number): Scheduler {
  const frame = snapshotFrame(1, index, s.exportState());
  let restored: Scheduler | undefined;
  forEachMessage(frame.subarray(FRAME_HEADER_BYTES), new Reader(), (kind, r) => {
    expect(kind).toBe(Kind.REPL_SNAPSHOT);
    const snap = decodeSnapshot(r);
    expect(snap.index).toBe(index);
    restored = Scheduler.fromState(OPTIONS, snap.state);
  });
  return restored!;
}

describe("snapshot round trip", () => {
  test("a restored scheduler replays the same entries exactly like the original: ready order, leases, retention", () => {
    const original = new Scheduler(OPTIONS);
    const run = (bytes: Uint8Array) => apply(original, bytes);
    // Workers, one with a tag; tasks of every kind: queued, leased with watchers, completed, failed, delayed, waiting.
    run(entry(Ev.WORKER_JOINED, 0, 1, encodeWorkerJoined(2, [])));
    run(entry(Ev.WORKER_JOINED, 0, 2, encodeWorkerJoined(1, ["gpu"])));
    run(entry(Ev.WORKER_JOINED, 0, 3, encodeWorkerJoined(2, [])));
    for (let i = 0; i < 6; i++) run(submit(10 + i, `a${i}`, { priority: i % 3, notifyConn: 7, maxAttempts: i === 1 ? 1 : 0 }));
    run(submit(20, "gpu0", { notifyConn: 8, extras: { tags: ["gpu"] } }));
    run(entry(Ev.DISPATCH, 30, 0));
    const first = leases(original);
    expect(first.length).toBe(5);
    const [done0, failing] = [first.find(([, id]) => original.task(id)!.idempotencyKey === "a0")!, first.find(([, id]) => original.task(id)!.idempotencyKey === "a1")!];
    run(result(40, done0[0], done0[1], done0[2], true, outputFor(utf8.encode("a0"))));
    run(result(41, failing[0], failing[1], failing[2], false, utf8.encode("E_SIM: no")));
    const parent = original.task(first.find(([, id]) => original.task(id)!.state === "leased")![1])!;
    for (let i = 0; i < 5; i++) run(submit(50 + i, `b${i}`, { priority: (i * 7) % 4, notifyConn: 9 }));
    run(submit(60, "later", { extras: { delayMs: 5_000 } }));
    run(submit(61, "child", { notifyConn: 7, extras: { dependsOn: [parent.id] } }));
    run(entry(Ev.HEARTBEAT, 70, 1, encodeRunning([])));
    run(entry(Ev.TICK, 80, 0));
    original.takeReady();
    expect({
      queued: original.queuedCount > 0, leased: original.leasedTotal > 0, retained: original.retainedCount, dlq: original.dlqCount,
      delayed: original.delayedTotal, waiting: original.waitingTotal, watched: original.exportState().tasks.some((t) => t.state === "leased" && t.watchers.length > 0),
    }).toEqual({ queued: true, leased: true, retained: 1, dlq: 1, delayed: 1, waiting: 1, watched: true });

    const restored = roundTrip(original, 42);
    expect(diffState(original.exportState(), restored.exportState())).toBeUndefined();

    // The same further entries on both: after each, the same effects and the same state.
    const both = (bytes: Uint8Array) => {
      apply(original, bytes);
      apply(restored, bytes);
      const [a, b] = [original.takeReady(), restored.takeReady()];
      expect(effects(b)).toEqual(effects(a));
      expect(diffState(original.exportState(), restored.exportState())).toBeUndefined();
      return a;
    };
    const running = () => original.exportState().tasks.filter((t) => t.state === "leased");
    both(submit(100, "c0", { priority: 0, notifyConn: 7 }));
    both(submit(101, "a2", { notifyConn: 11 })); // a duplicate: watched from another connection
    for (const t of running().slice(0, 2)) both(result(110, t.workerId, t.id, t.attempt, true, outputFor(t.payload)));
    expect(both(entry(Ev.DISPATCH, 120, 0)).assignments.size).toBeGreaterThan(0);
    const named = running().find((t) => t.workerId === 1);
    both(entry(Ev.HEARTBEAT, 500, 1, encodeRunning(named === undefined ? [] : [named.id])));
    for (const w of [2, 3]) both(entry(Ev.HEARTBEAT, 1_100, w, encodeRunning([])));
    both(entry(Ev.TICK, 1_200, 0)); // every lease but the one worker 1 named expired; retried
    both(entry(Ev.WORKER_LEFT, 1_300, 3, new Uint8Array(0)));
    both(entry(Ev.DISPATCH, 1_310, 0));
    both(entry(Ev.PROMOTE, 1_400, 2));
    both(entry(Ev.TICK, 6_000, 0)); // the delayed task is due; silent workers are lost
    both(entry(Ev.WORKER_JOINED, 6_001, 4, encodeWorkerJoined(3, ["gpu"])));
    // Run everything to the end (the child after its parent): the two stay identical throughout.
    for (let round = 0; round < 20 && running().length + original.queuedCount > 0; round++) {
      both(entry(Ev.DISPATCH, 6_100 + round * 10, 0));
      for (const t of running()) both(result(6_105 + round * 10, t.workerId, t.id, t.attempt, true, outputFor(t.payload)));
    }
    expect(original.queuedCount + original.leasedTotal + original.delayedTotal + original.waitingTotal).toBe(0);
  });
});

describe("bugs found by the replication simulation", () => {
  test("snapshot payloads survive the frames after it on the same connection", () => {
    // A primary with tasks whose payloads and outputs a backup must keep.
    const primary = new Scheduler(OPTIONS);
    const log = new EventLog();
    const record = (type: number, now: number, subject: number, body?: Uint8Array) => apply(primary, log.entry(log.append(type, now, subject, body)).slice());
    record(Ev.WORKER_JOINED, 0, 1, encodeWorkerJoined(4, []));
    for (let i = 0; i < 8; i++) record(Ev.SUBMIT, 1, 0, submitBody({ requestId: i, idempotencyKey: `k${i}`, payload: utf8.encode(`payload-${i}`) }));
    record(Ev.DISPATCH, 2, 0);
    for (const [w, id, attempt] of leases(primary).slice(0, 2)) record(Ev.RESULT, 3, w, resultBody(id, attempt, true, outputFor(primary.task(id)!.payload)));
    log.take();
    const snapshot = snapshotFrame(1, log.lastIndex, primary.exportState());
    // The next batch: a submission with a payload bigger than the first tasks' offsets in the snapshot.
    record(Ev.SUBMIT, 4, 0, submitBody({ requestId: 99, idempotencyKey: "big", payload: new Uint8Array(4096).fill(0x78) }));
    const batch = log.take();
    const append = appendFrame(1, batch.firstIndex, batch.count, batch.bytes);

    // The backup's connection: one FrameDecoder and Reader; TCP splits both frames.
    const decoder = new FrameDecoder(1 << 30);
    const reader = new Reader();
    let backup: Scheduler | undefined;
    const onMessage = (kind: number, r: Reader) => {
      if (kind === Kind.REPL_SNAPSHOT) backup = Scheduler.fromState(OPTIONS, decodeSnapshot(r).state); // as coordinator.fromPrimary does
      else readAppend(r).forEachEntry((e) => apply(backup!, e));
    };
    for (const frame of [snapshot, append]) {
      const cut = frame.length >> 1;
      for (const chunk of [frame.slice(0, cut), frame.slice(cut)]) decoder.push(chunk, (body) => forEachMessage(body, reader, onMessage));
    }
    // Today decodeSnapshot leaves bin values as views into the decoder's buffer, which the next frame overwrote.
    for (const t of primary.exportState().tasks) {
      expect({ id: t.id, payload: text(backup!.task(t.id)!.payload), output: text(backup!.task(t.id)!.output) })
        .toEqual({ id: t.id, payload: text(t.payload), output: text(t.output) });
    }
  });

  test("a backup counts as in sync only once it holds every committed entry", () => {
    const replicas = new ReplicaSet(500, new Logger("sim", "error", () => {}));
    const conn = (id: number) => ({
      id, state: { nodeId: `b${id}` }, writer: new FrameWriter(64), writable: () => true, queueFlush() {}, fail() {}, close() {},
    }) as unknown as Connection;
    // A backup in sync, then lost: after backupTimeoutMs the primary goes on alone (the documented risk).
    const first = conn(1);
    replicas.add(first, 0, 0);
    replicas.ack(first, 10, 10);
    expect(replicas.commit(10, 10)).toBe(10);
    replicas.remove(first, 20, "killed");
    expect(replicas.commit(30, 600)).toBe(30);
    // The backup restarts: a snapshot at 30, then the log from 31 while it catches up.
    const again = conn(2);
    replicas.add(again, 30, 610);
    const committed = replicas.commit(40, 620);
    replicas.ack(again, 30, 630);
    expect(replicas.inSyncCount).toBe(1);
    // It is reported in sync, so a crash of the primary now must lose nothing acknowledged:
    // every committed entry must be on it. Today entries 31..40, committed alone while it
    // caught up, are not, and it would promote without them.
    expect({ committed: Math.max(committed, replicas.committedIndex), inSyncBackupHas: 30 }).toEqual({ committed: 30, inSyncBackupHas: 30 });
  });

  test("a result for a task lost in a failover does not complete the task that reuses its id", () => {
    // Primary and backup agree on a worker with one slot.
    const primary = new Scheduler(OPTIONS);
    const backup = new Scheduler(OPTIONS);
    const replicated = (bytes: Uint8Array) => {
      apply(primary, bytes);
      apply(backup, bytes);
    };
    replicated(entry(Ev.WORKER_JOINED, 0, 7, encodeWorkerJoined(1, [])));
    // The primary takes a submission and leases it; coordinator.pump sends the ASSIGN at
    // once, before the entries are replicated. Then the primary crashes: both entries are lost.
    apply(primary, submit(10, "a"));
    apply(primary, entry(Ev.DISPATCH, 10, 0));
    const [[workerId, lostId, lostAttempt]] = leases(primary) as [[number, number, number]];
    expect(workerId).toBe(7); // the worker now runs task "a" as (lostId, attempt 1)
    // The backup promotes; another client's submission is leased to the same worker. A new
    // primary starts its ids past a gap, so it cannot reuse the id the lost tail handed out.
    apply(backup, entry(Ev.PROMOTE, 500, 2));
    apply(backup, submit(510, "b"));
    apply(backup, entry(Ev.DISPATCH, 510, 0));
    const [[, newId]] = leases(backup) as [[number, number, number]];
    expect(newId).not.toBe(lostId);
    // The worker finishes the lost task "a" and sends its result to the new primary: it is stale.
    const staleBefore = backup.counters.staleResults;
    apply(backup, result(520, 7, lostId, lostAttempt, true, outputFor(utf8.encode("a"))));
    expect(backup.counters.staleResults).toBe(staleBefore + 1);
    expect(backup.task(newId)!.state).toBe("leased");
  });
});

describe("an idle-but-queued shard", () => {
  // Leases and liveness far longer than the run: nothing may expire, so a quiet shard has nothing to log.
  const QUIET_OPTIONS = { ...SIM_OPTIONS, leaseMs: 600_000, workerTimeoutMs: 600_000, defaultTimeoutMs: 600_000 };
  const QUIET_TIMING = {
    replicationDelayMsMax: 10, ackDelayMsMax: 5, backupTimeoutMs: 500, deadBackupNoticedMsMax: 100, failoverMsMin: 200, failoverMsMax: 400, resyncMsMax: 20,
  };
  const QUEUED = 1_000;
  /** Bounds on the run: the backup is in sync well within SYNC_STEPS_MAX; the quiet window is QUIET_STEPS. */
  const SYNC_STEPS_MAX = 200;
  const QUIET_STEPS = 400;
  const STEP_MS = 5;
  const TICK_MS = 50;

  test("with its one worker slot busy and 1,000 tasks queued, neither replica logs an entry however often acks pump the primary; the next entry keeps the backup", () => {
    const fail = (message: string): never => {
      throw new Error(message);
    };
    const assigned: number[] = [];
    const sink: EffectSink = { assigned: (_w, task) => void assigned.push(task.id), finished() {}, workerLost() {}, released() {}, promoted() {} };
    const [primary, backup] = [new SimNode("n0", QUIET_OPTIONS), new SimNode("n1", QUIET_OPTIONS)];
    const shard = new Shard([primary, backup], new Prng(15), QUIET_TIMING, sink, fail);
    let lastTickAt = -Infinity;
    const step = () => {
      shard.now += STEP_MS;
      shard.network();
      if (shard.now - lastTickAt >= TICK_MS) {
        shard.tick();
        lastTickAt = shard.now;
      }
      shard.pump();
    };
    shard.promote(primary);
    shard.input(Ev.WORKER_JOINED, 7, encodeWorkerJoined(1, []));
    for (let i = 0; i < QUEUED + 1; i++) {
      shard.submit(0, i, submitBody({ requestId: i, idempotencyKey: `q${i}`, payload: utf8.encode(`q${i}`) }));
      shard.pump();
    }
    for (let n = 0; n < SYNC_STEPS_MAX && !(shard.inSyncCount() === 1 && backup.appliedIndex === primary.log!.lastIndex); n++) step();
    expect({ inSync: shard.inSyncCount(), backupIndex: backup.appliedIndex, leased: assigned.length, queued: primary.scheduler.queuedCount })
      .toEqual({ inSync: 1, backupIndex: primary.log!.lastIndex, leased: 1, queued: QUEUED });

    const before = { primary: primary.log!.lastIndex, backup: backup.appliedIndex, pumps: shard.stats.pumps };
    for (let n = 0; n < QUIET_STEPS; n++) step();
    // Every step pumped (a tick's and an ack's pumps too): each of those used to log a DISPATCH that
    // changed nothing, which the backup acknowledged, which pumped again.
    expect(shard.stats.pumps - before.pumps).toBeGreaterThanOrEqual(QUIET_STEPS);
    expect({ primary: primary.log!.lastIndex, backup: backup.appliedIndex }).toEqual({ primary: before.primary, backup: before.backup });

    // The quiet outlasted backupTimeoutMs: the next entry must not find the backup "silent" and drop it.
    const quiet = { snapshots: shard.stats.snapshots, dropped: shard.stats.backupsDropped };
    shard.submit(0, QUEUED + 1, submitBody({ requestId: QUEUED + 1, idempotencyKey: "after", payload: utf8.encode("after") }));
    const index = primary.log!.lastIndex;
    for (let n = 0; n < SYNC_STEPS_MAX && shard.committed < index; n++) step();
    expect({ committed: shard.committed >= index, snapshots: shard.stats.snapshots, dropped: shard.stats.backupsDropped })
      .toEqual({ committed: true, snapshots: quiet.snapshots, dropped: quiet.dropped });
  });
});
