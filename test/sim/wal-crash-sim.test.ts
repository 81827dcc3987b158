// Crash-recovery simulation of the write-ahead log. Each seeded round writes
// batches and snapshots through the real WriteAheadLog (own snapshots when the
// log asks for one, and backup-style resyncs: a snapshot from a new primary at
// an index below the log's end), crashes at a random point of the write path,
// recovers, checks the result against a model of what was acknowledged, and
// goes on writing from there: several crashes per round, then a clean restart.
//
// The WAL does its own file IO, so a crash is simulated from outside: the files
// are captured before and after one operation, and the crash image is what the
// disk could hold part-way between them (everything fsynced before it, plus any
// prefix of what the operation wrote, maybe damaged since it was never synced;
// a snapshot caught before its rename, or renamed with the log not yet emptied).
// Some crashes also flip bits in what was durable (media damage).
//
// Recovery must return what was acknowledged (or the timeline the interrupted
// operation was making), with a torn last append cut off; and it must refuse
// (StorageError) whenever a durable byte was damaged. It used to cut the log at
// the damage instead, and this simulation checked that it stopped exactly there:
// that silently dropped every acknowledged record from the damage on. The only
// other refusal allowed is of a torn append whose unsynced bytes were damaged so
// that they claim to be a whole record (its length fits in the file): then its
// bytes look like a complete, acknowledged record with a flipped bit, and the
// two cannot be told apart. After a refusal the round goes on from an empty
// data directory, as a replica rebuilt by --recover-from-peer does.
//
// Files go to tmpfs when there is one: the model, not the kernel, decides what
// was durable, so real fsyncs would only cost time.
// Reproduce a failure with the seed it prints: WAL_SIM_SEED=N bun test test/sim/wal-crash-sim.test.ts

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { StorageError } from "../../src/coordinator/storage-error.ts";
import { WriteAheadLog, type Recovered } from "../../src/coordinator/wal.ts";
import { Prng } from "../../src/core/prng.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../../src/core/scheduler.ts";
import type { SchedulerState } from "../../src/core/scheduler-state.ts";
import { concatBytes, randomBytes } from "../support/helpers.ts";

const ROUNDS = 500;
/** Crash-and-recover cycles in one round, before its clean restart. */
const CRASHES_MAX = 3;
/** Operations (appends, snapshots) one life may run; the crash hits one of them. */
const OPS_MAX = 12;
const BATCH_ENTRIES_MAX = 8;
const PADDING_BYTES_MAX = 40;
/** Small, so snapshots (and crashes inside them) are frequent. */
const WAL_BYTES_MAX = 600;
/** How far a resync snapshot's index may lie past the entries the two histories share. */
const RESYNC_AHEAD_MAX = 6;

const WAL = "wal.log";
const SNAP = "snapshot.bin";
const quiet = new Logger("wal-sim", "error");
const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "wal-sim-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const BASE_STATE: SchedulerState = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0 }).exportState();

/** Every entry carries a label unique in the round; a timeline is the labels at indexes 1..n. */
type Label = number;

/** The files as a crash left them; `snapLabels` are the entries the (undamaged) snapshot holds. */
interface Image { wal: Uint8Array; snap?: Uint8Array; tmp?: Uint8Array; snapLabels?: Label[] }

interface Crash {
  image: Image;
  /** Timelines recovery may return: the acknowledged one, and the one the interrupted operation was making. */
  candidates: Label[][];
  what: string;
  /** Media damage: then recovery must refuse, naming the damaged file. */
  damaged?: { file: "wal" | "snap"; at: number };
  /** A torn append whose unsynced bytes were damaged, from this offset of wal.log on: recovery may refuse there. */
  refusableFrom?: number;
}

/** The files part-way through one operation, and how they got so. */
type Torn = Pick<Crash, "image" | "what" | "refusableFrom">;

/** What the rounds saw, so the run can check it covered each outcome. */
const seen = { tornTailsRepaired: 0, damageRefused: 0, damagedTailsRefused: 0, supersededDropped: 0 };

class Round {
  private readonly prng: Prng;
  private readonly trace: string[] = [];
  private nextLabel = 1;
  private readonly labelEpochs = new Map<Label, number>();
  /** A snapshot's state carries its marker in nextSeq; the marker names the entries it holds. */
  private readonly snapshots = new Map<number, Label[]>();
  private durableSnap: Label[] | undefined;
  private entries: Label[] = [];
  /** Indexes where the records in this life's log end: a resync snapshot is aimed at one now and then. */
  private recordEnds: number[] = [];
  private epoch = 1;
  private epochMax = 1;
  private dirs = 0;

  constructor(private readonly seed: number) {
    this.prng = new Prng(seed);
  }

  run(): void {
    let dir = this.freshDir();
    for (let c = 1 + this.prng.int(CRASHES_MAX); c > 0; c--) {
      const crash = this.liveUntilCrash(dir);
      dir = this.freshDir();
      writeImage(dir, crash.image);
      this.durableSnap = crash.image.snapLabels;
      if (this.recoverAfter(dir, crash) === "refused") {
        // Rebuilt from a peer: its files set aside, it starts empty (the peer's snapshot would come next).
        dir = this.freshDir();
        this.entries = [];
        this.durableSnap = undefined;
      }
    }
    // Clean restart: what recovery returned is where writing goes on, and all of it survives.
    const wal = this.openExpectingTimeline(dir, "reopened after the last crash");
    for (let n = 1 + this.prng.int(OPS_MAX); n > 0; n--) this.step(wal);
    wal.close();
    this.openExpectingTimeline(dir, "clean restart").close();
    rmSync(join(root, String(this.seed)), { recursive: true, force: true });
  }

  /** One life: recover, run operations, and crash inside one of them. */
  private liveUntilCrash(dir: string): Crash {
    const wal = this.openExpectingTimeline(dir, "reopened after recovery");
    this.recordEnds = [];
    try {
      for (let crashAt = this.prng.int(OPS_MAX); crashAt > 0; crashAt--) this.step(wal);
      const before = { image: capture(dir, this.durableSnap), entries: [...this.entries] };
      const kind = this.step(wal);
      const after = { image: capture(dir, this.durableSnap), entries: [...this.entries] };
      const torn = kind === "append" ? this.tornAppend(before.image, after.image) : this.tornSnapshot(kind, before.image, after.image);
      const crash: Crash = { ...torn, candidates: [before.entries, after.entries] };
      if (this.prng.int(7) === 0) this.damageDurable(crash, before.image);
      this.trace.push(`crash: ${crash.what}${crash.damaged ? `; flipped a bit of ${crash.damaged.file} at ${crash.damaged.at}` : ""}`);
      return crash;
    } finally {
      wal.close();
    }
  }

  /** Runs the next operation as the coordinator would, and updates the model once it returned. */
  private step(wal: WriteAheadLog): "append" | "snapshot" | "resync" {
    if (wal.wantsSnapshot) {
      const marker = this.mark(this.entries);
      wal.snapshot(this.epoch, this.entries.length, { ...BASE_STATE, nextSeq: marker });
      this.durableSnap = this.entries.slice();
      this.recordEnds = [];
      this.trace.push(`snapshot epoch=${this.epoch} index=${this.entries.length}`);
      return "snapshot";
    }
    const roll = this.prng.int(100);
    if (roll < 5) {
      this.epoch = ++this.epochMax; // promoted: later writes carry the new epoch
      this.trace.push(`promote epoch=${this.epoch}`);
    }
    if (roll >= 5 && roll < 15) return this.resync(wal);
    const labels = Array.from({ length: 1 + this.prng.int(BATCH_ENTRIES_MAX) }, () => this.newLabel(this.epoch));
    wal.append(this.epoch, this.entries.length + 1, labels.length, batchBytes(labels, this.prng));
    this.trace.push(`append epoch=${this.epoch} first=${this.entries.length + 1} count=${labels.length}`);
    this.entries.push(...labels);
    this.recordEnds.push(this.entries.length);
    return "append";
  }

  /**
   * A backup's resync: a new primary's snapshot that shares only a prefix of
   * our entries and may end below our log's last index (our tail was never
   * acknowledged: the old primary logged it and died before shipping it).
   */
  private resync(wal: WriteAheadLog): "resync" {
    const epoch = ++this.epochMax;
    const shared = this.prng.int(this.entries.length + 1);
    // Half the time the snapshot ends where one of our records ends and another starts.
    const ends = this.recordEnds.filter((e) => e >= shared && e < this.entries.length);
    const ahead = ends.length > 0 && this.prng.int(2) === 0 ? ends[this.prng.int(ends.length)]! - shared : this.prng.int(RESYNC_AHEAD_MAX + 1);
    const fresh = Array.from({ length: ahead }, () => this.newLabel(epoch));
    const entries = [...this.entries.slice(0, shared), ...fresh];
    wal.snapshot(epoch, entries.length, { ...BASE_STATE, nextSeq: this.mark(entries) });
    this.trace.push(`resync snapshot epoch=${epoch} index=${entries.length} (shares ${shared} of our ${this.entries.length})`);
    this.entries = entries;
    this.epoch = epoch;
    this.durableSnap = entries.slice();
    this.recordEnds = [];
    return "resync";
  }

  /** An append cut at any byte; the unsynced part may be damaged too (bits, zeros, junk after it). */
  private tornAppend(before: Image, after: Image): Torn {
    expect(startsWith(after.wal, before.wal)).toBe(true); // an append only adds bytes
    const record = after.wal.subarray(before.wal.length);
    const p = this.prng;
    const roll = p.int(10);
    const cut = roll < 2 ? 0 : roll < 4 ? record.length : roll < 5 ? p.int(9) : p.int(record.length + 1);
    let tail: Uint8Array = record.slice(0, cut);
    let what = `append cut at ${cut} of ${record.length} bytes`;
    let damaged = true;
    if (p.int(4) === 0) {
      const kind = p.int(3);
      if (kind === 0 && tail.length > 0) {
        tail[p.int(tail.length)]! ^= 1 << p.int(8);
        what += ", a bit flipped in it";
      } else if (kind === 1 && tail.length > 0) {
        tail.fill(0, p.int(tail.length));
        what += ", its end zeroed (size persisted, data not)";
      } else {
        tail = concatBytes([tail, randomBytes(p, 1 + p.int(30))]);
        what += ", junk after it";
      }
    } else damaged = false;
    return { image: { ...before, wal: concatBytes([before.wal, tail]) }, what, ...(damaged && { refusableFrom: before.wal.length }) };
  }

  /** A snapshot caught before its rename, after it with the log not yet emptied, or just after. */
  private tornSnapshot(kind: string, before: Image, after: Image): Torn {
    const phase = this.prng.int(3);
    if (phase === 0) {
      const tmp = after.snap!.slice(0, this.prng.int(after.snap!.length + 1));
      return { image: { ...before, tmp }, what: `${kind} with ${tmp.length} of ${after.snap!.length} bytes in the temp file` };
    }
    if (phase === 1) return { image: { ...after, wal: before.wal }, what: `${kind} renamed, log not yet emptied` };
    return { image: after, what: `${kind} complete` };
  }

  /** Flips a bit in a file that was already durable before the interrupted operation. */
  private damageDurable(crash: Crash, before: Image): void {
    const snap = crash.image.snap;
    const durableWalBytes = Math.min(before.wal.length, crash.image.wal.length);
    const inWal = durableWalBytes > 0 && (snap === undefined || this.prng.int(2) === 0);
    if (!inWal && snap === undefined) return;
    const bytes = inWal ? crash.image.wal.slice() : snap!.slice();
    const at = this.prng.int(inWal ? durableWalBytes : bytes.length);
    bytes[at]! ^= 1 << this.prng.int(8);
    crash.damaged = { file: inWal ? "wal" : "snap", at };
    crash.image = inWal ? { ...crash.image, wal: bytes } : { ...crash.image, snap: bytes };
  }

  /** Recovers a crash image and checks it against the model; the result is where writing goes on. */
  private recoverAfter(dir: string, crash: Crash): "recovered" | "refused" {
    let r: Recovered;
    const wal = new WriteAheadLog(dir, WAL_BYTES_MAX, quiet);
    try {
      r = wal.recover();
    } catch (err) {
      if (!(err instanceof StorageError)) return this.fail(`recovery threw ${String(err)}`);
      this.checkRefusal(dir, crash, err);
      return "refused";
    } finally {
      wal.close();
    }
    if (crash.damaged !== undefined) return this.fail(`recovered ${fmt(this.labelsOrFail(r))} from a damaged ${crash.damaged.file}: it must refuse`);
    const got = this.labelsOrFail(r);
    if (!crash.candidates.some((c) => same(c, got))) {
      this.fail(`acknowledged entries lost, or entries that were never one history: recovered ${fmt(got)}; allowed ${crash.candidates.map(fmt).join(" or ")}`);
    }
    if (r.tornTail !== undefined) seen.tornTailsRepaired++;
    if (r.superseded !== undefined) seen.supersededDropped++;
    const last = got.at(-1);
    if (r.epoch > this.epochMax || (last !== undefined && r.epoch < this.labelEpochs.get(last)!)) this.fail(`epoch ${r.epoch} out of range`);
    this.entries = got;
    this.epoch = r.epoch;
    return "recovered";
  }

  /** A refusal is right for durable damage (naming that file), or for a torn append whose unsynced bytes were damaged. */
  private checkRefusal(dir: string, crash: Crash, err: StorageError): void {
    if (crash.damaged !== undefined) {
      const file = join(dir, crash.damaged.file === "wal" ? WAL : SNAP);
      if (err.file !== file) this.fail(`refused naming ${err.file} at ${err.offset}, but the damage is in ${file} at ${crash.damaged.at}`);
      if (crash.damaged.file === "wal" && err.offset > crash.damaged.at) this.fail(`refused at offset ${err.offset}, after the damage at ${crash.damaged.at}`);
      seen.damageRefused++;
      return;
    }
    if (crash.refusableFrom !== undefined && err.file === join(dir, WAL) && err.offset >= crash.refusableFrom) {
      seen.damagedTailsRefused++;
      return;
    }
    this.fail(`refused an image with no damage to anything durable: ${err.message}`);
  }

  private labelsOrFail(r: Recovered): Label[] {
    const got = this.labelsOf(r);
    return typeof got === "string" ? this.fail(`recovery returned what was never written: ${got}`) : got;
  }

  /** Opens the log and checks that recovery returns exactly the model's timeline. */
  private openExpectingTimeline(dir: string, when: string): WriteAheadLog {
    const wal = new WriteAheadLog(dir, WAL_BYTES_MAX, quiet);
    const got = this.labelsOf(wal.recover());
    if (typeof got === "string" || !same(got, this.entries)) {
      wal.close();
      this.fail(`${when}: recovered ${typeof got === "string" ? got : fmt(got)}, expected ${fmt(this.entries)}`);
    }
    return wal;
  }

  /** The timeline a recovery stands for, or why it is not one (a snapshot never written, a gap, a count that lies). */
  private labelsOf(r: Recovered): Label[] | string {
    const snapIndex = r.batches.length > 0 ? r.batches[0]!.firstIndex - 1 : r.index;
    let labels: Label[] = [];
    if (r.state !== undefined) {
      const held = this.snapshots.get(r.state.nextSeq);
      if (held === undefined || held.length !== snapIndex) return `snapshot ${r.state.nextSeq} at index ${snapIndex}`;
      labels = [...held];
    } else if (snapIndex !== 0) return `no snapshot, yet the log starts at ${snapIndex + 1}`;
    for (const b of r.batches) {
      if (b.firstIndex !== labels.length + 1) return `batch at ${b.firstIndex} after index ${labels.length}`;
      const inBatch = parseLabels(b.entries);
      if (inBatch === undefined || inBatch.length !== b.count) return `batch at ${b.firstIndex} does not hold ${b.count} entries`;
      labels.push(...inBatch);
    }
    return labels.length === r.index ? labels : `index ${r.index} but ${labels.length} entries`;
  }

  private newLabel(epoch: number): Label {
    const label = this.nextLabel++;
    this.labelEpochs.set(label, epoch);
    return label;
  }

  private mark(entries: Label[]): number {
    const marker = this.snapshots.size + 1;
    this.snapshots.set(marker, entries.slice());
    return marker;
  }

  private freshDir(): string {
    const dir = join(root, String(this.seed), String(this.dirs++));
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private fail(message: string): never {
    throw new Error(`seed=${this.seed}: ${message}\n  ${this.trace.slice(-40).join("\n  ")}\nreproduce: WAL_SIM_SEED=${this.seed} bun test test/sim/wal-crash-sim.test.ts`);
  }
}

/** Entries as a batch carries them (`u32 bytes | entry`), each entry opening with its u32 label. */
function batchBytes(labels: Label[], prng: Prng): Uint8Array {
  return concatBytes(labels.map((label) => {
    const e = new Uint8Array(8 + prng.int(PADDING_BYTES_MAX + 1));
    const v = new DataView(e.buffer);
    v.setUint32(0, e.length - 4, true);
    v.setUint32(4, label, true);
    e.set(randomBytes(prng, e.length - 8), 8);
    return e;
  }));
}

function parseLabels(entries: Uint8Array): Label[] | undefined {
  const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
  const labels: Label[] = [];
  for (let at = 0; at < entries.length;) {
    if (at + 8 > entries.length) return undefined;
    const bytes = view.getUint32(at, true);
    if (bytes < 4 || at + 4 + bytes > entries.length) return undefined;
    labels.push(view.getUint32(at + 4, true));
    at += 4 + bytes;
  }
  return labels;
}

function capture(dir: string, snapLabels: Label[] | undefined): Image {
  const snapPath = join(dir, SNAP);
  const snap = existsSync(snapPath) ? new Uint8Array(readFileSync(snapPath)) : undefined;
  return { wal: new Uint8Array(readFileSync(join(dir, WAL))), snap, snapLabels: snap && snapLabels };
}

function writeImage(dir: string, image: Image): void {
  writeFileSync(join(dir, WAL), image.wal);
  if (image.snap !== undefined) writeFileSync(join(dir, SNAP), image.snap);
  if (image.tmp !== undefined) writeFileSync(join(dir, `${SNAP}.tmp`), image.tmp);
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const startsWith = (a: Uint8Array, prefix: Uint8Array) => a.length >= prefix.length && prefix.every((x, i) => a[i] === x);
const fmt = (labels: Label[]) => (labels.length <= 12 ? `[${labels.join(",")}]` : `[${labels.slice(0, 4).join(",")},...,${labels.slice(-6).join(",")}] (${labels.length})`);

const envSeed = process.env.WAL_SIM_SEED;
const seeds = envSeed !== undefined ? [Number(envSeed)] : Array.from({ length: ROUNDS }, (_, i) => 1000 + i);

test(`write-ahead log: ${seeds.length} rounds of crashes anywhere in the write path, then recovery and more writes`, () => {
  for (const seed of seeds) new Round(seed).run();
  // The rounds reached every outcome (a full run only: one seed may reach few).
  if (envSeed === undefined) for (const [outcome, count] of Object.entries(seen)) expect({ outcome, count: count > 0 }).toEqual({ outcome, count: true });
});
