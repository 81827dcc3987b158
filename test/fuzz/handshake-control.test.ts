// Bounded fuzzing of the HELLO and of every control message after it, through
// the real Coordinator and Router handlers: each case is one connection (a
// Connection on a fake socket, so thousands take a second), a HELLO that is
// valid, odd, random or mutated, then messages of every kind with odd msgpack
// values and mutated binary bodies. Checked after every case: nothing but a
// ProtocolError escaped a handler (no "internal error", no console.error),
// every ERROR carries a known code. Checked after all: the servers still serve
// a valid client, the coordinator's state still snapshots and restores, its
// ticks still run, the router never lost its link to the coordinator, and
// Object.prototype is untouched.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { encode } from "@msgpack/msgpack";
import { Logger } from "../../src/cli/log.ts";
import { Coordinator, type CoordinatorConfig } from "../../src/coordinator/coordinator.ts";
import { decodeSnapshot, encodeSnapshot } from "../../src/coordinator/replication-codec.ts";
import { Prng } from "../../src/core/prng.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { TokenTable } from "../../src/net/auth.ts";
import { Connection, DEFAULT_NET_LIMITS, type ConnectionHandler, type NetLimits } from "../../src/net/connection.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { forEachMessage, readAssign, readControl, readSubmit, readSubmitted, Reader } from "../../src/protocol/codec.ts";
import { isErrorCode } from "../../src/protocol/errors.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind, PROTOCOL_VERSION, SUBMIT_FLAG_NOTIFY, type ErrorMessage } from "../../src/protocol/messages.ts";
import { Router } from "../../src/router/router.ts";
import { resultBody, submitBody } from "../sim/replication-wire.ts";
import { concatBytes, randomBytes } from "../support/helpers.ts";
import { FUZZ_SCHEDULER_OPTIONS, firstDifference, hex, KNOWN_BUGS, mutateBytes, oddMap, oddValue } from "./fuzz-support.ts";
import { testCoordinatorConfig } from "../support/coordinator-config.ts";

const SEEDS = [1, 0xbad];
const CASES = 1_200;
/** Messages after the HELLO in one case. */
const MESSAGES_MAX = 6;
// Default batch-max: the router batches many clients' messages per frame to its coordinator (see the report on --frame-batch-max).
const LIMITS: NetLimits = { ...DEFAULT_NET_LIMITS, frameBytesMax: 1 << 20 };
const TICK_MS = 10;
const DEADLINE_MS = 5_000;

/** A connection on a fake socket: what the server writes is decoded at once. */
class FakePeer {
  readonly errors: ErrorMessage[] = [];
  readonly kinds: number[] = [];
  readonly assigned: Array<[number, number]> = [];
  readonly submitted: number[] = [];
  readonly stats: Array<Record<string, unknown>> = [];
  ended = false;
  readonly conn: Connection;
  private readonly decoder = new FrameDecoder(1 << 30);
  private readonly reader = new Reader();

  constructor(handler: ConnectionHandler) {
    const socket = { remoteAddress: "fuzz", write: (b: Uint8Array) => (this.read(b), b.length), end: () => void (this.ended = true) };
    this.conn = new Connection(socket as unknown as Socket<Connection | undefined>, handler, LIMITS);
  }

  send(bytes: Uint8Array): void {
    this.conn.receive(bytes);
    this.conn.flush();
  }

  close(): void {
    this.conn.closedBySocket();
  }

  private read(bytes: Uint8Array): void {
    this.decoder.push(bytes, (body) =>
      forEachMessage(body, this.reader, (kind, r) => {
        this.kinds.push(kind);
        if (kind === Kind.ERROR) this.errors.push(readControl<ErrorMessage>(r));
        else if (kind === Kind.ASSIGN) {
          const a = readAssign(r);
          this.assigned.push([a.taskId, a.attempt]);
        } else if (kind === Kind.SUBMITTED) this.submitted.push(readSubmitted(r).taskId);
        else if (kind === Kind.STATS) this.stats.push(readControl(r));
      }),
    );
  }
}

// ---------------------------------------------------------------- one case

function message(kind: number, body: Uint8Array): Uint8Array {
  const w = new ByteWriter(5 + body.length);
  w.u8(kind);
  w.u32(body.length);
  w.raw(body);
  return w.toBytes();
}

function frameOf(messages: readonly Uint8Array[]): Uint8Array {
  const body = concatBytes(messages);
  const w = new ByteWriter(4 + body.length);
  w.u32(body.length);
  w.raw(body);
  return w.toBytes();
}

let nextWorkerId = 1;

/** A HELLO body: valid (tame cases), or valid with odd fields, an odd map, mutated bytes, or not a map at all. */
function helloBody(prng: Prng, role: string, tame: boolean): Uint8Array {
  const valid = { role, version: PROTOCOL_VERSION, nodeId: "fuzz", slots: 1 + prng.int(4), workerId: nextWorkerId++, shard: FUZZ_SCHEDULER_OPTIONS.shard, tags: [] };
  if (tame) return encode(valid);
  switch (prng.int(6)) {
    case 0: return encode(oddMap(prng));
    case 1: return mutateBytes(encode(valid), prng);
    case 2: return encode(oddValue(prng));
    default: return encode(oddMap(prng, 1, valid));
  }
}

/** A message a well-behaved peer of this role sends: the path deep into the handlers. */
function validMessage(prng: Prng, peer: FakePeer, role: string, taskId: () => number): Uint8Array {
  const requestId = prng.int(1000);
  if (role === "worker") {
    const lease = peer.assigned[prng.int(peer.assigned.length)];
    if (lease !== undefined && prng.int(2) === 0) return message(Kind.RESULT, resultBody(lease[0], lease[1], prng.int(4) !== 0, randomBytes(prng, prng.int(12))));
    if (prng.int(2) === 0) return message(Kind.PROGRESS, encode({ taskId: lease?.[0] ?? taskId(), attempt: lease?.[1] ?? 1, progress: prng.next() }));
    return message(Kind.HEARTBEAT, encode({ running: peer.assigned.length, done: 0, failed: 0, taskIds: peer.assigned.map(([id]) => id) }));
  }
  switch (prng.int(8)) {
    case 0: case 1: case 2:
      // Without notify half the time: only those get a SUBMITTED (a notify submitter hears TASK_DONE alone).
      return message(Kind.SUBMIT, submitBody({ requestId, flags: prng.int(2) === 0 ? SUBMIT_FLAG_NOTIFY : 0, idempotencyKey: prng.int(2) === 0 ? "" : `k${prng.int(30)}`, payload: randomBytes(prng, prng.int(16)), type: "noop" }));
    case 3:
      return message([Kind.TASK_QUERY, Kind.CANCEL, Kind.WATCH, Kind.DLQ_REQUEUE][prng.int(4)]!, encode({ requestId, taskId: taskId() }));
    case 4:
      return message(Kind.WORKFLOW, encode({ requestId, nodes: [{ type: "noop" }, { type: "noop", dependsOn: [{ node: 0 }, { taskId: taskId() }] }] }));
    case 5:
      return message(Kind.DLQ_LIST, encode({ requestId, offset: prng.int(3), limit: 1 + prng.int(10) }));
    case 6:
      return message(Kind.DLQ_PURGE, encode({ requestId, taskIds: [taskId()] }));
    default:
      return message(Kind.STATS_REQUEST, encode({ requestId }));
  }
}

const CONTROL_KINDS = [Kind.ERROR, Kind.HEARTBEAT, Kind.STATS_REQUEST, Kind.TASK_QUERY, Kind.CANCEL, Kind.WATCH, Kind.WORKFLOW, Kind.DLQ_LIST, Kind.DLQ_REQUEUE, Kind.DLQ_PURGE, Kind.PROGRESS, Kind.DRAIN, Kind.REPL_SYNC, Kind.HANDOVER];

/** One message after the HELLO: any kind, with a body that is valid, odd or damaged. */
function anyMessage(prng: Prng, peer: FakePeer, taskIds: readonly number[], toRouter: boolean, role: string, tame: boolean): Uint8Array {
  const taskId = () => (taskIds.length > 0 && prng.int(3) !== 0 ? taskIds[prng.int(taskIds.length)]! : tame ? prng.int(100) : (oddValue(prng) as number));
  if (tame && prng.int(8) !== 0) return validMessage(prng, peer, role, taskId);
  switch (prng.int(10)) {
    case 0: case 1: { // SUBMIT: valid, mutated or random
      const valid = submitBody({ requestId: prng.int(1000), idempotencyKey: prng.int(2) === 0 ? "" : `k${prng.int(30)}`, payload: randomBytes(prng, prng.int(16)), type: "noop" });
      let body = [valid, mutateBytes(valid, prng), randomBytes(prng, prng.int(40))][prng.int(3)]!;
      if (KNOWN_BUGS.shortSubmit && body.length < 4) body = valid;
      if (KNOWN_BUGS.routerForwardsMalformedSubmit && toRouter && !parses(body)) body = valid;
      return message(Kind.SUBMIT, body);
    }
    case 2: { // RESULT for something this peer was assigned, maybe damaged
      const lease = peer.assigned[prng.int(peer.assigned.length)];
      const id = lease?.[0] ?? taskId();
      // A binary field holds a number: an odd (map) task id becomes NaN, as the wire would carry it.
      const valid = resultBody(typeof id === "number" ? id : NaN, lease?.[1] ?? 1, prng.int(3) !== 0, randomBytes(prng, prng.int(12)));
      return message(Kind.RESULT, prng.int(3) === 0 ? mutateBytes(valid, prng) : valid);
    }
    case 3: // a binary kind with random bytes
      return message([Kind.REPL_ACK, Kind.REPL_APPEND, Kind.REPL_SNAPSHOT, Kind.ASSIGN, Kind.SUBMITTED][prng.int(5)]!, randomBytes(prng, prng.int(24)));
    case 4: // a control kind with a body that is not msgpack, or not a map
      return message(CONTROL_KINDS[prng.int(CONTROL_KINDS.length)]!, prng.int(2) === 0 ? randomBytes(prng, prng.int(12)) : encode(oddValue(prng)));
    default: { // a control kind with a map of odd values around real ids
      const kind = CONTROL_KINDS[prng.int(CONTROL_KINDS.length)]!;
      const base: Record<string, unknown> = { requestId: prng.int(100), taskId: taskId() };
      if (kind === Kind.WORKFLOW) base.nodes = Array.from({ length: prng.int(4) }, () => oddMap(prng, 1, { type: prng.int(4) === 0 ? oddValue(prng) : "noop", dependsOn: prng.int(2) === 0 ? [{ node: 0 }] : [{ taskId: taskId() }] }));
      if (kind === Kind.DLQ_PURGE) base.taskIds = Array.from({ length: prng.int(3) }, taskId);
      return message(kind, encode(oddMap(prng, 0, base)));
    }
  }
}

function parses(submit: Uint8Array): boolean {
  try {
    readSubmit(new Reader().reset(submit));
    return true;
  } catch {
    return false;
  }
}

/** Errors handlers let escape: Connection logs each with console.error (and answers "internal error"). */
const escaped: unknown[] = [];
const consoleError = console.error;

interface Target {
  handler: ConnectionHandler;
  /** Roles a HELLO names; the first `tameRoles` are the ones this server accepts. */
  roles: readonly string[];
  tameRoles: number;
  toRouter: boolean;
}

/** How deep the cases got: a fuzzer that never gets past the HELLO checks nothing after it. */
interface Reach {
  welcomed: number;
  refused: number;
  submitted: number;
  assigned: number;
  requestErrors: number;
}

const newReach = (): Reach => ({ welcomed: 0, refused: 0, submitted: 0, assigned: 0, requestErrors: 0 });

/** Runs one connection's case; throws naming it if a handler let a non-ProtocolError escape. */
function runCase(prng: Prng, target: Target, taskIds: number[], where: string, reach: Reach): void {
  const peer = new FakePeer(target.handler);
  // Tame cases: a valid HELLO of a role this server takes, then mostly valid messages, so the damage comes deep in.
  const tame = prng.int(2) === 0;
  const role = tame ? target.roles[prng.int(target.tameRoles)]! : target.roles[prng.int(target.roles.length)]!;
  const sent: Uint8Array[] = [frameOf([message(Kind.HELLO, helloBody(prng, role, tame))])];
  const before = escaped.length;
  peer.send(sent[0]!);
  for (let n = prng.int(MESSAGES_MAX + 1); n > 0 && !peer.ended; n--) {
    const batch = Array.from({ length: 1 + prng.int(3) }, () => anyMessage(prng, peer, taskIds, target.toRouter, role, tame));
    const bytes = frameOf(batch);
    sent.push(bytes);
    // Now and then a byte at a time, as a slow network delivers it.
    if (prng.int(8) === 0) for (let i = 0; i < bytes.length && !peer.ended; i++) peer.send(bytes.subarray(i, i + 1));
    else peer.send(bytes);
  }
  if (peer.kinds[0] === Kind.WELCOME) reach.welcomed++;
  if (peer.ended) reach.refused++;
  reach.submitted += peer.submitted.length;
  reach.assigned += peer.assigned.length;
  reach.requestErrors += peer.errors.filter((e) => e.requestId !== 0).length;
  taskIds.push(...peer.submitted);
  if (taskIds.length > 200) taskIds.splice(0, taskIds.length - 200);
  peer.close();
  const internal = peer.errors.find((e) => /internal error/i.test(String(e.message)) || !isErrorCode(e.code));
  if (escaped.length > before || internal !== undefined) {
    throw new Error(`${where}: ${internal ? JSON.stringify(internal) : String(escaped.at(-1))}; sent ${sent.map((b) => hex(b, 200)).join(" | ")}`, { cause: escaped.at(-1) });
  }
}

// ---------------------------------------------------------------- the servers

const quiet = new Logger("fuzz", "error", () => {});
const routerLog: string[] = [];
let coordinator: Coordinator;
let router: Router;

const coordinatorConfig: CoordinatorConfig = testCoordinatorConfig({
  nodeId: "fuzz-coordinator", limits: LIMITS, tickMs: TICK_MS,
  // A fake peer that says it is a coordinator and asks for a snapshot is a backup until it closes; 0: no grace after it (commits would stall).
  backupTimeoutMs: 0,
});

/** Polls `check` every few ms until true, up to the deadline (an event on another socket, not a sleep). */
async function until(what: string, check: () => boolean): Promise<void> {
  const end = performance.now() + DEADLINE_MS;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

beforeAll(async () => {
  console.error = (...args: unknown[]) => void escaped.push(args[0]);
  coordinator = new Coordinator(coordinatorConfig, quiet);
  coordinator.start();
  router = new Router({
    host: "127.0.0.1", port: 0, nodeId: "fuzz-router", coordinators: [{ host: "127.0.0.1", port: coordinator.port }], limits: LIMITS, tokens: TokenTable.OPEN, tls: {},
    reconnectMinMs: 20, reconnectMaxMs: 200, statsTimeoutMs: 1_000, crossShardPollMs: 100,
  }, new Logger("router", "warn", (line) => void routerLog.push(line)));
  router.start();
  // The router is ready once a client's stats come back with the coordinator reachable.
  const probe = new FakePeer(router);
  probe.send(frameOf([message(Kind.HELLO, encode({ role: "client", version: PROTOCOL_VERSION, nodeId: "probe" }))]));
  await until("the router's link to the coordinator", () => {
    const last = probe.stats.at(-1) as { coordinators?: Array<{ reachable: boolean }> } | undefined;
    if (last?.coordinators?.[0]?.reachable === true) return true;
    if (probe.stats.length === probe.kinds.filter((k) => k === Kind.STATS).length) probe.send(frameOf([message(Kind.STATS_REQUEST, encode({ requestId: 1 }))]));
    return false;
  });
  probe.close();
});

afterAll(() => {
  router?.stop();
  coordinator?.stop();
  console.error = consoleError;
});

/** The core's full consistency check on the coordinator's scheduler, after each case (and the ticks between). */
function checkScheduler(where: string): void {
  try {
    coordinator.scheduler.checkInvariants();
  } catch (err) {
    throw new Error(`${where}: the coordinator's scheduler fails its consistency check: ${(err as Error).message}`, { cause: err });
  }
}

/** A valid client is still served: WELCOME, then STATS for a STATS_REQUEST. */
async function stillServes(handler: ConnectionHandler): Promise<void> {
  const peer = new FakePeer(handler);
  peer.send(frameOf([message(Kind.HELLO, encode({ role: "client", version: PROTOCOL_VERSION, nodeId: "after" }))]));
  peer.send(frameOf([message(Kind.STATS_REQUEST, encode({ requestId: 1 }))]));
  await until("STATS", () => peer.kinds.includes(Kind.STATS));
  expect(peer.kinds[0]).toBe(Kind.WELCOME);
  expect(peer.errors).toEqual([]);
  peer.close();
}

describe("HELLO and control messages, in-process", () => {
  for (const seed of SEEDS) {
    test(`coordinator: only ProtocolError escapes, every ERROR has a known code (seed=${seed})`, async () => {
      const prng = new Prng(seed);
      const target = { handler: coordinator, roles: ["client", "worker", "top", "router", "coordinator"], tameRoles: 4, toRouter: false };
      const taskIds: number[] = [];
      const reach = newReach();
      for (let i = 0; i < CASES; i++) {
        runCase(prng, target, taskIds, `seed=${seed} case=${i}`, reach);
        checkScheduler(`seed=${seed} case=${i}`);
        // Let the coordinator's tick run now and then, on whatever state the cases left.
        if (i % 200 === 199) await Bun.sleep(TICK_MS * 2);
      }
      await stillServes(coordinator);
      for (const [what, n] of Object.entries(reach)) expect({ what, reached: n > 20 }).toEqual({ what, reached: true });
    });

    test(`router: only ProtocolError escapes, and no client message costs the router its coordinator link (seed=${seed})`, async () => {
      const prng = new Prng(seed);
      const target = { handler: router, roles: ["client", "top", "worker", "coordinator"], tameRoles: 2, toRouter: true };
      const taskIds: number[] = [];
      const reach = newReach();
      for (let i = 0; i < CASES; i++) {
        runCase(prng, target, taskIds, `seed=${seed} case=${i}`, reach);
        if (i % 200 === 199) await Bun.sleep(TICK_MS * 2);
      }
      // Through the router, SUBMITTED comes back later (after the coordinator): the case is over by then.
      expect([reach.welcomed > 20, reach.refused > 20, reach.requestErrors > 20]).toEqual([true, true, true]);
      // STATS goes through the link after everything forwarded before it: once it is back, the coordinator has read all of it.
      await stillServes(router);
      expect(routerLog.filter((l) => /refused the link|link down/.test(l))).toEqual([]);
    });
  }

  test("after the fuzzing: the coordinator's state snapshots and restores, its ticks run, Object.prototype is untouched", async () => {
    const before = coordinator.scheduler.exportState();
    const body = new ByteWriter(1024, 1 << 30);
    body.u32(1);
    body.f64(1);
    body.raw(encodeSnapshot(before));
    const restored = Scheduler.fromState(coordinatorConfig.scheduler, decodeSnapshot(new Reader().reset(body.toBytes())).state);
    expect(firstDifference(before, restored.exportState())).toBeUndefined();
    // Its tick timer still runs. (Counted at the tick's first question: an idle primary logs no
    // TICK entry, and since issue 15 no DISPATCH that changes nothing, so its log index stays put.)
    const scheduler = coordinator.scheduler;
    const tickWouldChange = scheduler.tickWouldChange.bind(scheduler);
    let ticks = 0;
    scheduler.tickWouldChange = (now) => {
      ticks++;
      return tickWouldChange(now);
    };
    await until("three more ticks", () => ticks >= 3);
    scheduler.tickWouldChange = tickWouldChange;
    checkScheduler("after the ticks");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(escaped).toEqual([]);
  });
});

// ---------------------------------------------------------------- the bugs this suite found (KNOWN_BUGS)

/** One connection: a client HELLO (or `hello`), then `messages` in one frame; resolves with the peer once the server has answered. */
function oneConnection(handler: ConnectionHandler, messages: Uint8Array[], hello: Record<string, unknown> = { role: "client", version: PROTOCOL_VERSION, nodeId: "repro" }): FakePeer {
  const peer = new FakePeer(handler);
  peer.send(frameOf([message(Kind.HELLO, encode(hello))]));
  if (messages.length > 0) peer.send(frameOf(messages));
  peer.close();
  return peer;
}

describe("bugs these fuzzers found, fixed (their KNOWN_BUGS switches are off, so the fuzzers generate these inputs too)", () => {
  test("KNOWN_BUGS.hostileToString: a worker HELLO whose tag is a map with a toString key is a clear E_BAD_FRAME, not an internal error", () => {
    const worker = { role: "worker", version: PROTOCOL_VERSION, nodeId: "w", slots: 1, workerId: 999_001, tags: [{ toString: 1 }] };
    // Refused at decode, before any handler converts it: a clear E_BAD_FRAME naming the key.
    const errors = oneConnection(coordinator, [], worker).errors;
    expect(errors.map((e) => e.code)).toEqual(["E_BAD_FRAME"]);
    expect(errors[0]!.message).toContain('key "toString" is not allowed');
  });

  test("KNOWN_BUGS.hostileToString: a HELLO whose version is a map with a toString key is a clear E_BAD_FRAME at the router", () => {
    const errors = oneConnection(router, [], { role: "client", version: { toString: 1 }, nodeId: "r" }).errors;
    expect(errors.map((e) => e.code)).toEqual(["E_BAD_FRAME"]);
    expect(errors[0]!.message).toContain('key "toString" is not allowed');
  });

  test("KNOWN_BUGS.shortSubmit: a 2-byte SUBMIT is E_BAD_FRAME, not an internal error (RangeError)", () => {
    const peer = oneConnection(coordinator, [message(Kind.SUBMIT, Uint8Array.from([1, 2]))]);
    expect(peer.errors.map((e) => [e.code, /internal error/.test(e.message)])).toEqual([["E_BAD_FRAME", false]]);
  });

  test("KNOWN_BUGS.routerForwardsMalformedSubmit: a SUBMIT whose payload length lies does not cost the router its coordinator link", async () => {
    const before = routerLog.length;
    // type "noop" and an empty key are in bounds (all the router checks); the payload says 65535 bytes and has none.
    const lying = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 110, 111, 111, 112, 0, 0xff, 0xff, 0, 0]);
    oneConnection(router, [message(Kind.SUBMIT, lying)]);
    await stillServes(router); // its STATS fan-out follows the SUBMIT on the link
    expect(routerLog.slice(before).filter((l) => /refused the link|link down/.test(l))).toEqual([]);
  });
});
