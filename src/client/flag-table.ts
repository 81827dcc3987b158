// The client's flags: one row per flag (see FlagSpec in src/cli/flags.ts).
// A table of data only, so every binary can know every binary's flag names.

import type { FlagSpec } from "../cli/flags.ts";
import { CLIENT_SECURITY_FLAGS } from "../net/net-flags.ts";
import { WORKLOADS } from "./workloads.ts";

export const CLIENT_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", perBinary: true, type: "int", default: 6000, min: 1, max: 65535, help: "port of the router (or a coordinator) on --host" },
  { name: "host", short: "H", perBinary: true, type: "string", default: "127.0.0.1", help: "host to connect to" },
  { name: "servers", short: "s", perBinary: true, type: "string", default: "", help: "comma-separated host:port list; connections spread over it and fail over along it" },
  { name: "concurrency", short: "c", type: "int", default: 64, min: 1, max: 100000, help: "tasks in flight (closed loop: each finishes before the next starts)" },
  { name: "tasks", short: "n", type: "int", default: 10000, min: 1, help: "tasks to run" },
  { name: "type", short: "t", type: "string", default: "noop", choices: WORKLOADS, help: "workload" },
  { name: "duration-ms", type: "number", default: 1, min: 0, max: 60000, help: "sleep/cpu task length" },
  { name: "chunk-words", type: "int", default: 200, min: 1, max: 1000000, help: "wordcount: words per task" },
  { name: "connections", type: "int", default: 1, min: 1, max: 1024, help: "TCP connections the load is spread over" },
  { name: "seed", type: "int", default: 42, help: "seed of the workload generator" },
  { name: "submit-attempts", type: "int", default: 20, min: 1, max: 65535, help: "tries per task at the client (queue full, connection lost) before it counts as failed; at most 65535 (counted in 16 bits)" },
  { name: "deadline-s", type: "number", default: 600, min: 1, help: "hard bound on the whole run; unfinished tasks count as failed" },
  { name: "idempotency", type: "bool", default: true, help: "give each task an idempotency key so retries never duplicate it" },
  ...CLIENT_SECURITY_FLAGS,
  { name: "json", type: "bool", default: false, help: "print one JSON object instead of the table" },
  { name: "batch", type: "int", default: 1, min: 1, max: 10000, help: "tasks per SUBMIT_BATCH message, each acknowledged once all its tasks are (closed loop: a batch is sent once that many have ended; open loop: due tasks go in batches of up to this; 1: a SUBMIT each)" },
  { name: "submit-only", type: "bool", default: false, help: "a task counts as done when its submission is acknowledged, not when it has run: measures ingest, no worker needed" },
  { name: "rate", type: "number", default: 0, min: 0, max: 10000000, help: "open loop: offer this many tasks per second on a fixed schedule, latency counted from each task's intended send time (0: closed loop)" },
  { name: "duration-s", type: "number", default: 10, min: 0.001, max: 86400, help: "open loop: how long the schedule runs; tasks = rate x duration, at most -n when -n is given" },
  { name: "warmup-s", type: "number", default: 0, min: 0, max: 3600, help: "open loop: first run the same schedule this long, unmeasured, so this client's own JIT warm-up stays out of the latencies" },
  { name: "max-in-flight", type: "int", default: 50000, min: 1, help: "open loop: tasks in flight at most; past it sending waits, and the lag counts as latency" },
];

/** Flags only the commands use. */
export const COMMAND_FLAGS: readonly FlagSpec[] = [
  { name: "payload", type: "string", default: "", help: "submit: the payload as JSON (sent as msgpack), or @file for raw bytes" },
  { name: "priority", type: "int", default: 100, min: 0, max: 255, help: "submit: 0 is the highest" },
  { name: "max-attempts", type: "int", default: 0, min: 0, max: 65535, help: "submit: attempts before the dead-letter queue (0: the coordinator's default)" },
  { name: "timeout-ms", type: "int", default: 0, min: 0, help: "submit: per-attempt timeout (0: the coordinator's default)" },
  { name: "delay-ms", type: "int", default: 0, min: 0, help: "submit: run no sooner than this long from now" },
  { name: "deadline-ms", type: "int", default: 0, min: 0, help: "submit: fail with E_DEADLINE unless started within this long" },
  { name: "backoff", type: "string", default: "", help: "submit: retry delays, exponential:DELAY_MS[:MAX_MS] or fixed:DELAY_MS" },
  { name: "task-tags", type: "string", default: "", help: "submit: comma-separated tags a worker needs to run the task" },
  { name: "depends-on", type: "string", default: "", help: "submit: comma-separated task ids that must complete first" },
  { name: "key", type: "string", default: "", help: "submit: idempotency key (a resubmission returns the same task)" },
  { name: "wait", type: "bool", default: false, help: "submit, workflow: wait until the task(s) end and print the outcome" },
  { name: "offset", type: "int", default: 0, min: 0, help: "dlq list: skip this many" },
  { name: "limit", type: "int", default: 100, min: 1, max: 1000, help: "dlq list: at most this many" },
];
