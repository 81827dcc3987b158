// Hostile peers on every server port while a real workload runs through the
// router: garbage, torn and oversized frames, bad HELLOs, unknown kinds,
// slow-loris handshakes, and malformed HTTP. Each hostile connection must be
// closed by the server (with the right ERROR code where one is sent), the
// servers must stay up and bounded in memory, and the workload must finish
// with every task completed. Then --connections-max: the (N+1)th connection is
// refused, and one is admitted again after another closes.

import { afterEach, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { Prng } from "../../src/core/prng.ts";
import { Kind, KIND_NAMES, PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { SchedulerClient, type TaskError } from "../../src/sdk/client.ts";
import { randomBytes } from "../support/helpers.ts";
import { Cluster, freePort, parseReport, waitFor, type Started } from "./harness.ts";
import { concat, controlMessage, frame, helloFrame, message, RawPeer } from "./raw-peer.ts";

const HANDSHAKE_TIMEOUT_MS = 500;
/** Long enough for the client that idles past the handshake time-out on purpose (3 x HANDSHAKE_TIMEOUT_MS) to stay. */
const CLIENT_IDLE_TIMEOUT_MS = 3_000;
const FRAME_BYTES_MAX = 1 << 20;
/** A hostile TCP connection must be closed by the server within this (handshake timeout plus scheduling slack). */
const CLOSE_DEADLINE_MS = 5_000;
/** A stalled HTTP request is closed by --client-idle-timeout-ms, as a stalled frame is on a framed port. */
const HTTP_STALL_CLOSE_DEADLINE_MS = CLIENT_IDLE_TIMEOUT_MS + CLOSE_DEADLINE_MS;
const GARBAGE_CONNECTIONS = 30;
const SLOW_LORIS_CONNECTIONS = 40;
const SLOW_HTTP_CONNECTIONS = 10;
const DRIBBLE_INTERVAL_MS = 100;
const UNKNOWN_KIND_MESSAGES = 200;
const WORKLOAD_TASKS = 20_000;
/** The workload reruns until the attacks are over, at most this many times. */
const WORKLOAD_RUNS_MAX = 30;
const RSS_GROWTH_BYTES_MAX = 200 * 1024 * 1024;
const SEED = Number(process.env.HOSTILE_SEED ?? 0x5eed);

const ANY_REFUSAL = ["E_TOO_LARGE", "E_BAD_FRAME", "E_BAD_HELLO", "E_BAD_VERSION", "E_HANDSHAKE_TIMEOUT"];
const UNKNOWN_KINDS = Array.from({ length: 256 }, (_, k) => k).filter((k) => KIND_NAMES[k] === undefined);

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

interface Check {
  name: string;
  run: () => Promise<void>;
}

/** Waits for the server to close `peer`, then checks it sent exactly one connection-level ERROR with one of `codes`. */
async function expectClosedWith(peer: RawPeer, codes: readonly string[], deadlineMs = CLOSE_DEADLINE_MS): Promise<void> {
  if (!(await peer.waitClosed(deadlineMs))) {
    peer.end();
    throw new Error(`still open after ${deadlineMs} ms (server sent kinds [${peer.kinds}])`);
  }
  if (peer.garbled !== undefined) throw new Error(`the server's reply did not decode: ${peer.garbled}`);
  const e = peer.errors;
  if (e.length !== 1 || !codes.includes(e[0]!.code) || e[0]!.requestId !== 0 || /internal error/i.test(e[0]!.message)) {
    throw new Error(`expected one ERROR ${codes.join("|")} (request 0), got ${JSON.stringify(e)}; kinds [${peer.kinds}]`);
  }
}

async function refusedWith(port: number, bytes: Uint8Array, codes: readonly string[]): Promise<RawPeer> {
  const peer = await RawPeer.open(port);
  peer.send(bytes);
  await expectClosedWith(peer, codes);
  return peer;
}

/** A frame of `count` messages of kinds no process knows, with random bodies. */
function unknownKinds(prng: Prng, count: number): Uint8Array {
  return concat(Array.from({ length: count }, () => message(UNKNOWN_KINDS[prng.int(UNKNOWN_KINDS.length)]!, randomBytes(prng, prng.int(16)))));
}

/** Everything thrown at a framed port (coordinator or router). */
function framedAttacks(port: number, prng: Prng, extra: Check[]): Check[] {
  const lengthPrefix = (n: number, tail: Uint8Array = new Uint8Array(0)) => frame(tail, n);
  const checks: Check[] = [
    ...Array.from({ length: GARBAGE_CONNECTIONS }, (_, i): Check => {
      const bytes = randomBytes(prng, 1 + prng.int(512));
      return { name: `random garbage #${i}`, run: async () => void (await refusedWith(port, bytes, ANY_REFUSAL)) };
    }),
    { name: "length prefix 0xFFFFFFFF", run: async () => void (await refusedWith(port, lengthPrefix(0xffffffff, randomBytes(prng, 64)), ["E_TOO_LARGE"])) },
    { name: "length prefix one over --frame-bytes-max", run: async () => void (await refusedWith(port, lengthPrefix(FRAME_BYTES_MAX + 1), ["E_TOO_LARGE"])) },
    {
      name: "truncated frame, then the peer closes",
      run: async () => {
        const peer = await RawPeer.open(port);
        peer.send(lengthPrefix(100, randomBytes(prng, 10)));
        peer.end();
        if (!(await peer.waitClosed(CLOSE_DEADLINE_MS))) throw new Error("our own close never completed");
      },
    },
    { name: "truncated frame, then silence", run: async () => void (await refusedWith(port, lengthPrefix(FRAME_BYTES_MAX, randomBytes(prng, 1000)), ["E_HANDSHAKE_TIMEOUT"])) },
    { name: "message length overruns its frame", run: async () => void (await refusedWith(port, frame(message(Kind.HELLO, encode({ role: "client" }), 200)), ["E_BAD_FRAME"])) },
    { name: "message length 0xFFFFFFFF", run: async () => void (await refusedWith(port, frame(message(Kind.HELLO, randomBytes(prng, 8), 0xffffffff)), ["E_BAD_FRAME"])) },
    { name: "frame ends inside a message header", run: async () => void (await refusedWith(port, frame(Uint8Array.from([1, 2, 3])), ["E_BAD_FRAME"])) },
    { name: "first message is not HELLO", run: async () => void (await refusedWith(port, frame(message(Kind.SUBMIT, randomBytes(prng, 24))), ["E_BAD_HELLO"])) },
    { name: "HELLO with a newer protocol version", run: async () => void (await refusedWith(port, helloFrame({ version: PROTOCOL_VERSION + 1 }), ["E_BAD_VERSION"])) },
    { name: "HELLO with version 0", run: async () => void (await refusedWith(port, helloFrame({ version: 0 }), ["E_BAD_VERSION"])) },
    { name: "HELLO with the version as a string", run: async () => void (await refusedWith(port, helloFrame({ version: String(PROTOCOL_VERSION) }), ["E_BAD_VERSION"])) },
    { name: "HELLO with a bogus role", run: async () => void (await refusedWith(port, helloFrame({ role: "emperor" }), ["E_BAD_HELLO"])) },
    { name: "HELLO with role __proto__", run: async () => void (await refusedWith(port, helloFrame({ role: "__proto__" }), ["E_BAD_HELLO"])) },
    { name: "HELLO with a numeric role", run: async () => void (await refusedWith(port, helloFrame({ role: 7 }), ["E_BAD_HELLO"])) },
    { name: "HELLO body is a msgpack array", run: async () => void (await refusedWith(port, frame(message(Kind.HELLO, encode([1, "client", 1]))), ["E_BAD_FRAME"])) },
    { name: "HELLO body is not msgpack", run: async () => void (await refusedWith(port, frame(message(Kind.HELLO, Uint8Array.from([0xc1, 0xc1]))), ["E_BAD_FRAME"])) },
    { name: "HELLO body declares a 4-billion-entry map", run: async () => void (await refusedWith(port, frame(message(Kind.HELLO, Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]))), ["E_BAD_FRAME"])) },
    {
      name: "HELLO then unknown kinds in the same frame",
      run: async () => {
        const peer = await refusedWith(port, frame(concat([message(Kind.HELLO, encode({ role: "client", version: PROTOCOL_VERSION, nodeId: "h" })), unknownKinds(prng, UNKNOWN_KIND_MESSAGES)])), ["E_BAD_FRAME"]);
        if (peer.kinds[0] !== Kind.WELCOME) throw new Error(`expected WELCOME before the ERROR, got kinds [${peer.kinds}]`);
      },
    },
    {
      name: "HELLO then a frame of unknown kinds",
      run: async () => {
        const peer = await RawPeer.open(port);
        peer.send(helloFrame());
        if (!(await peer.waitKind(Kind.WELCOME, CLOSE_DEADLINE_MS))) throw new Error(`no WELCOME: kinds [${peer.kinds}]`);
        peer.send(frame(unknownKinds(prng, UNKNOWN_KIND_MESSAGES)));
        await expectClosedWith(peer, ["E_BAD_FRAME"]);
      },
    },
    {
      name: "HELLO then a torn frame and silence past the handshake timeout (a client, not a hostile: stays open)",
      run: async () => {
        const peer = await RawPeer.open(port);
        peer.send(helloFrame());
        if (!(await peer.waitKind(Kind.WELCOME, CLOSE_DEADLINE_MS))) throw new Error(`no WELCOME: kinds [${peer.kinds}]`);
        if (await peer.waitClosed(HANDSHAKE_TIMEOUT_MS * 3)) throw new Error(`closed after a valid HELLO: ${JSON.stringify(peer.errors)}`);
        peer.send(frame(controlMessage(Kind.STATS_REQUEST, { requestId: 1 })));
        if (!(await peer.waitKind(Kind.STATS, CLOSE_DEADLINE_MS))) throw new Error(`no STATS after idling: kinds [${peer.kinds}]`);
        peer.end();
      },
    },
    ...Array.from({ length: SLOW_LORIS_CONNECTIONS }, (_, i): Check => ({
      name: `slow loris #${i}: a valid HELLO, one byte every ${DRIBBLE_INTERVAL_MS} ms`,
      run: async () => {
        const peer = await RawPeer.open(port);
        const sent = peer.dribble(helloFrame({ nodeId: `loris-${i}-${"x".repeat(40)}` }), DRIBBLE_INTERVAL_MS);
        await expectClosedWith(peer, ["E_HANDSHAKE_TIMEOUT"]);
        await sent;
        if (peer.closedAfterMs! < HANDSHAKE_TIMEOUT_MS - 100) throw new Error(`closed after ${peer.closedAfterMs} ms, before the handshake timeout`);
      },
    })),
    ...extra,
  ];
  return checks;
}

/** Sends raw text to an HTTP port; checks the server closes it within `deadlineMs` and, if given, the status line. */
async function httpRaw(port: number, request: string | Uint8Array, status: RegExp | undefined, deadlineMs = CLOSE_DEADLINE_MS, dribble = false): Promise<void> {
  const peer = await RawPeer.open(port);
  const bytes = typeof request === "string" ? new TextEncoder().encode(request) : request;
  const sending = dribble ? peer.dribble(bytes, DRIBBLE_INTERVAL_MS) : Promise.resolve(peer.send(bytes));
  const closed = await peer.waitClosed(deadlineMs);
  peer.end();
  await sending;
  if (!closed) throw new Error(`still open after ${deadlineMs} ms; got ${JSON.stringify(peer.text.slice(0, 120))}`);
  if (status !== undefined && !status.test(peer.text)) throw new Error(`expected ${status}, got ${JSON.stringify(peer.text.slice(0, 200))}`);
}

function httpAttacks(port: number, prng: Prng, api: boolean): Check[] {
  const base = `http://127.0.0.1:${port}`;
  const badJson = async (body: string) => {
    const r = await fetch(`${base}/v1/tasks`, { method: "POST", body, headers: { "content-type": "application/json" } });
    const reply = (await r.json()) as { error?: { code?: string } };
    if (r.status !== 400 || reply.error?.code !== "E_BAD_REQUEST") throw new Error(`expected 400 E_BAD_REQUEST, got ${r.status} ${JSON.stringify(reply)}`);
  };
  const checks: Check[] = [
    { name: "binary garbage", run: () => httpRaw(port, concat([Uint8Array.from([0, 1, 0xff]), randomBytes(prng, 200), new TextEncoder().encode("\r\n\r\n")]), /^HTTP\/1\.1 4\d\d/) },
    { name: "garbage request line", run: () => httpRaw(port, "GARBAGE / HTTP/9.9\r\n\r\n", /^HTTP\/1\.1 [45]\d\d/) },
    { name: "request line without a version", run: () => httpRaw(port, "GET /healthz\r\n\r\n", /^HTTP\/1\.1 [45]\d\d/) },
    { name: "huge Content-Length, no body", run: () => httpRaw(port, "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", /^HTTP\/1\.1 413/) },
    { name: "negative Content-Length", run: () => httpRaw(port, "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", /^HTTP\/1\.1 4\d\d/) },
    { name: "headers over the size limit", run: () => httpRaw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(200_000)}\r\n\r\n`, /^HTTP\/1\.1 431/) },
    { name: "Content-Length under the limit and no body (stalls until --client-idle-timeout-ms)", run: () => httpRaw(port, "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{", undefined, HTTP_STALL_CLOSE_DEADLINE_MS) },
    ...Array.from({ length: SLOW_HTTP_CONNECTIONS }, (_, i): Check => ({
      name: `slow headers #${i}, one byte every ${DRIBBLE_INTERVAL_MS} ms`,
      run: () => httpRaw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${"s".repeat(400)}\r\n\r\n`, undefined, HTTP_STALL_CLOSE_DEADLINE_MS, true),
    })),
  ];
  if (api) {
    checks.push(
      { name: "malformed JSON", run: () => badJson("{\"type\": \"noop\",") },
      { name: "JSON null", run: () => badJson("null") },
      { name: "JSON of the wrong shape", run: () => badJson("{\"type\": 5, \"payload\": [1,2]}") },
      { name: "an empty batch", run: () => badJson("[]") },
      { name: "JSON nested 100000 deep", run: () => badJson("[".repeat(100_000)) },
      { name: "invalid UTF-8 in JSON", run: () => badJson(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString("latin1")) },
    );
  }
  return checks;
}

/** Runs every check at once; resolves with the failures, each named. */
async function runAll(label: string, checks: Check[]): Promise<string[]> {
  const settled = await Promise.allSettled(checks.map((c) => c.run()));
  return settled.flatMap((s, i) => (s.status === "rejected" ? [`${label} / ${checks[i]!.name}: ${(s.reason as Error).message ?? s.reason}`] : []));
}

function rssBytes(s: Started): number {
  const status = readFileSync(`/proc/${s.proc.pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${s.proc.pid}`);
  return Number(m[1]) * 1024;
}

async function healthy(port: number): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return r.ok && ((await r.json()) as { status?: string }).status === "ok";
}

test(`hostile bytes on every port do not disturb a running workload (seed=${SEED})`, async () => {
  cluster = new Cluster();
  const timeouts = ["--handshake-timeout-ms", String(HANDSHAKE_TIMEOUT_MS), "--client-idle-timeout-ms", String(CLIENT_IDLE_TIMEOUT_MS)];
  const limits = [...timeouts, "--frame-bytes-max", String(FRAME_BYTES_MAX)];
  const coordinatorMetrics = freePort();
  const coordinator = await cluster.coordinator([...limits, "--metrics-port", String(coordinatorMetrics), "--retained-max", String(WORKLOAD_TASKS)]);
  const workerMetrics = freePort();
  const worker = cluster.worker([coordinator.port], ["-w", "2", "--metrics-port", String(workerMetrics), ...timeouts]);
  const httpPort = freePort();
  const router = await cluster.router([coordinator.port], [...limits, "--http-port", String(httpPort)]);
  await cluster.workersJoined(router.port, 1);
  await waitFor("the HTTP ports", async () => ((await healthy(httpPort)) && (await healthy(coordinatorMetrics)) && (await healthy(workerMetrics)) ? true : undefined));
  const servers = { coordinator, worker, router };

  // A first run settles each process's steady-state memory (retention fills up to --retained-max).
  const workload = ["-p", String(router.port), "-n", String(WORKLOAD_TASKS), "-c", "64", "--json"];
  const warmup = parseReport(await cluster.client(workload, 60_000));
  expect(warmup.completed).toBe(WORKLOAD_TASKS);
  const rssBefore = Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, rssBytes(s)]));

  const prng = new Prng(SEED);
  const started = performance.now();
  let attacking = true;
  const attacks = Promise.all([
    runAll("coordinator tcp", framedAttacks(coordinator.port, prng, [
      { name: "worker HELLO with absurd slots", run: async () => void (await refusedWith(coordinator.port, helloFrame({ role: "worker", slots: 1e12, workerId: 9_999_001 }), ["E_BAD_HELLO"])) },
      { name: "worker HELLO without a workerId", run: async () => void (await refusedWith(coordinator.port, helloFrame({ role: "worker", slots: 4 }), ["E_BAD_HELLO"])) },
      { name: "coordinator HELLO of another shard", run: async () => void (await refusedWith(coordinator.port, helloFrame({ role: "coordinator", shard: 77 }), ["E_BAD_HELLO"])) },
    ])),
    runAll("router tcp", framedAttacks(router.port, prng, [
      { name: "worker HELLO to a router", run: async () => void (await refusedWith(router.port, helloFrame({ role: "worker", slots: 4, workerId: 9_999_002 }), ["E_BAD_HELLO"])) },
    ])),
    runAll("router http", httpAttacks(httpPort, prng, true)),
    runAll("coordinator metrics http", httpAttacks(coordinatorMetrics, prng, false)),
  ]).finally(() => (attacking = false));

  const runs: Record<string, any>[] = [];
  do runs.push(parseReport(await cluster.client(workload, 60_000)));
  while (attacking && runs.length < WORKLOAD_RUNS_MAX);
  const failures = (await attacks).flat();
  const attackMs = Math.round(performance.now() - started);
  expect(failures).toEqual([]);

  for (const [name, s] of Object.entries(servers)) expect(s.proc.exitCode, `${name} exited:\n${s.output()}`).toBeNull();
  for (const port of [httpPort, coordinatorMetrics, workerMetrics]) expect(await healthy(port)).toBe(true);
  for (const run of runs) {
    expect(run.completed).toBe(WORKLOAD_TASKS);
    expect(run.failed).toBe(0);
  }
  const stats = (await cluster.stats(router.port)).coordinators[0]!.stats!;
  expect(stats.failed).toBe(0);
  expect(stats.completed).toBe(WORKLOAD_TASKS * (runs.length + 1));
  // The slow-loris connections are gone: only the router's own and the worker's are left.
  expect(stats.workers).toHaveLength(1);

  const growth = Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, rssBytes(s) - rssBefore[name]!]));
  console.log(`hostile: ${runs.length} workload runs during ${attackMs} ms of attacks; RSS growth (MB): ${Object.entries(growth).map(([n, b]) => `${n} ${(b / 2 ** 20).toFixed(1)}`).join(", ")}`);
  for (const [name, bytes] of Object.entries(growth)) expect(bytes, `${name} RSS grew ${bytes} bytes`).toBeLessThan(RSS_GROWTH_BYTES_MAX);
}, 90_000);

/** Opens a connection and says HELLO; resolves with the peer once the server answered (WELCOME) or closed. */
async function helloPeer(port: number): Promise<RawPeer> {
  const peer = await RawPeer.open(port);
  peer.send(helloFrame());
  await waitFor("WELCOME or close", () => (peer.kinds.includes(Kind.WELCOME) || peer.isClosed ? true : undefined), CLOSE_DEADLINE_MS);
  return peer;
}

async function checkConnectionsMax(port: number, max: number): Promise<void> {
  const admitted: RawPeer[] = [];
  for (let i = 0; i < max; i++) admitted.push(await helloPeer(port));
  for (const p of admitted) expect(p.kinds).toEqual([Kind.WELCOME]);
  for (let i = 0; i < 3; i++) {
    const refused = await helloPeer(port);
    await expectClosedWith(refused, ["E_TOO_MANY_CONNECTIONS"]);
    // The refused connection's HELLO is never answered.
    expect(refused.kinds).toEqual([Kind.ERROR]);
  }
  admitted.shift()!.end();
  // The server sees the close a little later: retry until admitted (bounded).
  const again = await waitFor("a connection admitted after one closed", async () => {
    const p = await helloPeer(port);
    if (p.kinds.includes(Kind.WELCOME)) return p;
    await expectClosedWith(p, ["E_TOO_MANY_CONNECTIONS"]);
    return undefined;
  }, CLOSE_DEADLINE_MS);
  admitted.push(again);
  // Full again: refused connections did not free (or take) a slot.
  await expectClosedWith(await helloPeer(port), ["E_TOO_MANY_CONNECTIONS"]);
  for (const p of admitted) expect(p.isClosed).toBe(false);
  for (const p of admitted) p.end();
}

test("--connections-max N refuses connection N+1 with E_TOO_MANY_CONNECTIONS and admits again after one closes", async () => {
  cluster = new Cluster();
  const max = 3;
  const coordinator = await cluster.coordinator(["--connections-max", String(max)]);
  await checkConnectionsMax(coordinator.port, max);
  // The router counts its clients the same way (its own dial to the coordinator is not one of them).
  const upstream = await cluster.coordinator();
  const router = await cluster.router([upstream.port], ["--connections-max", String(max)]);
  await checkConnectionsMax(router.port, max);
});

// KNOWN_BUGS.routerForwardsMalformedSubmit (test/fuzz/fuzz-support.ts): the router checks only a SUBMIT's
// type and key bounds before forwarding it on the link every one of its clients shares; the coordinator
// then refuses the whole link. Flip to test() once fixed.
test("a malformed SUBMIT from one router client does not fail another client's requests", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "1"]);
  const router = await cluster.router([coordinator.port]);
  await cluster.workersJoined(router.port, 1);
  const victim = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  try {
    const tasks = 20;
    const outcomes = Array.from({ length: tasks }, () => victim.run("sleep", { ms: 500 }).then(() => "ok", (e: TaskError) => e.code));
    await waitFor("the victim's tasks to run", async () => ((await cluster.stats(router.port)).coordinators[0]!.stats!.leased > 0 ? true : undefined));
    const attacker = await RawPeer.open(router.port);
    attacker.send(helloFrame());
    expect(await attacker.waitKind(Kind.WELCOME, CLOSE_DEADLINE_MS)).toBe(true);
    // type "noop" and an empty key are in bounds; the payload says 65535 bytes and has none.
    attacker.send(frame(message(Kind.SUBMIT, Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 110, 111, 111, 112, 0, 0xff, 0xff, 0, 0]))));
    expect(await Promise.all(outcomes)).toEqual(Array(tasks).fill("ok"));
  } finally {
    victim.close();
  }
});
