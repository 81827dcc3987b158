// Which durable log to keep: our hand-written WriteAheadLog (one checksummed
// record per batch, fdatasync per commit) against bun:sqlite in WAL mode
// (synchronous=FULL, one transaction per batch). Both get the same records at
// the same batch sizes; we report records/s and the latency of one commit.
//
//   bun bench/wal-compare.ts [--runs 3] [--run-ms 1000] [--batches 1,16,256,4096] [--workloads submit,mix] [--dir /tmp] [--quiet-wait-ms 30000]
//
// Run with --help for what each option bounds.

import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Logger } from "../src/cli/log.ts";
import { WriteAheadLog } from "../src/coordinator/wal.ts";
import { Prng } from "../src/core/prng.ts";
import { othersCorePercent, sampleCpu, waitForQuiet } from "./cpu-others.ts";

const HELP = `bun bench/wal-compare.ts [options]
  --runs N          runs per cell; figures are the medians (default 3)
  --run-ms MS       wall time one cell may take per run (default 1000)
  --commits-max N   commits one cell may make per run, so latency arrays stay bounded (default 200000)
  --batches LIST    records per commit (default 1,16,256,4096)
  --workloads LIST  submit (60-byte entries) and/or mix (submit/result/dispatch, 1% 1 KiB) (default submit,mix)
  --dir DIR         where the files go; use the disk the coordinator's --data-dir would use (default the OS temp dir)
  --quiet-wait-ms MS  before each pass, wait up to this long for other processes to use under 25% of a core (default 30000)`;

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "run-ms": { type: "string", default: "1000" },
    "commits-max": { type: "string", default: "200000" },
    batches: { type: "string", default: "1,16,256,4096" },
    workloads: { type: "string", default: "submit,mix" },
    dir: { type: "string", default: tmpdir() },
    "quiet-wait-ms": { type: "string", default: "30000" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const runs = Number(values.runs);
const runMs = Number(values["run-ms"]);
const commitsMax = Number(values["commits-max"]);
const batchSizes = values.batches!.split(",").map(Number);
/** Records generated once per workload and reused in a cycle; every batch size divides it, so no batch wraps. */
const POOL_RECORDS = 8192;
if (batchSizes.some((b) => !(b > 0) || POOL_RECORDS % b !== 0)) throw new Error(`--batches must divide ${POOL_RECORDS}`);

/** Entry sizes as the coordinator's event log writes them (u8 type | f64 now | f64 subject | body). */
const SIZES = { submit: 60, result: 45, dispatch: 17, bigSubmit: 1024 };

function recordSizes(workload: string, prng: Prng): number {
  if (workload === "submit") return SIZES.submit;
  const roll = prng.next();
  if (roll < 0.01) return SIZES.bigSubmit;
  return [SIZES.submit, SIZES.result, SIZES.dispatch][prng.int(3)]!;
}

interface Pool {
  records: Uint8Array[];
  /** The same records as one buffer of `u32 length | entry`, as the replication batch carries them. */
  framed: Uint8Array;
  /** Byte offset in `framed` where record i starts (length POOL_RECORDS + 1). */
  offsets: number[];
}

function makePool(workload: string): Pool {
  const prng = new Prng(42);
  const records: Uint8Array[] = [];
  for (let i = 0; i < POOL_RECORDS; i++) records.push(new Uint8Array(recordSizes(workload, prng)).map(() => prng.int(256)));
  const framed = new Uint8Array(records.reduce((s, r) => s + 4 + r.length, 0));
  const view = new DataView(framed.buffer);
  const offsets = [0];
  let at = 0;
  for (const r of records) {
    view.setUint32(at, r.length, true);
    framed.set(r, at + 4);
    at += 4 + r.length;
    offsets.push(at);
  }
  return { records, framed, offsets };
}

/** One mechanism: open in a fresh dir, commit a batch of pool records [from, from + count), close. */
interface Sink {
  commit(firstIndex: number, from: number, count: number): void;
  close(): void;
}

function ourLog(dir: string, pool: Pool): Sink {
  const wal = new WriteAheadLog(dir, Number.MAX_SAFE_INTEGER, new Logger("bench", "error"));
  wal.recover();
  return {
    commit: (firstIndex, from, count) => wal.append(1, firstIndex, count, pool.framed.subarray(pool.offsets[from]!, pool.offsets[from + count]!)),
    close: () => wal.close(),
  };
}

/** One row per record: what replacing our log with a table of entries would look like. */
function sqliteRows(dir: string, pool: Pool): Sink {
  const db = openSqlite(dir, "CREATE TABLE log (idx INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, entry BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO log (idx, epoch, entry) VALUES (?, ?, ?)");
  const commit = db.transaction((firstIndex: number, from: number, count: number) => {
    for (let i = 0; i < count; i++) insert.run(firstIndex + i, 1, pool.records[from + i]!);
  });
  return { commit, close: () => db.close() };
}

/** One row per batch: sqlite used the way our log is (the replication batch stored as it is). */
function sqliteBatches(dir: string, pool: Pool): Sink {
  const db = openSqlite(dir, "CREATE TABLE log (first_idx INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, count INTEGER NOT NULL, entries BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO log (first_idx, epoch, count, entries) VALUES (?, ?, ?, ?)");
  const commit = db.transaction((firstIndex: number, from: number, count: number) => {
    insert.run(firstIndex, 1, count, pool.framed.subarray(pool.offsets[from]!, pool.offsets[from + count]!));
  });
  return { commit, close: () => db.close() };
}

function openSqlite(dir: string, schema: string): Database {
  const db = new Database(join(dir, "log.sqlite"), { create: true });
  // WAL mode with synchronous=FULL: the WAL file is fsynced at every commit, as ours is.
  db.run("PRAGMA journal_mode=WAL");
  db.run("PRAGMA synchronous=FULL");
  db.run(schema);
  return db;
}

const MECHANISMS: Record<string, (dir: string, pool: Pool) => Sink> = {
  "WriteAheadLog": ourLog,
  "sqlite, row per record": sqliteRows,
  "sqlite, row per batch": sqliteBatches,
};

interface Figures {
  recordsPerS: number;
  commitMsP50: number;
  commitMsP99: number;
}

function runCell(mechanism: string, pool: Pool, batch: number): Figures {
  const dir = mkdtempSync(join(values.dir!, "wal-compare-"));
  try {
    const sink = MECHANISMS[mechanism]!(dir, pool);
    const latencies: number[] = [];
    let records = 0;
    const started = performance.now();
    while (latencies.length < commitsMax && performance.now() - started < runMs) {
      const from = records % POOL_RECORDS;
      const t = performance.now();
      sink.commit(records + 1, from, batch);
      latencies.push(performance.now() - t);
      records += batch;
    }
    const elapsedMs = performance.now() - started;
    sink.close();
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    return { recordsPerS: (records / elapsedMs) * 1000, commitMsP50: at(0.5), commitMsP99: at(0.99) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const workloads = values.workloads!.split(",");
const pools = new Map(workloads.map((w) => [w, makePool(w)]));
const cells: Array<{ workload: string; mechanism: string; batch: number; runs: Figures[] }> = [];
for (const workload of workloads) {
  for (const batch of batchSizes) {
    for (const mechanism of Object.keys(MECHANISMS)) cells.push({ workload, mechanism, batch, runs: [] });
  }
}
// Runs are interleaved (every cell once, then again) so a noisy minute on the
// shared machine hurts every mechanism alike instead of one.
/** Other processes' CPU (percent of one core) under which a pass may start. */
const QUIET_PERCENT = 25;
// The machine is shared: start each pass in a quiet moment if one comes, and
// say how busy other processes kept it during each pass.
const othersPercent: Array<number | undefined> = [];
for (let run = 0; run < runs; run++) {
  await waitForQuiet(QUIET_PERCENT, Number(values["quiet-wait-ms"]));
  const from = sampleCpu();
  for (const cell of cells) cell.runs.push(runCell(cell.mechanism, pools.get(cell.workload)!, cell.batch));
  othersPercent.push(othersCorePercent(from, sampleCpu()));
}

console.log(`dir ${values.dir}, ${runs} runs of at most ${runMs} ms per cell, medians; bun ${Bun.version}`);
console.log(`other processes used ${othersPercent.map((p) => (p === undefined ? "?" : `${p}%`)).join(", ")} of a core during the ${runs} passes`);
console.log("| workload | records/commit | mechanism | records/s | commit p50 ms | commit p99 ms |");
console.log("| --- | ---: | --- | ---: | ---: | ---: |");
for (const c of cells) {
  const m = (f: (x: Figures) => number) => median(c.runs.map(f));
  const recordsPerS = Math.round(m((x) => x.recordsPerS)).toLocaleString("en-US");
  console.log(`| ${c.workload} | ${c.batch} | ${c.mechanism} | ${recordsPerS} | ${m((x) => x.commitMsP50).toFixed(3)} | ${m((x) => x.commitMsP99).toFixed(3)} |`);
}
