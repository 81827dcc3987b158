// A worker runs assignments only from its shard's current primary: not from a
// link that does not say primary, and not from one whose epoch is below the
// highest epoch any link announced as primary for that shard (a deposed primary,
// e.g. one resumed after SIGSTOP, dispatches before it learns it was replaced).
// Fake coordinators (test/support/fake-coordinator.ts) play both primaries.

import { afterEach, expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { makeTaskId } from "../../src/core/task.ts";
import { DEFAULT_NET_LIMITS } from "../../src/net/connection.ts";
import { WorkerNode, type WorkerConfig } from "../../src/worker/worker.ts";
import { FakeCoordinator, waitUntil, type FakeRole } from "../support/fake-coordinator.ts";

const WAIT_MS = 5_000;
const QUIET = new Logger("worker", "error");

let fakes: FakeCoordinator[] = [];
let node: WorkerNode | undefined;
afterEach(() => {
  node?.stop();
  node = undefined;
  for (const f of fakes) f.stop();
  fakes = [];
});

async function fake(role: FakeRole, welcomeAtOnce = true): Promise<FakeCoordinator> {
  const f = await FakeCoordinator.start(role, welcomeAtOnce);
  fakes.push(f);
  return f;
}

/** One executor thread: results come back in the order tasks went in. */
async function startWorker(coordinators: FakeCoordinator[]): Promise<WorkerNode> {
  const config: WorkerConfig = {
    coordinators: coordinators.map((c) => c.address),
    nodeId: "fenced-worker",
    tags: [],
    threads: 1,
    concurrency: 16,
    ringBytes: 1 << 16,
    heartbeatMs: 10,
    reconnectMinMs: 10,
    reconnectMaxMs: 50,
    idleWaitMs: 20,
    batchMax: 64,
    handlerModules: [],
    resultsWaitingMax: 1000,
    limits: DEFAULT_NET_LIMITS,
    token: undefined,
    tls: undefined,
    executorModule: new URL("../../src/worker/executor-thread.ts", import.meta.url),
  };
  node = new WorkerNode(config, QUIET);
  await node.start();
  return node;
}

const anyResultFor = (taskId: number) => fakes.some((f) => f.resultFor(taskId) !== undefined);

/**
 * Sends `taskId` from `from` and waits until the worker has dealt with it: a
 * RESULT anywhere, or one more refusal. Then a task from `control` (the real
 * primary) must come back: with one executor, a result of the first would have
 * come before it.
 */
async function assignAndSettle(from: FakeCoordinator, taskId: number, control: FakeCoordinator, controlTaskId: number): Promise<void> {
  const refusedBefore = node!.counters.refused ?? 0;
  from.assign(taskId);
  await waitUntil(`task ${taskId} run or refused`, () => anyResultFor(taskId) || (node!.counters.refused ?? 0) > refusedBefore, WAIT_MS);
  control.assign(controlTaskId);
  await waitUntil(`task ${controlTaskId} from ${control.nodeId} to complete`, () => control.resultFor(controlTaskId) !== undefined, WAIT_MS);
}

test("an ASSIGN from the lower-epoch of two primaries of a shard is not run; one from the higher is", async () => {
  const old = await fake({ shard: 0, epoch: 5, primary: true });
  const current = await fake({ shard: 0, epoch: 9, primary: true });
  await startWorker([old, current]);
  await old.heardSinceWelcome(WAIT_MS);
  await current.heardSinceWelcome(WAIT_MS);
  const stale = makeTaskId(0, 1);
  const fresh = makeTaskId(0, 2);
  await assignAndSettle(old, stale, current, fresh);
  expect(anyResultFor(stale)).toBe(false);
  expect(current.resultFor(fresh)?.status).toBe(0);
  expect(node!.counters.refused).toBe(1);
  expect(node!.counters.received).toBe(1);
});

test("a primary deposed while the worker served it (then resumed, as after SIGSTOP) is refused from then on", async () => {
  const old = await fake({ shard: 3, epoch: 5, primary: true });
  const successor = await fake({ shard: 3, epoch: 9, primary: true }, false);
  await startWorker([old, successor]);
  await old.heardSinceWelcome(WAIT_MS);
  // While it is the only primary the worker knows, it is served.
  const before = makeTaskId(3, 1);
  old.assign(before);
  await waitUntil("the old primary's task to complete", () => old.resultFor(before) !== undefined, WAIT_MS);
  // Its successor announces itself; the old one, unaware, goes on dispatching.
  await waitUntil("the successor's HELLO", () => successor.hello !== undefined, WAIT_MS);
  successor.welcome();
  await successor.heardSinceWelcome(WAIT_MS);
  const after = makeTaskId(3, 2);
  await assignAndSettle(old, after, successor, makeTaskId(3, 3));
  expect(anyResultFor(after)).toBe(false);
  expect(node!.counters.refused).toBe(1);
  // The fence outlives the successor's link: the old primary is still refused while the successor is away.
  successor.stop();
  const whileAway = makeTaskId(3, 4);
  old.assign(whileAway);
  await waitUntil("the second refusal", () => node!.counters.refused === 2, WAIT_MS);
  expect(anyResultFor(whileAway)).toBe(false);
});

test("an ASSIGN from a link that does not say primary (a backup, or a primary that stepped down) is not run", async () => {
  const backup = await fake({ shard: 1, epoch: 4, primary: false });
  const primary = await fake({ shard: 1, epoch: 4, primary: true });
  await startWorker([backup, primary]);
  await backup.heardSinceWelcome(WAIT_MS);
  await primary.heardSinceWelcome(WAIT_MS);
  await assignAndSettle(backup, makeTaskId(1, 1), primary, makeTaskId(1, 2));
  expect(anyResultFor(makeTaskId(1, 1))).toBe(false);
  // The primary steps down (ROLE) and the backup takes over at a higher epoch.
  primary.sendRole(4, false);
  backup.sendRole(6, true);
  await assignAndSettle(primary, makeTaskId(1, 3), backup, makeTaskId(1, 4));
  expect(anyResultFor(makeTaskId(1, 3))).toBe(false);
  expect(node!.counters.refused).toBe(2);
});

test("a coordinator removed at run time: its running task's result waits for the shard's next primary", async () => {
  const first = await fake({ shard: 2, epoch: 7, primary: true });
  const next = await fake({ shard: 2, epoch: 8, primary: true });
  const worker = await startWorker([first]);
  await first.heardSinceWelcome(WAIT_MS);
  const slow = makeTaskId(2, 1);
  first.assign(slow, "sleep", { ms: 150 });
  await waitUntil("the task to be running", () => worker.running === 1, WAIT_MS);
  worker.removeCoordinator(first.address);
  await waitUntil("the removed coordinator's connection to close", () => !first.connected, WAIT_MS);
  await waitUntil("the task to finish with no primary to take its result", () => worker.running === 0, WAIT_MS);
  worker.addCoordinator(next.address);
  await waitUntil("the waiting result at the next primary", () => next.resultFor(slow) !== undefined, WAIT_MS);
  expect(first.resultFor(slow)).toBeUndefined();
  // Adding a known address again is a no-op; the new primary's tasks run.
  worker.addCoordinator(next.address);
  next.assign(makeTaskId(2, 2));
  await waitUntil("a task of the new primary", () => next.resultFor(makeTaskId(2, 2)) !== undefined, WAIT_MS);
  expect(node!.counters.refused).toBe(0);
});

test("a shard whose every coordinator went away starts over: a restart at a lower epoch is served", async () => {
  // Static mode without --data-dir: the whole shard restarts empty at epoch 1. The old fence must not refuse it for good.
  const before = await fake({ shard: 4, epoch: 7, primary: true });
  await startWorker([before]);
  await before.heardSinceWelcome(WAIT_MS);
  const first = makeTaskId(4, 1);
  before.assign(first);
  await waitUntil("the first primary's task to complete", () => before.resultFor(first) !== undefined, WAIT_MS);
  const address = before.address;
  before.stop();
  const restarted = await FakeCoordinator.start({ shard: 4, epoch: 1, primary: true }, true, address.port);
  fakes.push(restarted);
  await restarted.heardSinceWelcome(WAIT_MS);
  const second = makeTaskId(4, 2);
  restarted.assign(second);
  await waitUntil("the restarted shard's task to complete", () => restarted.resultFor(second) !== undefined, WAIT_MS);
  expect(node!.counters.refused).toBe(0);
});
