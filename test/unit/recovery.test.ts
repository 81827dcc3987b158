// Start-up with --data-dir (src/coordinator/recovery.ts): a snapshot on disk
// that breaks an invariant of the scheduler stops start-up with an error naming
// the data directory and the invariant; it is never loaded and served from.

import { describe, expect, test } from "bun:test";
import { replayRecovered } from "../../src/coordinator/recovery.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { leaseNow, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

function stateWithALease() {
  const s = new Scheduler(TEST_OPTIONS);
  s.workerJoined(1, 1, [], 0);
  const leased = submitOk(s, 0);
  leaseNow(s, 0, 1);
  submitOk(s, 0);
  return { state: structuredClone(s.exportState()), leased };
}

const FILES = { snapshotFile: "/data/0/snapshot.bin", logFile: "/data/0/wal.log" };

describe("replayRecovered", () => {
  test("a consistent snapshot is loaded", () => {
    const { state } = stateWithALease();
    const s = replayRecovered(TEST_OPTIONS, { epoch: 1, index: 5, state, batches: [] }, new Scheduler(TEST_OPTIONS), FILES);
    expect(s.exportState()).toEqual(state);
  });

  test("a snapshot holding a task both queued and leased stops start-up, naming the file and the invariant", () => {
    const { state, leased } = stateWithALease();
    state.ready.push(leased);
    expect(() => replayRecovered(TEST_OPTIONS, { epoch: 1, index: 5, state, batches: [] }, new Scheduler(TEST_OPTIONS), FILES)).toThrow(
      /^\/data\/0\/snapshot\.bin at byte offset 0: its checksummed state cannot be restored \(snapshot refused, not loaded: invariant broken: a worker's lease is a task leased to it .*\)/,
    );
  });
});
