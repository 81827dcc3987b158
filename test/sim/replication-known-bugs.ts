// The src bugs the replication simulation found, and how it steps around each
// until src is fixed, so that everything else can still be checked.

/**
 * Bugs in src the simulation found, each with a failing scenario in
 * replication-sim.test.ts. Until src is fixed, these switches let the
 * rest of the run be checked; set one the other way (a debug script may) to
 * watch the simulation find its bug again. Remove each once src is fixed.
 */
export const KNOWN_BUGS = {
  /**
   * "snapshot payloads survive the frames after it on the same connection":
   * decodeSnapshot keeps msgpack bin values (payloads, outputs) as views into
   * the frame, and the connection's FrameDecoder reuses that memory for the
   * next frames. True: hand decodeSnapshot a private copy of the frame.
   * (False: nearly every seed fails within a few hundred steps; SIM_SEED=1 at
   * step 47, "backup n1 differs from primary n0 at index 80 ... payload".)
   */
  copySnapshotFrame: false,
  /**
   * "a backup counts as in sync only once it holds every committed entry":
   * replica-set.ts goes on alone while a restarted backup catches up, then
   * counts it in sync once it acks its snapshot index, below entries already
   * committed alone; a primary crash then loses acknowledged entries although
   * a backup was in sync. False: model the fix instead (a backup catching up
   * holds commits, bounded by backupTimeoutMs). (True: about 1 seed in 40
   * fails; SIM_SEED=26 at step 400, "key c1-k100 was acknowledged as task
   * ..., now as task ...": n1 committed 790..796 alone while n0 caught up from
   * its snapshot at 787, counted n0 in sync at 789, crashed; n0 promoted at 794.)
   */
  aloneWhileBackupSyncs: false,
  /**
   * "a result for a task lost in a failover does not complete the task that
   * reuses its id": the ids and attempt numbers a crashed primary handed out in
   * its lost tail are handed out again, and a worker still running the lost
   * task completes the new one with its result. True: count it
   * (stats.taskIdReuse) and check the rest. (False: about 1 seed in 10
   * fails; SIM_SEED=33 at step 616, "task ... (key c0-k157) completed ... with
   * output "done:c2-k152"".)
   */
  tolerateTaskIdReuse: false,
};
