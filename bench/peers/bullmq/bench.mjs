// BullMQ + Redis running the workloads of our client, measured the same way,
// for scripts/bench-compare.sh (issue 10). Starts its own redis-server (free
// loopback port, no persistence) and BullMQ worker process(es), runs one
// workload --runs times, prints one JSON line per run in our client's --json
// shape (plus "system"), and stops everything it started.
//
//   node bench.mjs --workload throughput --jobs 100000          # no-op jobs added in bulk, time to the last completion
//   node bench.mjs --workload open --rate 2000 --duration-s 3   # open loop: latency from each job's intended send time
//   node bench.mjs --workload closed --clients 64 --jobs 20000  # 64 loops: add a job, wait for it, repeat
//   node bench.mjs --workload ingest --jobs 500000 --bulk 1000  # addBulk only, no worker: jobs acknowledged per second
//
// Completions are seen the way a BullMQ producer sees them: QueueEvents
// ("completed" events read from the queue's Redis stream).

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Queue, QueueEvents } from "bullmq";
import { startRedis } from "./redis.mjs";
import { positiveOption, sleep, startWorkerProcess, summarize } from "../shared/peer-support.mjs";
import { OpenLoopLatencies, planOpenLoop, sendOnSchedule } from "../shared/schedule.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
/** Jobs run (closed loop, 8 at a time) before each measured run: proves QueueEvents is reading. */
const CHECK_JOBS = 200;
/** Bound on one check round. */
const CHECK_MS = 3_000;
/** Clients of the warm-up run before the first measured run (--warmup-jobs jobs in all). */
const WARMUP_CLIENTS = 64;
/** The events stream's approximate cap. BullMQ's default is 10,000: a burst of 100,000 jobs (4+ events each) would trim events before QueueEvents reads them. */
const EVENTS_MAX_LEN = 1_000_000;
/** How often the throughput run asks Redis how many jobs have completed. */
const POLL_MS = 5;
/** How long a worker process may take to say "ready". */
const WORKER_START_MS = 15_000;

const { values: o } = parseArgs({
  options: {
    workload: { type: "string", default: "throughput" },
    runs: { type: "string", default: "1" },
    jobs: { type: "string", default: "100000" },
    bulk: { type: "string", default: "1000" },
    "in-flight-bulks": { type: "string", default: "4" },
    rate: { type: "string", default: "2000" },
    "duration-s": { type: "string", default: "3" },
    clients: { type: "string", default: "64" },
    concurrency: { type: "string", default: "256" },
    workers: { type: "string", default: "1" },
    "warmup-jobs": { type: "string", default: "10000" },
    "deadline-s": { type: "string", default: "120" },
    help: { type: "boolean", short: "h" },
  },
});
if (o.help) {
  process.stdout.write(`Usage: node bench.mjs --workload throughput|open|closed [options]

  throughput  --jobs no-op jobs added in addBulk batches of --bulk; throughput to the last completion
  open        --rate jobs/s on a fixed schedule for --duration-s; latency from each job's intended send time
  closed      --clients loops, each adding a job and waiting for its completion; --jobs in all
  ingest      --jobs no-op jobs added with addBulk (batches of --bulk, --in-flight-bulks at once), no worker: added jobs/s

Options: --runs N (1), --jobs N (100000), --bulk N (1000), --rate N (2000), --duration-s S (3), --clients N (64),
  --concurrency N per worker process (256), --workers N processes (1), --deadline-s S per run (120),
  --warmup-jobs N run through the queue before the first measured run (10000; 0: none)
Prints one JSON line per run (our client's --json shape plus "system"); progress on stderr.
`);
  process.exit(0);
}
if (!["throughput", "open", "closed", "ingest"].includes(o.workload)) throw new Error(`--workload must be throughput, open, closed or ingest, got ${o.workload}`);
const num = (name) => positiveOption(o, name);

/** Matches QueueEvents' completions to added jobs, whichever arrives first (a job can finish before add() returns). */
class Completions {
  constructor(events) {
    this.events = events;
    this.waiting = new Map();
    this.early = new Map();
    this.onCompleted = ({ jobId }) => this.settle(jobId, true);
    this.onFailed = ({ jobId }) => this.settle(jobId, false);
    events.on("completed", this.onCompleted);
    events.on("failed", this.onFailed);
  }

  settle(jobId, ok) {
    const at = performance.now();
    const done = this.waiting.get(jobId);
    if (done === undefined) return void this.early.set(jobId, { at, ok });
    this.waiting.delete(jobId);
    done(at, ok);
  }

  /** Calls done(performance.now() at completion, ok) once the job ends. */
  expect(jobId, done) {
    const early = this.early.get(jobId);
    if (early === undefined) return void this.waiting.set(jobId, done);
    this.early.delete(jobId);
    done(early.at, early.ok);
  }

  wait(jobId) {
    return new Promise((resolve) => this.expect(jobId, (at, ok) => resolve({ at, ok })));
  }

  close() {
    this.events.off("completed", this.onCompleted);
    this.events.off("failed", this.onFailed);
  }
}

function report(fields) {
  return { system: "bullmq", workload: "noop", retried: 0, errors: {}, ...fields };
}

/** (a) Every job added up front in addBulk batches, as BullMQ recommends for volume; done when Redis counts them all completed. */
async function throughputRun(queue, deadline) {
  const jobs = num("jobs");
  const bulk = num("bulk");
  const before = await queue.getCompletedCount();
  const started = performance.now();
  for (let added = 0; added < jobs; added += bulk) {
    const n = Math.min(bulk, jobs - added);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: "noop", data: {} })));
  }
  const addedMs = performance.now() - started;
  let completed = 0;
  while ((completed = (await queue.getCompletedCount()) - before) < jobs && performance.now() < deadline) await sleep(POLL_MS);
  const durationMs = performance.now() - started;
  return report({
    tasks: jobs, concurrency: jobs, completed, failed: jobs - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), latencyMs: summarize([]), timedOut: completed < jobs,
    // Jobs added in bulk have no per-job send time worth measuring from: this run measures throughput only.
    latencyMeasured: false, addedMs: Math.round(addedMs),
  });
}

/** (d) Ingest: addBulk batches of --bulk, --in-flight-bulks of them at once, no worker; a job counts once addBulk resolved. */
async function ingestRun(queue, deadline) {
  const jobs = num("jobs");
  const bulk = num("bulk");
  let sent = 0, added = 0, failed = 0;
  const started = performance.now();
  const loop = async () => {
    while (sent < jobs && performance.now() < deadline) {
      const n = Math.min(bulk, jobs - sent);
      sent += n;
      try {
        const jobsAdded = await queue.addBulk(Array.from({ length: n }, () => ({ name: "noop", data: {} })));
        added += jobsAdded.length; // after the await: `added += await ...` would read `added` before it, losing other loops' adds
      } catch (err) {
        failed += n;
        if (failed === n) process.stderr.write(`bullmq: addBulk failed: ${err.message}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: num("in-flight-bulks") }, loop));
  const durationMs = performance.now() - started;
  return report({
    tasks: jobs, concurrency: bulk, completed: added, failed: jobs - added, durationMs: Math.round(durationMs),
    throughput: Math.round((added / durationMs) * 1000), latencyMs: summarize([]), timedOut: added + failed < jobs, mode: "ingest",
  });
}

/** (b) Open loop: jobs added on a fixed schedule; latency from each job's intended time to its completion event. */
async function openRun(queue, completions, deadline) {
  const plan = planOpenLoop(num("rate"), num("duration-s"));
  let ended = 0, failed = 0, errors = 0;
  const started = performance.now();
  const latencies = new OpenLoopLatencies(plan, started);
  const finish = (i) => (at, ok) => {
    ended++;
    if (ok) latencies.completed(i, at);
    else failed++;
  };
  // What is due goes out together (addBulk).
  const send = (first, count) => {
    const adding = count === 1
      ? queue.add("noop", {}).then((job) => [job])
      : queue.addBulk(Array.from({ length: count }, () => ({ name: "noop", data: {} })));
    adding.then(
      (jobs) => jobs.forEach((job, k) => completions.expect(job.id, finish(first + k))),
      () => { errors += count; ended += count; failed += count; },
    );
  };
  const { sent, fields } = await sendOnSchedule(plan, started, deadline, send, latencies);
  while (ended < sent && performance.now() < deadline) await sleep(1);
  const durationMs = performance.now() - started;
  const completed = latencies.count;
  return report({
    tasks: plan.tasks, concurrency: 0, completed, failed: plan.tasks - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), ...latencies.fields(), timedOut: ended < plan.tasks,
    errors: errors > 0 ? { add: errors } : {}, ...fields,
  });
}

/** (c) Closed loop: `clients` loops, each adding a job and waiting for its completion event before the next. */
async function closedRun(queue, completions, deadline, jobs, clients) {
  const latencies = [];
  let next = 0, failed = 0;
  const started = performance.now();
  const loop = async () => {
    for (let i = next++; i < jobs && performance.now() < deadline; i = next++) {
      const t0 = performance.now();
      try {
        const job = await queue.add("noop", {});
        const { at, ok } = await completions.wait(job.id);
        if (ok) latencies.push(at - t0);
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  const timeout = new Promise((r) => setTimeout(r, Math.max(0, deadline - performance.now())).unref());
  await Promise.race([Promise.all(Array.from({ length: clients }, loop)), timeout]);
  const durationMs = performance.now() - started;
  const completed = latencies.length;
  return report({
    tasks: jobs, concurrency: clients, completed, failed: jobs - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), latencyMs: summarize(latencies), timedOut: completed + failed < jobs,
  });
}

function startWorker(port, queueName) {
  return startWorkerProcess("BullMQ", join(HERE, "worker.mjs"), ["--port", String(port), "--queue", queueName, "--concurrency", o.concurrency], WORKER_START_MS);
}

/** What to stop if we are interrupted: the worker processes and redis-server would outlive us otherwise. */
const children = { workers: [], redis: undefined };
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    for (const w of children.workers) w.proc.kill("SIGKILL");
    await children.redis?.stop();
    process.exit(130);
  });
}

async function main() {
  const redis = await startRedis();
  children.redis = redis;
  const connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
  const queueName = `bench-${o.workload}`;
  const workers = children.workers;
  let queue, events;
  try {
    const ingest = o.workload === "ingest";
    // Ingest measures acknowledged adds alone: no worker takes CPU from the producer and Redis.
    for (let w = 0; w < (ingest ? 0 : num("workers")); w++) workers.push(startWorker(redis.port, queueName));
    await Promise.all(workers.map((w) => w.ready));
    queue = new Queue(queueName, { connection, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
    events = new QueueEvents(queueName, { connection });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    process.stderr.write(`bullmq: redis ${redis.version} on port ${redis.port}, ${workers.length} worker process(es) x concurrency ${o.concurrency}, node ${process.version}\n`);
    for (let run = 0; ingest && run < num("runs"); run++) {
      if (run === 0) await ingestRun(queue, performance.now() + num("deadline-s") * 1000); // warm-up, unmeasured
      await queue.drain(); // the jobs of the run before, not held in Redis's memory during this one
      process.stdout.write(JSON.stringify(await ingestRun(queue, performance.now() + num("deadline-s") * 1000)) + "\n");
    }
    for (let run = 0; !ingest && run < num("runs"); run++) {
      const completions = new Completions(events);
      try {
        // Until QueueEvents is reading, completions go unseen: retry the check until one round is all seen.
        for (let tries = 0; ; tries++) {
          const check = await closedRun(queue, completions, performance.now() + CHECK_MS, CHECK_JOBS, 8);
          if (check.completed === CHECK_JOBS) break;
          if (tries === 2) throw new Error(`QueueEvents check: ${check.completed} of ${CHECK_JOBS} completions seen, three times`);
        }
        // Fresh Node processes run BullMQ's code unoptimized for the first seconds (latency spikes of 100-250 ms
        // at 2,000 jobs/s here): measure them warm, as our servers are after their first run.
        const warmupJobs = Number(o["warmup-jobs"]);
        if (run === 0 && warmupJobs > 0) await closedRun(queue, completions, performance.now() + num("deadline-s") * 1000, warmupJobs, WARMUP_CLIENTS);
        const deadline = performance.now() + num("deadline-s") * 1000;
        const result = o.workload === "throughput" ? await throughputRun(queue, deadline)
          : o.workload === "open" ? await openRun(queue, completions, deadline)
          : await closedRun(queue, completions, deadline, num("jobs"), num("clients"));
        process.stdout.write(JSON.stringify(result) + "\n");
      } finally {
        completions.close();
      }
    }
  } finally {
    await Promise.allSettled([queue?.close(), events?.close()]);
    for (const w of workers) w.proc.kill("SIGTERM");
    await Promise.all(workers.map((w) => (w.proc.exitCode === null ? new Promise((r) => w.proc.once("exit", r)) : undefined)));
    await redis.stop();
  }
}

await main();
