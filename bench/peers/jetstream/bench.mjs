// NATS JetStream running the workloads of our client, measured the same way,
// for scripts/bench-compare.sh (issue 17). Starts its own nats-server(s)
// (memory or file storage on one node, or a three-node cluster with a file
// stream of three replicas) and a worker process, runs one workload --runs
// times, prints one JSON line per run in our client's --json shape (plus
// "system"), and stops everything it started.
//
//   bun bench.mjs --mode memory --workload throughput --jobs 100000 --in-flight 512
//   bun bench.mjs --mode file   --workload open --rate 2000 --duration-s 3
//   bun bench.mjs --mode r3     --workload closed --clients 64 --jobs 20000
//   bun bench.mjs --mode memory --workload ingest --jobs 500000 --in-flight 4096
//   bun bench.mjs --mode r3     --workload open --serve --duration-s 3 --warmup-s 1   (rates on stdin)
//
// A job is a message on a WorkQueue stream, published with JetStream's
// publish (acknowledged by the stream, not awaited one by one: many are in
// flight at once); the worker reads a durable pull consumer in batches,
// publishes a completion message to the submitter's subject and acks the job.
// A job is done when the submitter sees its completion: the same
// submit -> completion-seen-by-submitter path our client measures.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { AckPolicy, connect, RetentionPolicy, StorageType } from "nats";
import { positiveOption, sleep, startWorkerProcess, summarize } from "../shared/peer-support.mjs";
import { OpenLoopLatencies, planOpenLoop, sendOnSchedule } from "../shared/schedule.mjs";
import { startNats } from "./servers.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const STREAM = "JOBS";
const CONSUMER = "workers";
/** Jobs run (closed loop, 8 at a time) before each measured run: proves the worker is consuming. */
const CHECK_JOBS = 200;
const CHECK_MS = 5_000;
/** How long the worker process may take to say "ready". */
const WORKER_START_MS = 15_000;

const { values: o } = parseArgs({
  options: {
    mode: { type: "string", default: "memory" },
    workload: { type: "string", default: "throughput" },
    runs: { type: "string", default: "1" },
    jobs: { type: "string", default: "100000" },
    "in-flight": { type: "string", default: "512" },
    rate: { type: "string", default: "2000" },
    "duration-s": { type: "string", default: "3" },
    "warmup-s": { type: "string", default: "0" },
    serve: { type: "boolean", default: false },
    clients: { type: "string", default: "64" },
    batch: { type: "string", default: "1000" },
    "max-ack-pending": { type: "string", default: "20000" },
    workers: { type: "string", default: "1" },
    "warmup-jobs": { type: "string", default: "10000" },
    "deadline-s": { type: "string", default: "120" },
    help: { type: "boolean", short: "h" },
  },
});
if (o.help) {
  process.stdout.write(`Usage: bun bench.mjs --mode memory|file|r3 --workload throughput|open|closed [options]

  memory      one nats-server, a memory stream        file   one nats-server, a file stream
  r3          three nats-servers in a cluster, a file stream with three replicas
  throughput  --jobs no-op jobs, --in-flight of them published and not yet completed at any time
  open        --rate jobs/s on a fixed schedule for --duration-s; latency from each job's intended send time;
              --warmup-s S first runs the same schedule S seconds, unmeasured (as our client's --warmup-s)
  --serve     open only: keep the servers and the worker up, print "ready", then run one open loop per rate
              read from stdin (one number a line) and print its JSON line; ends at the end of stdin
  closed      --clients loops, each publishing a job and waiting for its completion; --jobs in all
  ingest      --jobs publishes, --in-flight of them awaiting their PubAck at any time, no worker: acknowledged jobs/s

Options: --runs N (1), --jobs N (100000), --in-flight N (512), --rate N (2000), --duration-s S (3), --clients N (64),
  --batch N the worker's consume() batch (1000), --max-ack-pending N the consumer's (20000), --workers N processes (1),
  --warmup-jobs N closed-loop jobs before the first measured run (10000; 0: none), --deadline-s S per run (120)
Prints one JSON line per run (our client's --json shape plus "system"); progress on stderr.
`);
  process.exit(0);
}
if (!["memory", "file", "r3"].includes(o.mode)) throw new Error(`--mode must be memory, file or r3, got ${o.mode}`);
if (!["throughput", "open", "closed", "ingest"].includes(o.workload)) throw new Error(`--workload must be throughput, open, closed or ingest, got ${o.workload}`);
if (o.serve && o.workload !== "open") throw new Error("--serve is for the open workload");
const num = (name) => positiveOption(o, name);
const SYSTEM = `jetstream-${o.mode}`;
function report(fields) {
  return { system: SYSTEM, workload: "noop", retried: 0, errors: {}, ...fields };
}

/** Publishes jobs and calls each one's done(at, ok) when its completion arrives or its publish fails. */
class Submitter {
  constructor(nc, js, subject) {
    this.js = js;
    this.subject = subject;
    this.nextId = 0;
    this.waiting = new Map();
    this.publishErrors = 0;
    this.sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        const at = performance.now();
        const id = Number(new TextDecoder().decode(msg.data));
        const done = this.waiting.get(id);
        if (done === undefined) return;
        this.waiting.delete(id);
        done(at, true);
      },
    });
  }

  submit(done) {
    const id = this.nextId++;
    this.waiting.set(id, done);
    this.js.publish("jobs.noop", `${this.subject} ${id}`).catch(() => {
      if (!this.waiting.delete(id)) return;
      this.publishErrors++;
      done(performance.now(), false);
    });
  }

  wait() {
    return new Promise((resolve) => this.submit((at, ok) => resolve({ at, ok })));
  }

  close() {
    this.sub.unsubscribe();
  }
}

/** (a) No-op jobs with --in-flight of them outstanding at any time; throughput to the last completion. */
async function throughputRun(submitter, deadline) {
  const jobs = num("jobs");
  const window = num("in-flight");
  const latencies = [];
  let sent = 0, ended = 0, failed = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    const sendOne = () => {
      const t0 = performance.now();
      sent++;
      submitter.submit((at, ok) => {
        ended++;
        if (ok) latencies.push(at - t0);
        else failed++;
        if (sent < jobs && performance.now() < deadline) sendOne();
        else if (ended === sent) resolve();
      });
    };
    for (let i = 0; i < Math.min(window, jobs); i++) sendOne();
    const timer = setInterval(() => {
      if (performance.now() >= deadline) resolve();
    }, 100);
    timer.unref?.();
  });
  const durationMs = performance.now() - started;
  const completed = latencies.length;
  return report({
    tasks: jobs, concurrency: window, completed, failed: jobs - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), latencyMs: summarize(latencies), timedOut: completed + failed < jobs,
    errors: submitter.publishErrors > 0 ? { publish: submitter.publishErrors } : {},
  });
}

/**
 * (d) Ingest: async publish with --in-flight PubAcks outstanding, no worker
 * consuming; a job counts once the stream acknowledged it (stored, replicated with r3).
 */
async function ingestRun(js, deadline) {
  const jobs = num("jobs");
  const window = num("in-flight");
  let sent = 0, acked = 0, failed = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    const publishOne = () => {
      sent++;
      js.publish("jobs.noop", "ingest").then(
        () => acked++,
        () => failed++,
      ).finally(() => {
        if (sent < jobs && performance.now() < deadline) publishOne();
        else if (acked + failed === sent) resolve();
      });
    };
    for (let i = 0; i < Math.min(window, jobs); i++) publishOne();
  });
  const durationMs = performance.now() - started;
  return report({
    tasks: jobs, concurrency: window, completed: acked, failed: jobs - acked, durationMs: Math.round(durationMs),
    throughput: Math.round((acked / durationMs) * 1000), latencyMs: summarize([]), timedOut: acked + failed < jobs, mode: "ingest",
  });
}

/** (b) Open loop: jobs published on a fixed schedule; latency from each job's intended time to its completion. */
async function openRun(submitter, deadline, rate, durationS) {
  const plan = planOpenLoop(rate, durationS);
  let ended = 0;
  const started = performance.now();
  const latencies = new OpenLoopLatencies(plan, started);
  const { sent, fields } = await sendOnSchedule(plan, started, deadline, (first, count) => {
    for (let i = first; i < first + count; i++) {
      submitter.submit((at, ok) => {
        ended++;
        if (ok) latencies.completed(i, at);
      });
    }
  }, latencies);
  while (ended < sent && performance.now() < deadline) await sleep(1);
  const durationMs = performance.now() - started;
  const completed = latencies.count;
  return report({
    tasks: plan.tasks, concurrency: 0, completed, failed: plan.tasks - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), ...latencies.fields(), timedOut: ended < plan.tasks,
    errors: submitter.publishErrors > 0 ? { publish: submitter.publishErrors } : {}, ...fields,
  });
}

/** (c) Closed loop: `clients` loops, each publishing a job and waiting for its completion before the next. */
async function closedRun(submitter, deadline, jobs, clients) {
  const latencies = [];
  let next = 0, failed = 0;
  const started = performance.now();
  const loop = async () => {
    for (let i = next++; i < jobs && performance.now() < deadline; i = next++) {
      const t0 = performance.now();
      const { at, ok } = await submitter.wait();
      if (ok) latencies.push(at - t0);
      else failed++;
    }
  };
  // Cleared after: a pending deadline timer would keep the process alive up to --deadline-s after its last run.
  let timer;
  const timeout = new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now()))));
  await Promise.race([Promise.all(Array.from({ length: clients }, loop)), timeout]);
  clearTimeout(timer);
  const durationMs = performance.now() - started;
  const completed = latencies.length;
  return report({
    tasks: jobs, concurrency: clients, completed, failed: jobs - completed, durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000), latencyMs: summarize(latencies), timedOut: completed + failed < jobs,
  });
}

/** The rates of the measured runs: --rate --runs times, or with --serve one per line of stdin until it ends. */
async function* requestedRates() {
  if (!o.serve) {
    for (let run = 0; run < num("runs"); run++) yield num("rate");
    return;
  }
  process.stdout.write("ready\n");
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue;
    const rate = Number(line);
    if (!(rate > 0) || !Number.isFinite(rate)) throw new Error(`--serve: a rate must be a positive number, got ${JSON.stringify(line.slice(0, 40))}`);
    yield rate;
  }
}

function startWorker(urls) {
  return startWorkerProcess("JetStream", join(HERE, "worker.mjs"), ["--servers", urls.join(","), "--stream", STREAM, "--consumer", CONSUMER, "--batch", o.batch], WORKER_START_MS);
}

/** What to stop if we are interrupted: the worker processes and nats-servers would outlive us otherwise. */
const children = { workers: [], nats: undefined };
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    for (const w of children.workers) w.proc.kill("SIGKILL");
    await children.nats?.stop();
    process.exit(130);
  });
}

async function main() {
  const nodes = o.mode === "r3" ? 3 : 1;
  const nats = await startNats(nodes);
  children.nats = nats;
  let nc;
  const workers = children.workers;
  try {
    nc = await connect({ servers: nats.urls });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: STREAM, subjects: ["jobs.>"], retention: RetentionPolicy.Workqueue,
      storage: o.mode === "memory" ? StorageType.Memory : StorageType.File, num_replicas: nodes,
    });
    await jsm.consumers.add(STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, max_ack_pending: num("max-ack-pending") });
    const ingest = o.workload === "ingest";
    // Ingest measures acknowledged publishes alone: no worker takes CPU from the publisher and the server.
    for (let w = 0; w < (ingest ? 0 : num("workers")); w++) workers.push(startWorker(nats.urls));
    await Promise.all(workers.map((w) => w.ready));
    process.stderr.write(`jetstream: nats-server ${nats.version}, ${o.mode} (${nodes} node(s), ${nodes} replica(s)), ${workers.length} worker process(es), consume() batch ${o.batch}, ${process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`}\n`);
    const submitter = new Submitter(nc, nc.jetstream(), `done.${process.pid}`);
    try {
      for (let run = 0; ingest && run < num("runs"); run++) {
        if (run === 0) await ingestRun(nc.jetstream(), performance.now() + num("deadline-s") * 1000); // warm-up, unmeasured
        await jsm.streams.purge(STREAM);
        process.stdout.write(JSON.stringify(await ingestRun(nc.jetstream(), performance.now() + num("deadline-s") * 1000)) + "\n");
        await jsm.streams.purge(STREAM);
      }
      const checkWorker = async () => {
        const check = await closedRun(submitter, performance.now() + CHECK_MS, CHECK_JOBS, 8);
        if (check.completed !== CHECK_JOBS) throw new Error(`worker check: ${check.completed} of ${CHECK_JOBS} completions seen`);
      };
      // A fresh process runs the client's code unoptimized at first: measure it warm, as ours is after its warm-up.
      const warmupJobs = Number(o["warmup-jobs"]);
      if (!ingest) await checkWorker();
      if (!ingest && warmupJobs > 0) await closedRun(submitter, performance.now() + num("deadline-s") * 1000, warmupJobs, 64);
      for await (const rate of ingest ? [] : requestedRates()) {
        await checkWorker();
        const deadline = performance.now() + num("deadline-s") * 1000;
        const warmupS = Number(o["warmup-s"]);
        if (o.workload === "open" && warmupS > 0) await openRun(submitter, deadline, rate, warmupS);
        const result = o.workload === "throughput" ? await throughputRun(submitter, deadline)
          : o.workload === "open" ? await openRun(submitter, deadline, rate, num("duration-s"))
          : await closedRun(submitter, deadline, num("jobs"), num("clients"));
        process.stdout.write(JSON.stringify(result) + "\n");
      }
    } finally {
      submitter.close();
    }
  } finally {
    for (const w of workers) w.proc.kill("SIGTERM");
    await Promise.all(workers.map((w) => (w.proc.exitCode === null ? new Promise((r) => w.proc.once("exit", r)) : undefined)));
    await nc?.close().catch(() => {});
    await nats.stop();
  }
}

await main();
