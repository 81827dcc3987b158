// The client's synthetic workloads: what task i of a run is. Deterministic
// from a seed, so two runs submit the same work.

import { encode } from "@msgpack/msgpack";
import { Prng } from "../core/prng.ts";

export const WORKLOADS = ["noop", "sleep", "cpu", "mixed", "wordcount"] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface TaskSpec {
  type: string;
  payload: Uint8Array;
}

/**
 * mixed, as in the seed: 70% short, 20% medium, 10% long. Short and medium are
 * CPU-bound (busy loops), long ones wait like I/O, so a run shows both effects.
 */
export const MIXED_MIX = [
  { share: 0.7, type: "cpu", ms: 0.05 },
  { share: 0.2, type: "cpu", ms: 1 },
  { share: 0.1, type: "sleep", ms: 10 },
] as const;

const EMPTY = new Uint8Array(0);
/** Shared: the load loops ask for one spec per task, and a noop needs no new object each time. */
const NOOP_SPEC: TaskSpec = { type: "noop", payload: EMPTY };

export interface WorkloadOptions {
  name: WorkloadName;
  /** sleep / cpu duration. */
  durationMs: number;
  seed: number;
  /** wordcount: words per task. */
  chunkWords: number;
}

export interface Workload {
  task(i: number): TaskSpec;
  /** wordcount: the true number of words in the corpus of `tasks` chunks. */
  expectedWords?: number;
}

export function makeWorkload(options: WorkloadOptions, tasks: number): Workload {
  switch (options.name) {
    case "noop":
      return { task: () => NOOP_SPEC };
    case "sleep":
    case "cpu": {
      const spec = { type: options.name, payload: encode({ ms: options.durationMs }) };
      return { task: () => spec };
    }
    case "mixed": {
      const prng = new Prng(options.seed);
      const kinds = MIXED_MIX.map((m) => ({ share: m.share, spec: { type: m.type, payload: encode({ ms: m.ms }) } }));
      return {
        task: () => {
          let x = prng.next();
          for (const k of kinds) {
            if (x < k.share) return k.spec;
            x -= k.share;
          }
          return kinds[0]!.spec;
        },
      };
    }
    case "wordcount":
      return wordCountWorkload(options, tasks);
  }
}

const VOCABULARY = [
  "the", "scheduler", "leases", "tasks", "to", "workers", "and", "a", "backup", "takes", "over",
  "when", "primary", "dies", "shard", "router", "épée", "naïve", "zürich", "don't", "x86", "2026",
  "queue", "latency", "throughput", "replica", "epoch", "lease", "heartbeat", "retry",
];
const SEPARATORS = [" ", " ", " ", "  ", ", ", ". ", "\n", " - ", "; ", "\t"];

/**
 * A corpus of `tasks` chunks of `chunkWords` words, generated from the seed.
 * The word count is known by construction, so the distributed count is checked
 * against the truth, not against the same counting code.
 */
function wordCountWorkload(options: WorkloadOptions, tasks: number): Workload {
  const utf8 = new TextEncoder();
  const chunkFor = (i: number): Uint8Array => {
    const prng = new Prng((options.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    let text = "";
    for (let w = 0; w < options.chunkWords; w++) {
      text += VOCABULARY[prng.int(VOCABULARY.length)]!;
      text += w === options.chunkWords - 1 ? "\n" : SEPARATORS[prng.int(SEPARATORS.length)]!;
    }
    return utf8.encode(text);
  };
  return { task: (i) => ({ type: "wordcount", payload: chunkFor(i) }), expectedWords: tasks * options.chunkWords };
}
