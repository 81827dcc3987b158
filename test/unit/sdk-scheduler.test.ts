// The failover client against fake connections: re-sends keep their key,
// a lost connection moves to the next server, a step-down is followed, and
// every failure is a rejected promise.

import { rejectsNotThrows } from "../support/helpers.ts";
import { describe, expect, test } from "bun:test";
import type { HostPort } from "../../src/net/endpoints.ts";
import type { RoleChange, TaskInfo } from "../../src/protocol/messages.ts";
import { BatchSubmitError, type BatchItemOutcome, type SubmitOptions, type TaskOutcome } from "../../src/sdk/client.ts";
import { SchedulerError, TaskFailedError } from "../../src/sdk/errors.ts";
import { connect, type Link } from "../../src/sdk/scheduler.ts";
import { RESENDS_MAX } from "../../src/sdk/failover.ts";

interface Sent {
  server: number;
  call: string;
  key?: string;
}

/** A connection that answers from a script; `die` makes the next request find it lost. */
class FakeLink {
  closed = false;
  onRole: ((change: RoleChange) => void) | undefined;
  dieOnNext = false;
  /** Stopped (SIGSTOP, half-open): takes requests and never answers or closes. */
  hangs = false;
  constructor(
    readonly server: number,
    private readonly log: Sent[],
    private readonly keys: Map<string, number>,
  ) {}

  private answer<T>(call: string, key: string | undefined, value: () => T): Promise<T> {
    this.log.push({ server: this.server, call, key });
    if (this.closed) return Promise.reject(new SchedulerError("E_UNAVAILABLE", "connection closed"));
    if (this.hangs) return new Promise<T>(() => undefined);
    if (this.dieOnNext) {
      // The request reached the server (so the key is known there) but the reply was lost.
      value();
      this.closed = true;
      return Promise.reject(new SchedulerError("E_UNAVAILABLE", "connection lost"));
    }
    return Promise.resolve(value());
  }

  private idFor(key: string): number {
    if (!this.keys.has(key)) this.keys.set(key, 100 + this.keys.size);
    return this.keys.get(key)!;
  }

  submit(_type: string, _payload: unknown, o: SubmitOptions = {}): Promise<number> {
    return this.answer("submit", o.idempotencyKey, () => this.idFor(o.idempotencyKey!));
  }
  run(_type: string, _payload: unknown, o: SubmitOptions = {}): Promise<TaskOutcome> {
    return this.answer("run", o.idempotencyKey, () => ({ taskId: this.idFor(o.idempotencyKey!), ok: true, attempts: 1, output: new Uint8Array([0x2a]) }));
  }
  wait(taskId: number): Promise<TaskOutcome> {
    if (taskId === 999) return this.answer("wait", undefined, () => ({ taskId, ok: false, attempts: 2, output: new Uint8Array(0), code: "E_TIMEOUT", message: "attempt 2 ran past 10 ms", error: "E_TIMEOUT: attempt 2 ran past 10 ms" }));
    return this.answer("wait", undefined, () => ({ taskId, ok: true, attempts: 1, output: new Uint8Array([0x2a]) }));
  }
  /** Keys this server refuses in a batch: once as retryable (E_UNAVAILABLE), or always (E_UNKNOWN_TASK). */
  readonly refuseOnce = new Set<string>();
  readonly refuseAlways = new Set<string>();
  /** Keys this server refuses in every batch with the code given. */
  readonly refuseWith = new Map<string, string>();
  submitBatch(tasks: Array<{ options?: SubmitOptions }>): Promise<BatchItemOutcome[]> {
    const keys = tasks.map((t) => t.options!.idempotencyKey!);
    return this.answer("submitBatch", keys.join(","), () => keys.map((key): BatchItemOutcome => {
      if (this.refuseOnce.delete(key)) return { ok: false, code: "E_UNAVAILABLE", message: "its shard has no primary now; retry" };
      if (this.refuseAlways.has(key)) return { ok: false, code: "E_UNKNOWN_TASK", message: "no such parent" };
      const code = this.refuseWith.get(key);
      if (code !== undefined) return { ok: false, code, message: `refused with ${code}` };
      return { ok: true, taskId: this.idFor(key) };
    }));
  }
  workflow(tasks: Array<{ idempotencyKey?: string }>): Promise<number[]> {
    return this.answer("workflow", tasks.map((t) => t.idempotencyKey).join(","), () => tasks.map((t) => this.idFor(t.idempotencyKey!)));
  }
  purgeDeadLetters(): Promise<number> {
    return this.answer("purge", undefined, () => {
      throw new SchedulerError("E_NOT_PRIMARY", "stepped down before this was replicated; retry");
    });
  }
  task(taskId: number): Promise<TaskInfo> {
    const errors = [{ attempt: 1, workerId: 1, at: 5, code: "E_HANDLER", message: "boom" }, { attempt: 2, workerId: 2, at: 9, code: "E_TIMEOUT", message: "attempt 2 ran past 10 ms" }];
    return this.answer("task", undefined, () => ({ taskId, errors }) as unknown as TaskInfo);
  }
  close(): void {
    this.closed = true;
  }
}

function fakeCluster(serverCount: number, refuse: (server: number) => SchedulerError | undefined = () => undefined) {
  const log: Sent[] = [];
  const keys = new Map<string, number>(); // shared: the cluster behind every router
  const links: FakeLink[] = [];
  const dial = async (server: HostPort): Promise<Link> => {
    const index = server.port - 1;
    const refusal = refuse(index);
    if (refusal !== undefined) throw refusal;
    const link = new FakeLink(index, log, keys);
    links.push(link);
    return link as unknown as Link;
  };
  const servers = Array.from({ length: serverCount }, (_, i) => ({ host: "fake", port: i + 1 }));
  const options = { servers, dial, random: () => 0, retry: { minDelayMs: 1, maxDelayMs: 4, giveUpAfterMs: 200, connectTimeoutMs: 50, answerTimeoutMs: 50 } };
  return { log, links, options };
}

describe("Scheduler over fake connections", () => {
  test("a submit whose reply was lost is sent again on the next server under the same generated key", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    c.links[0]!.dieOnNext = true;
    const handle = await client.submit("noop", { n: 1 });
    const submits = c.log.filter((s) => s.call === "submit");
    expect(submits.map((s) => s.server)).toEqual([0, 1]);
    expect(submits[0]!.key).toStartWith("sdk-");
    expect(submits[1]!.key).toBe(submits[0]!.key!);
    expect(handle.idempotencyKey).toBe(submits[0]!.key!);
    expect(handle.id).toBe(100); // the task the first, lost, submission created: no second one
    await client.close();
  });

  test("a server that stops answering is left after answerTimeoutMs; the request goes to the next under its key", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    c.links[0]!.hangs = true;
    const handle = await client.submit("noop", undefined, { idempotencyKey: "k" });
    expect(c.log.map((s) => `${s.server}:${s.call}:${s.key}`)).toEqual(["0:submit:k", "1:submit:k"]);
    expect(c.links[0]!.closed).toBe(true);
    expect(handle.id).toBe(100);
    await client.close();
  });

  test("a workflow goes under a key per node, so sent again after a lost reply it gets the same ids, not a second workflow", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    c.links[0]!.dieOnNext = true; // the first server creates it, and the reply is lost
    const ids = await client.workflow([{ type: "noop" }, { type: "noop", idempotencyKey: "mine" }]);
    const sent = c.log.filter((s) => s.call === "workflow");
    expect(sent.map((s) => s.server)).toEqual([0, 1]);
    expect(sent[0]!.key).toBe(sent[1]!.key);
    expect(sent[0]!.key).toMatch(/^sdk-.+-0,mine$/);
    expect(ids).toEqual([100, 101]);
    await client.close();
  });

  test("submitMany: a batch whose reply was lost goes to the next server under the same keys, so no task is made twice", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    c.links[0]!.dieOnNext = true;
    const handles = await client.submitMany([{ type: "noop" }, { type: "noop", options: { idempotencyKey: "mine" } }]);
    const sent = c.log.filter((s) => s.call === "submitBatch");
    expect(sent.map((s) => s.server)).toEqual([0, 1]);
    expect(sent[1]!.key).toBe(sent[0]!.key!);
    expect(sent[0]!.key).toMatch(/^sdk-.+,mine$/);
    expect(handles.map((h) => h.id)).toEqual([100, 101]);
    await client.close();
  });

  test("submitMany: a task refused as retryable is sent again alone; one refused for good rejects with every task's outcome", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    c.links[0]!.refuseOnce.add("b");
    const handles = await client.submitMany(["a", "b", "c"].map((k) => ({ type: "noop", options: { idempotencyKey: k } })));
    expect(c.log.filter((s) => s.call === "submitBatch").map((s) => s.key)).toEqual(["a,b,c", "b"]);
    expect(handles.map((h) => h.id)).toEqual([100, 102, 101]);
    c.links[0]!.refuseAlways.add("bad");
    const refused = await client.submitMany([{ type: "noop", options: { idempotencyKey: "bad" } }, { type: "noop", options: { idempotencyKey: "a" } }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BatchSubmitError);
    expect((refused as BatchSubmitError).code).toBe("E_UNKNOWN_TASK");
    expect((refused as BatchSubmitError).outcomes).toEqual([{ ok: false, code: "E_UNKNOWN_TASK", message: "no such parent" }, { ok: true, taskId: 100 }]);
    await client.close();
  });

  test("submitMany: a task refused with E_QUEUE_FULL is not sent again; the call rejects at once", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    c.links[0]!.refuseWith.set("full", "E_QUEUE_FULL");
    const refused = await client.submitMany([{ type: "noop", options: { idempotencyKey: "a" } }, { type: "noop", options: { idempotencyKey: "full" } }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BatchSubmitError);
    expect((refused as BatchSubmitError).code).toBe("E_QUEUE_FULL");
    expect(c.log.filter((s) => s.call === "submitBatch").map((s) => s.key)).toEqual(["a,full"]);
    await client.close();
  });

  test("submitMany: a task refused as retryable every time gives up after giveUpAfterMs, not after RESENDS_MAX rounds", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    c.links[0]!.refuseWith.set("stuck", "E_UNAVAILABLE");
    const refused = await client.submitMany([{ type: "noop", options: { idempotencyKey: "stuck" } }]).catch((e: unknown) => e);
    expect((refused as BatchSubmitError).code).toBe("E_UNAVAILABLE");
    // giveUpAfterMs is 200 and every pause at least 1 ms: far fewer rounds than RESENDS_MAX (1,000).
    expect(c.log.filter((s) => s.call === "submitBatch").length).toBeLessThan(RESENDS_MAX / 2);
    await client.close();
  }, 15_000);

  test("a purge is never sent twice, not even after a refusal that looks like failover", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    const refused = await client.purgeDeadLetters().catch((e: unknown) => e);
    expect((refused as SchedulerError).code).toBe("E_NOT_PRIMARY");
    expect(c.log.filter((s) => s.call === "purge").length).toBe(1);
    await client.close();
  });

  test("the caller's key is kept; two submissions without a key get different keys", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    expect((await client.submit("noop", undefined, { idempotencyKey: "order-1" })).idempotencyKey).toBe("order-1");
    const [a, b] = await Promise.all([client.submit("noop"), client.submit("noop")]);
    expect(a.idempotencyKey).not.toBe(b.idempotencyKey);
    expect(a.id).not.toBe(b.id);
    await client.close();
  });

  test("run() after a lost connection finds its task by key and waits for it by id", async () => {
    const c = fakeCluster(2);
    const client = await connect<{ answer: { payload: { q: string }; result: number } }>(c.options);
    c.links[0]!.dieOnNext = true;
    const value: number = await client.run("answer", { q: "?" });
    expect(value).toBe(42);
    expect(c.log.map((s) => `${s.server}:${s.call}`)).toEqual(["0:run", "1:submit", "1:wait"]);
    await client.close();
  });

  test("a coordinator announcing it is no longer primary is left for the next server", async () => {
    const c = fakeCluster(2);
    const client = await connect(c.options);
    c.links[0]!.onRole?.({ nodeId: "a", shard: 0, epoch: 2, primary: false });
    expect(c.links[0]!.closed).toBe(true);
    await client.submit("noop");
    expect(c.log.map((s) => s.server)).toEqual([1]);
    await client.close();
  });

  test("a failed task rejects with a TaskFailedError carrying its code, attempts and every attempt's error", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    const failure = await client.handle(999).result().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TaskFailedError);
    const f = failure as TaskFailedError;
    expect([f.code, f.attempts, f.taskId]).toEqual(["E_TIMEOUT", 2, 999]);
    expect(f.errors.map((e) => e.code)).toEqual(["E_HANDLER", "E_TIMEOUT"]);
    await client.close();
  });

  test("with every server down, connect rejects with E_UNAVAILABLE after its time budget", async () => {
    const c = fakeCluster(2, () => new SchedulerError("E_UNAVAILABLE", "refused"));
    const started = Date.now();
    const refused = await connect(c.options).catch((e: unknown) => e);
    expect((refused as SchedulerError).code).toBe("E_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test("a wrong token is refused at once, without trying every server until the budget is spent", async () => {
    let dials = 0;
    const c = fakeCluster(3, () => (dials++, new SchedulerError("E_UNAUTHORIZED", "bad token")));
    const refused = await connect(c.options).catch((e: unknown) => e);
    expect((refused as SchedulerError).code).toBe("E_UNAUTHORIZED");
    expect(dials).toBe(1);
  });

  test("after every server died, methods return promises that reject; after close(), E_SHUTTING_DOWN", async () => {
    let down = false;
    const c = fakeCluster(2, () => (down ? new SchedulerError("E_UNAVAILABLE", "refused") : undefined));
    const client = await connect(c.options);
    down = true;
    c.links[0]!.close();
    const promise = rejectsNotThrows(() => client.submit("noop"));
    expect(((await promise.catch((e: unknown) => e)) as SchedulerError).code).toBe("E_UNAVAILABLE");
    await client.close();
    expect(((await client.status(1).catch((e: unknown) => e)) as SchedulerError).code).toBe("E_SHUTTING_DOWN");
  });

  test("the token and CA reach every dial; the server list spreads from the random start", async () => {
    const c = fakeCluster(3);
    const seen: Array<{ port: number; token?: string; ca?: string }> = [];
    const dial = c.options.dial;
    const client = await connect({
      ...c.options, token: "t0ken", tlsCa: "-----BEGIN CERTIFICATE-----", random: () => 0.5,
      dial: (server, o) => (seen.push({ port: server.port, token: o.token, ca: o.tls?.ca }), dial(server)),
    });
    expect(seen).toEqual([{ port: 2, token: "t0ken", ca: "-----BEGIN CERTIFICATE-----" }]);
    await client.close();
  });

  test("bad options reject before anything is sent", async () => {
    const c = fakeCluster(1);
    const client = await connect(c.options);
    const refused = await client.submit("noop", undefined, { priority: 300 }).catch((e: unknown) => e);
    expect((refused as SchedulerError).code).toBe("E_BAD_REQUEST");
    expect(c.log).toEqual([]);
    await client.close();
  });
});
