// Shared by the stored-state and handshake fuzz suites: a generic byte mutator,
// odd msgpack values (what a hostile peer puts in a control map),
// a generator of valid replication-log entries (a shard's plausible history,
// applied as it goes), and the src bugs these suites found (KNOWN_BUGS).

import { encode } from "@msgpack/msgpack";
import { applyEntry, encodeRunning, encodeWorkerCredit, encodeWorkerJoined, Ev } from "../../src/coordinator/event-log.ts";
import type { Prng } from "../../src/core/prng.ts";
import { Scheduler, type SchedulerOptions, type SubmitOutcome, type WorkflowOutcome } from "../../src/core/scheduler.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { Reader } from "../../src/protocol/codec.ts";
import { BackoffType, SUBMIT_FLAG_NOTIFY, type SubmitExtras } from "../../src/protocol/messages.ts";
import { concatBytes, randomBytes } from "../support/helpers.ts";
import { resultBody, submitBody } from "../sim/replication-wire.ts";

/**
 * Bugs in src these suites found. Each has a `test.failing` reproduction (so
 * the suite passes while the bug is there and fails once it is fixed: then
 * set the switch to false, turn the repro into a plain test, and the fuzzers
 * generate the inputs they now avoid).
 */
export const KNOWN_BUGS = {
  /**
   * String(), Number() and template literals on msgpack maps from a peer: a
   * map with a "toString" (or "toString" and "valueOf") key that is not a
   * function makes them throw TypeError, which escapes as "internal error
   * handling a frame" (E_BAD_FRAME, console.error) instead of E_BAD_HELLO /
   * E_BAD_REQUEST. coordinator.ts hello(), workerHello(), command(),
   * taskQuery(), DLQ_LIST; router.ts hello(), onMessage(), routeWorkflow(),
   * fanOut(); event-log.ts workflowNodeToRequest() (tags, dependsOn).
   * True: the fuzzers put no "toString"/"valueOf" keys in maps.
   */
  hostileToString: false,
  /**
   * coordinator.ts onMessage, case SUBMIT: the request id is read with
   * r.view.getUint32(r.pos) before readSubmit checks the length, so a SUBMIT
   * body under 4 bytes at the end of a frame throws RangeError (internal
   * error) instead of E_BAD_FRAME. True: the fuzzers send no SUBMIT under 4 bytes.
   */
  shortSubmit: false,
  /**
   * router.ts routeSubmit checks only that a SUBMIT's type and key are in
   * bounds before forwarding it on the router's one link to the shard's
   * coordinator; the coordinator's readSubmit then refuses it with a
   * connection-level E_BAD_FRAME (coordinator.ts onMessage, case SUBMIT:
   * record() rethrows), closing the router's link: every request in flight
   * from every client of that router fails with E_UNAVAILABLE. True: the
   * router fuzzer sends it only SUBMITs that readSubmit accepts.
   */
  routerForwardsMalformedSubmit: false,
  /**
   * event-log.ts applyEntry, case Ev.WORKFLOW: msgpack decode() and
   * nodes.map run unguarded, so a malformed WORKFLOW entry throws DecodeError,
   * RangeError or TypeError instead of ProtocolError. True: WORKFLOW entries
   * are mutated as values (valid msgpack arrays of nodes), never as bytes.
   */
  workflowEntryThrowsRaw: false,
};

/** One random change to a byte string, of a kind that real damage or a hostile peer produces. */
export function mutateBytes(bytes: Uint8Array, prng: Prng): Uint8Array {
  const out = bytes.slice();
  const at = () => prng.int(out.length + 1);
  switch (prng.int(8)) {
    case 0: // bit flips
      for (let k = 1 + prng.int(8); k > 0 && out.length > 0; k--) out[prng.int(out.length)]! ^= 1 << prng.int(8);
      return out;
    case 1: // truncation
      return out.subarray(0, at());
    case 2: // random bytes spliced in
      return concatBytes([out.subarray(0, at()), randomBytes(prng, 1 + prng.int(16)), out.subarray(at())]);
    case 3: // a stretch of 0x00 or 0xff (extreme lengths and counts)
      if (out.length > 0) out.fill(prng.int(2) === 0 ? 0 : 0xff, prng.int(out.length), prng.int(out.length + 1));
      return out;
    case 4: // one byte deleted
      if (out.length === 0) return out;
      {
        const cut = prng.int(out.length);
        return concatBytes([out.subarray(0, cut), out.subarray(cut + 1)]);
      }
    case 5: // one byte set to a value type tags and lengths care about
      if (out.length > 0) out[prng.int(out.length)] = [0, 1, 0x7f, 0x80, 0xc0, 0xc1, 0xc4, 0xc6, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff][prng.int(14)]!;
      return out;
    case 6: { // a stretch duplicated somewhere else
      const from = prng.int(out.length + 1);
      const piece = out.slice(from, from + 1 + prng.int(64));
      const to = at();
      return concatBytes([out.subarray(0, to), piece, out.subarray(to)]);
    }
    default: // a u32 somewhere set to an extreme
      if (out.length >= 4) new DataView(out.buffer, out.byteOffset).setUint32(prng.int(out.length - 3), [0, 1, 0x7fffffff, 0xffffffff, out.length, prng.int(2 ** 32)][prng.int(6)]!, true);
      return out;
  }
}

/**
 * The first difference between two plain values (exported states) as a path,
 * or undefined. Numbers compare with ===, except that NaN equals NaN (a damaged
 * entry's time may be NaN); -0 equals 0 (msgpack writes -0 as 0); a key holding
 * undefined equals a missing key; byte arrays compare by content.
 */
export function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return undefined;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b)) ? undefined : `${path}: bytes differ`;
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const d = firstDifference(x[k], y[k], `${path}.${k}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return `${path}: ${String(a)} != ${String(b)}`;
}

export function hex(bytes: Uint8Array, max = 96): string {
  const shown = Buffer.from(bytes.subarray(0, max)).toString("hex");
  return bytes.length > max ? `${shown}... (${bytes.length} bytes)` : shown;
}

// ---------------------------------------------------------------- odd msgpack values (what a hostile peer puts in a control map)

const ODD_NUMBERS = [0, -1, 1, 2, 7, 0.5, 65_536, 2 ** 32, 2 ** 53 + 2, -(2 ** 63), 1e308, Number.NaN, Infinity, -Infinity, 3 * 2 ** 40 + 1];
const ODD_STRINGS = ["", "x", "client", "worker", "coordinator", "router", "top", "noop", "fixed", "exponential", "__proto__", "constructor", "日本語", "\u0000", "x".repeat(300)];
const KEYS = [
  "role", "version", "nodeId", "token", "slots", "tags", "workerId", "shard", "epoch", "primary", "requestId", "taskId", "nodes", "offset", "limit",
  "taskIds", "running", "done", "failed", "progress", "attempt", "code", "message", "type", "payload", "dependsOn", "node", "priority",
  "maxAttempts", "timeoutMs", "idempotencyKey", "delayMs", "deadlineMs", "backoff", "maxDelayMs",
];
/** Keys that shadow Object.prototype methods String() and Number() call (KNOWN_BUGS.hostileToString). */
const HOSTILE_KEYS = ["toString", "valueOf"];

export function oddValue(prng: Prng, depth = 0): unknown {
  switch (prng.int(depth >= 3 ? 6 : 9)) {
    case 0: return null;
    case 1: return prng.int(2) === 0;
    case 2: return ODD_NUMBERS[prng.int(ODD_NUMBERS.length)];
    case 3: return prng.int(1000);
    case 4: return ODD_STRINGS[prng.int(ODD_STRINGS.length)];
    case 5: return randomBytes(prng, prng.int(8));
    case 6: return Array.from({ length: prng.int(4) }, () => oddValue(prng, depth + 1));
    default: return oddMap(prng, depth + 1);
  }
}

export function oddMap(prng: Prng, depth = 0, base: Record<string, unknown> = {}): Record<string, unknown> {
  const m: Record<string, unknown> = { ...base };
  for (let n = prng.int(5); n > 0; n--) {
    const hostile = !KNOWN_BUGS.hostileToString && prng.int(12) === 0;
    m[hostile ? HOSTILE_KEYS[prng.int(2)]! : KEYS[prng.int(KEYS.length)]!] = oddValue(prng, depth);
  }
  return m;
}

// ---------------------------------------------------------------- valid log entries

export const FUZZ_SCHEDULER_OPTIONS: SchedulerOptions = {
  shard: 3, queueMax: 10_000, retainedMax: 1_000, retainedMs: 60_000, dlqMax: 1_000,
  leaseMs: 400, workerTimeoutMs: 1_000, defaultTimeoutMs: 5_000, defaultMaxAttempts: 3, agingMs: 1_000,
};

/** `u8 type | f64 now | f64 subject | body`: one entry as EventLog.append writes it (without its length prefix). */
export function entry(type: number, now: number, subject: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const w = new ByteWriter(17 + body.length);
  w.u8(type);
  w.f64(now);
  w.f64(subject);
  w.raw(body);
  return w.toBytes();
}

/** Entries as a log batch stores them: `u32 bytes | entry` each. */
export function batchBytes(entries: readonly Uint8Array[]): Uint8Array {
  const w = new ByteWriter(64);
  for (const e of entries) {
    w.u32(e.length);
    w.raw(e);
  }
  return w.toBytes();
}

/** A shard's history so far: the scheduler every entry was applied to, and what the generator may refer to. */
export class History {
  readonly scheduler = new Scheduler(FUZZ_SCHEDULER_OPTIONS);
  readonly entries: Uint8Array[] = [];
  now = 1_000;
  private readonly taskIds: number[] = [];
  private readonly workers: number[] = [];
  private leases: Array<[number, number, number]> = [];
  private nextWorker = 1;
  private readonly reader = new Reader();

  constructor(private readonly prng: Prng) {}

  /** Appends `count` valid entries, applying each. */
  grow(count: number): this {
    for (let i = 0; i < count; i++) this.apply(this.next());
    return this;
  }

  /** Applies one entry as a backup would, then runs the core's full consistency check; throws what either throws. */
  apply(bytes: Uint8Array): void {
    const outcome = applyEntry(this.scheduler, this.reader.reset(bytes)) as SubmitOutcome | WorkflowOutcome | undefined;
    this.entries.push(bytes);
    if (outcome !== undefined && "taskId" in outcome && outcome.ok) this.taskIds.push(outcome.taskId);
    if (outcome !== undefined && "taskIds" in outcome && outcome.ok) this.taskIds.push(...outcome.taskIds);
    for (const [workerId, tasks] of this.scheduler.takeReady().assignments) for (const t of tasks) this.leases.push([workerId, t.id, t.attempt]);
    this.scheduler.checkInvariants();
  }

  /** Some task id this history knows, or a made-up one now and then. */
  taskId(): number {
    return this.taskIds.length === 0 || this.prng.int(8) === 0 ? 3 * 2 ** 40 + this.prng.int(1000) : this.taskIds[this.prng.int(this.taskIds.length)]!;
  }

  /** One valid entry that follows this history. */
  next(): Uint8Array {
    const p = this.prng;
    this.now += p.int(300);
    const now = this.now;
    const pickWorker = () => this.workers[p.int(this.workers.length)] ?? 1;
    switch (this.workers.length === 0 ? 0 : p.int(16)) {
      case 0: {
        const id = this.nextWorker++;
        this.workers.push(id);
        // Types: none announced (any type, the old entry), or a few, so some tasks wait for a worker that handles them.
        const types = [undefined, ["noop", "sleep"], ["日本語", "wf"], ["noop", "sleep", "日本語", "wf"]][p.int(4)];
        return entry(Ev.WORKER_JOINED, now, id, encodeWorkerJoined(1 + p.int(4), p.int(3) === 0 ? ["gpu"] : [], types));
      }
      case 1: case 2: case 3:
        return entry(Ev.SUBMIT, now, p.int(5), submitBody({
          requestId: p.int(2 ** 32), priority: p.int(256), flags: p.int(2) === 0 ? SUBMIT_FLAG_NOTIFY : 0, maxAttempts: p.int(4), timeoutMs: p.int(3000),
          type: ["noop", "sleep", "日本語"][p.int(3)]!, idempotencyKey: p.int(2) === 0 ? "" : `k${p.int(50)}`, payload: randomBytes(p, p.int(40)),
          extras: p.int(3) === 0 ? this.extras() : undefined,
        }));
      case 4: case 5:
        return entry(Ev.DISPATCH, now, 0);
      case 6:
        return entry(Ev.TICK, now, 0);
      case 7: case 8: {
        const lease = this.leases.splice(p.int(this.leases.length), 1)[0];
        if (lease === undefined) return entry(Ev.TICK, now, 0);
        const [workerId, taskId, attempt] = lease;
        return entry(Ev.RESULT, now, workerId, resultBody(taskId, attempt, p.int(4) !== 0, randomBytes(p, p.int(24))));
      }
      case 9:
        // Now and then a worker moves its credit (it serves other coordinators too), sometimes below what it runs.
        if (p.int(4) === 0) return entry(Ev.WORKER_CREDIT, now, pickWorker(), encodeWorkerCredit(p.int(5)));
        return entry(Ev.HEARTBEAT, now, pickWorker(), encodeRunning(this.leases.filter(() => p.int(2) === 0).map(([, id]) => id)));
      case 10:
        return entry(p.int(2) === 0 ? Ev.CANCEL : Ev.DLQ_REQUEUE, now, this.taskId());
      case 11: {
        const w = new ByteWriter(12);
        w.u32(p.int(1000));
        w.f64(this.taskId());
        return entry(Ev.WATCH, now, p.int(5), w.toBytes());
      }
      case 12:
        return entry(Ev.WORKFLOW, now, 0, encode(this.workflowNodes()));
      case 13: {
        const ids = Array.from({ length: p.int(3) }, () => this.taskId());
        const w = new ByteWriter(4 + ids.length * 8);
        w.u32(ids.length);
        for (const id of ids) w.f64(id);
        return entry(Ev.DLQ_PURGE, now, 0, w.toBytes());
      }
      case 14: {
        const id = this.workers.splice(p.int(this.workers.length), 1)[0]!;
        this.leases = this.leases.filter(([w]) => w !== id);
        return entry(Ev.WORKER_LEFT, now, id);
      }
      default:
        return p.int(2) === 0 ? entry(Ev.WORKER_DRAINING, now, pickWorker()) : entry(Ev.PROMOTE, now, 1 + p.int(5));
    }
  }

  private extras(): SubmitExtras {
    const p = this.prng;
    return {
      delayMs: p.int(2) === 0 ? 0 : p.int(2000), deadlineMs: p.int(2) === 0 ? 0 : p.int(5000),
      backoffType: p.int(3) as (typeof BackoffType)[keyof typeof BackoffType], backoffDelayMs: p.int(500), backoffMaxDelayMs: p.int(5000),
      tags: p.int(3) === 0 ? ["gpu"] : [], dependsOn: p.int(3) === 0 ? [this.taskId()] : [],
    };
  }

  /** A valid WORKFLOW (as the coordinator encodes it after its checks). */
  workflowNodes(): Array<Record<string, unknown>> {
    const p = this.prng;
    return Array.from({ length: 1 + p.int(4) }, (_, i) => ({
      type: "wf", payload: randomBytes(p, p.int(8)), priority: p.int(256),
      ...(p.int(3) === 0 ? { tags: ["gpu"], backoff: { type: "fixed", delayMs: 10 } } : {}),
      dependsOn: i > 0 && p.int(2) === 0 ? [{ node: p.int(i) }] : p.int(4) === 0 ? [{ taskId: this.taskId() }] : [],
    }));
  }
}
