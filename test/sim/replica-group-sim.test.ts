// An etcd-led replica group (docs/replication.md) simulated from one seed: a
// simulated etcd and network around nodes that run the real decideReplicaRole,
// InSyncReplicas, LeaderLease and ClockOffsetFilter (replica-group-cluster.ts).
// Checkers run after every step; a failure prints its seed:
//   REPLICA_SEED=N bun test test/sim/replica-group-sim    (REPLICA_TRACE=1: every event; REPLICA_STEPS=S: chaos steps)
// More seeds: REPLICA_FIRST_SEED=201 REPLICA_SEEDS=1000 bun test test/sim/replica-group-sim -t "replica group:"
// An open src bug is stepped around (replica-group-known-bugs.ts) and checked to
// be still found with its workaround off (REPRODUCTIONS); a fixed one keeps its
// seed as a regression run (REGRESSIONS).

import { describe, expect, test } from "bun:test";
import { SimFailure } from "./replica-group-checks.ts";
import { ReplicaGroupSim } from "./replica-group-cluster.ts";
import { KNOWN_BUGS } from "./replica-group-known-bugs.ts";
import type { Stats } from "./replica-group-node.ts";

const FIRST_SEED = Number(process.env.REPLICA_FIRST_SEED ?? 1);
const SEEDS_COUNT = Number(process.env.REPLICA_SEEDS ?? 200);
const CHAOS_STEPS = Number(process.env.REPLICA_STEPS ?? 2_500);
/** Time for the group to lead again and acknowledge what clients wait for, once faults stop. */
const DRAIN_STEPS_MAX = 2_000;

/** Summed over 200 seeds (scaled for other counts): each claim the test makes must have been exercised. */
const COVERAGE_LEAST: Partial<Stats> = {
  failovers: 100, isrShrinks: 200, isrExpansions: 200, fences: 100, pausesOverTtl: 100, staleRestartWaits: 50, partitions: 500,
  crashes: 100, hiccups: 50, snapshots: 500, acks: 50_000,
  // The paths of the five fixes (see REGRESSIONS).
  joinsDuringTxn: 100, unheardCampaignWins: 10, isrWritesUnanswered: 100, halfJoinsRevoked: 40, delayedClockSamplesOutvoted: 1_000,
};

const envSeed = process.env.REPLICA_SEED;
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : Array.from({ length: SEEDS_COUNT }, (_, i) => FIRST_SEED + i);

test(`replica group: ${SEEDS.length} seeds x ${CHAOS_STEPS} steps, nothing acknowledged is lost and one node acts at a time`, () => {
  const total: Record<string, number> = {};
  for (const seed of SEEDS) {
    const sim = new ReplicaGroupSim(seed);
    sim.world.traceAll = process.env.REPLICA_TRACE !== undefined;
    sim.run(CHAOS_STEPS, DRAIN_STEPS_MAX);
    for (const [k, v] of Object.entries(sim.stats)) total[k] = (total[k] ?? 0) + v;
  }
  console.log(`replica group coverage over ${SEEDS.length} seeds x ${CHAOS_STEPS} steps:`, JSON.stringify(total));
  if (envSeed !== undefined || CHAOS_STEPS < 2_500) return;
  const short = Object.entries(COVERAGE_LEAST)
    .map(([what, least]) => [what, Math.ceil((least * SEEDS.length) / 200)] as const)
    .filter(([what, least]) => (total[what] ?? 0) < least);
  expect(short.map(([what, least]) => `${what} = ${total[what] ?? 0}, expected at least ${least}`)).toEqual([]);
}, 300_000);

/**
 * The five src bugs this simulation found, fixed in src (etcd-control.ts,
 * isr-replica-set.ts, replica-role.ts, clock-offset.ts): each one's smallest
 * failing run, which must now pass and must take the fix's path (`took`, a
 * count in Stats) so that the seed still reaches the situation the bug was in.
 */
const REGRESSIONS: Array<{ bug: string; seed: number; steps: number; took: keyof Stats; was: string }> = [
  {
    bug: "a session lost while a txn was in flight was never rebuilt", seed: 45, steps: 100, took: "joinsDuringTxn",
    was: "the sole ISR member n0 fences cut off from etcd; its join times out, and the retry found `busy` (the removal of its own stale leader key) and was dropped: no leader, ever",
  },
  {
    bug: "a campaign won whose answer was lost left the shard without a primary", seed: 96, steps: 200, took: "unheardCampaignWins",
    was: "n0 wins epoch 7 during an etcd hiccup and hears 'timed out'; decideReplicaRole said 'stay' on its own key and lease, so nobody ever led",
  },
  {
    bug: "an ISR change whose answer was lost was taken as refused", seed: 11, steps: 200, took: "isrWritesUnanswered",
    was: "n1 adds n2.2 during a hiccup, etcd applies it, the answer times out; n1 commits 19..21 without n2 while etcd names it (checker 3)",
  },
  {
    bug: "a join that failed half-way kept its lease to campaign on", seed: 87, steps: 500, took: "halfJoinsRevoked",
    was: "n0's put of its member key times out after its grant; it wins epoch 13 on that lease, the retry swaps the lease, the leader key expires and n0 still acts (checker 2)",
  },
  {
    bug: "a pause made a backup take old APPENDs' age for clock skew", seed: 372, steps: 2_500, took: "delayedClockSamplesOutvoted",
    was: "n1, the only replica left with the ISR's log, reads a backlog after a 1.9 s pause, measures 1063 ms and never leads",
  },
];

describe("regressions: the seeds of the five fixed src bugs pass, through the fix", () => {
  for (const r of REGRESSIONS) {
    test(`${r.bug}: seed=${r.seed}, ${r.steps} steps`, () => {
      const sim = new ReplicaGroupSim(r.seed);
      sim.run(r.steps, DRAIN_STEPS_MAX);
      expect(sim.stats[r.took]).toBeGreaterThan(0);
    });
  }
});

/** Each open bug: the smallest run found that fails without its workaround, and what it reports. */
const REPRODUCTIONS: Array<{ bug: keyof typeof KNOWN_BUGS; seed: number; steps: number; says: string }> = [
  { bug: "settleIsrOnlyWhenAnswered", seed: 533, steps: 1_000, says: "step=966 t=12111: checker 3: etcd's ISR (n2.5,n0.6,n1.2, revision 28) names n1.2" },
];

describe("known bugs: each is still found with its workaround off (once src is fixed, remove it from replica-group-known-bugs.ts)", () => {
  for (const r of REPRODUCTIONS) {
    test(`${r.bug}: seed=${r.seed}, ${r.steps} steps`, () => {
      const was = KNOWN_BUGS[r.bug];
      KNOWN_BUGS[r.bug] = false;
      let failure: unknown;
      try {
        new ReplicaGroupSim(r.seed).run(r.steps, DRAIN_STEPS_MAX);
      } catch (err) {
        failure = err;
      } finally {
        KNOWN_BUGS[r.bug] = was;
      }
      expect(failure).toBeInstanceOf(SimFailure);
      expect((failure as Error).message).toContain(r.says);
      // With the workaround, the same run passes.
      new ReplicaGroupSim(r.seed).run(r.steps, DRAIN_STEPS_MAX);
    });
  }
});
