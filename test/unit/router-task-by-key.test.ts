// The router's lookup by idempotency key asks every shard it knows. "No such
// task" (E_UNKNOWN_TASK, REST 404) tells a client the key was never submitted,
// so it may only come when every known shard's primary said so; a shard with no
// primary (mid-failover) or a primary that does not answer in time makes the
// answer E_UNAVAILABLE (REST 503, retry). Fake coordinators play the shards.

import { afterEach, expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { DEFAULT_NET_LIMITS } from "../../src/net/connection.ts";
import { TokenTable } from "../../src/net/auth.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { Router } from "../../src/router/router.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { FakeCoordinator, waitUntil } from "../support/fake-coordinator.ts";

const ASK_TIMEOUT_MS = 200;
const WAIT_MS = 3_000;
const QUIET = new Logger("router", "error");
const UNKNOWN = { kind: Kind.ERROR, body: { code: "E_UNKNOWN_TASK", message: "no such task" } };

let fakes: FakeCoordinator[] = [];
let router: Router | undefined;
let client: SchedulerClient | undefined;
afterEach(() => {
  client?.close();
  router?.stop();
  for (const f of fakes) f.stop();
  fakes = [];
});

/** Two shards, each a primary that says it has no task with any key; returns them once the router routes to both. */
async function twoShards(): Promise<[FakeCoordinator, FakeCoordinator]> {
  fakes = [await FakeCoordinator.start({ shard: 0, epoch: 1, primary: true }), await FakeCoordinator.start({ shard: 1, epoch: 1, primary: true })];
  await routeTo(fakes);
  // Until both links are up the answer is E_UNAVAILABLE; then both shards say unknown.
  await codeWithin("both shards to say unknown", "E_UNKNOWN_TASK");
  return [fakes[0]!, fakes[1]!];
}

/** A router in front of `coordinators` (each saying it has no task with any key), and a client of it. */
async function routeTo(coordinators: FakeCoordinator[]): Promise<void> {
  for (const f of coordinators) f.answers.set(Kind.TASK_QUERY, () => UNKNOWN);
  router = new Router({
    host: "127.0.0.1", port: 0, nodeId: "key-router", coordinators: coordinators.map((f) => f.address), limits: DEFAULT_NET_LIMITS, tokens: TokenTable.OPEN, tls: {},
    reconnectMinMs: 20, reconnectMaxMs: 100, statsTimeoutMs: ASK_TIMEOUT_MS, crossShardPollMs: 60_000,
  }, QUIET);
  router.start();
  client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
}

type Outcome = { code: string; message: string };
const outcome = (request: Promise<unknown>): Promise<Outcome> =>
  request.then(() => ({ code: "answered", message: "" }), (e: { code?: string; message: string }) => ({ code: e.code ?? "", message: e.message }));
const lookup = () => outcome(client!.taskByKey("never-submitted"));

async function lookupCode(): Promise<string> {
  return (await lookup()).code;
}

/** Asks until the answer has `code`, or fails at the deadline; returns that answer. */
async function codeWithin(what: string, code: string, ask: () => Promise<Outcome> = lookup): Promise<Outcome> {
  let last: Outcome = { code: "", message: "" };
  const deadline = Date.now() + WAIT_MS;
  while (last.code !== code) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last answer ${last.code}`);
    last = await ask();
  }
  return last;
}

test("a known shard with no primary makes a lookup by key E_UNAVAILABLE, never E_UNKNOWN_TASK", async () => {
  const [, failingOver] = await twoShards();
  failingOver.sendRole(2, false); // stepped down; no other coordinator of shard 1 says primary
  await codeWithin("the lookup to see shard 1 without a primary", "E_UNAVAILABLE");
  expect(await lookupCode()).toBe("E_UNAVAILABLE");
  failingOver.sendRole(3, true); // a primary again: the other shards' "unknown" is the answer once more
  await codeWithin("shard 1's primary back", "E_UNKNOWN_TASK");
});

test("the dead-letter list fails as E_UNAVAILABLE while a known shard has no primary, rather than leave its tasks out", async () => {
  const [healthy, failingOver] = await twoShards();
  healthy.answers.set(Kind.DLQ_LIST, () => ({ kind: Kind.REPLY, body: { tasks: [], total: 0 } }));
  failingOver.answers.set(Kind.DLQ_LIST, () => ({ kind: Kind.REPLY, body: { tasks: [], total: 0 } }));
  const deadLetters = () => outcome(client!.deadLetters());
  expect((await deadLetters()).code).toBe("answered");
  failingOver.sendRole(2, false);
  const refused = await codeWithin("the list to see shard 1 without a primary", "E_UNAVAILABLE", deadLetters);
  expect(refused.message).toContain("shard 1 has no primary");
});

test("a primary that does not answer a lookup by key makes it E_UNAVAILABLE within the timeout", async () => {
  const [, silent] = await twoShards();
  silent.answers.delete(Kind.TASK_QUERY); // like a coordinator under SIGSTOP: the link stays up, nothing comes back
  const answer = await lookup();
  expect(answer.code).toBe("E_UNAVAILABLE");
  expect(answer.message).toContain(`no answer within ${ASK_TIMEOUT_MS} ms`);
});

test("a configured coordinator that has not said its shard yet makes a lookup by key E_UNAVAILABLE: that shard may hold the key", async () => {
  // The router restarted; shard 1's coordinator is slow to come up (its HELLO waits for an answer).
  fakes = [await FakeCoordinator.start({ shard: 0, epoch: 1, primary: true }), await FakeCoordinator.start({ shard: 1, epoch: 1, primary: true }, false)];
  const [early, late] = fakes as [FakeCoordinator, FakeCoordinator];
  await routeTo(fakes);
  await waitUntil("the router to be welcomed by shard 0 and to dial shard 1", () => early.welcomed && late.hello !== undefined, WAIT_MS);
  await Bun.sleep(ASK_TIMEOUT_MS); // shard 0 is routed to by now
  const answer = await lookup();
  expect(answer.code).toBe("E_UNAVAILABLE");
  expect(answer.message).toContain(`${late.address.host}:${late.port}`);
  late.welcome();
  await codeWithin("shard 1's answer joining shard 0's", "E_UNKNOWN_TASK");
});

test("the dead-letter list fails as E_UNAVAILABLE while a configured coordinator has not said its shard yet", async () => {
  fakes = [await FakeCoordinator.start({ shard: 0, epoch: 1, primary: true }), await FakeCoordinator.start({ shard: 1, epoch: 1, primary: true }, false)];
  for (const f of fakes) f.answers.set(Kind.DLQ_LIST, () => ({ kind: Kind.REPLY, body: { tasks: [], total: 0 } }));
  const [early, late] = fakes as [FakeCoordinator, FakeCoordinator];
  await routeTo(fakes);
  await waitUntil("the router to be welcomed by shard 0 and to dial shard 1", () => early.welcomed && late.hello !== undefined, WAIT_MS);
  await Bun.sleep(ASK_TIMEOUT_MS);
  const deadLetters = () => outcome(client!.deadLetters());
  expect((await deadLetters()).code).toBe("E_UNAVAILABLE");
  late.welcome();
  await codeWithin("shard 1 to join the list", "answered", deadLetters);
});

test("a shard whose every coordinator was removed (etcd discovery) is no longer asked: lookups by key answer again", async () => {
  const [, removed] = await twoShards();
  router!.removeUpstream(removed.address);
  const answer = await codeWithin("the lookup to leave shard 1 out", "E_UNKNOWN_TASK");
  expect(answer.message).toContain("never-submitted");
  expect(await lookupCode()).toBe("E_UNKNOWN_TASK");
});
