// GET /v1/events through a live router and two shards, read with fetch as any
// HTTP client would: completed and dead events with their codes, filters,
// resuming with Last-Event-ID after a disconnect (nothing lost, nothing twice),
// a gap event for a position no primary holds, 400 for a bad filter or id, and
// the read role on a cluster with tokens.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

const RUN_MS = 90_000;

interface SseMessage {
  id?: string;
  event?: string;
  data?: Record<string, unknown>;
}

/** An open SSE response read message by message (a blank line ends each), bounded by a deadline per wait. */
class SseReader {
  private buffer = "";
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  lastId: string | undefined;

  constructor(response: Response, private readonly controller: AbortController) {
    this.reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  }

  /** Waits until the stream's position names `shards` shards: its subscription reached every primary. */
  async positioned(shards: number): Promise<void> {
    while ((this.lastId?.split("_").length ?? 0) < shards) await this.next(15_000, true);
  }

  /** The next message with an event (id-only messages move lastId and are skipped, unless `orId`). */
  async next(timeoutMs = 15_000, orId = false): Promise<SseMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const m = parse(block);
        if (m.id !== undefined) this.lastId = m.id;
        if (m.event !== undefined || (orId && m.id !== undefined)) return m;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SSE event within ${timeoutMs} ms`);
      const chunk = await Promise.race([this.reader.read(), Bun.sleep(left).then(() => undefined)]);
      if (chunk === undefined) continue;
      if (chunk.done) throw new Error("the SSE stream ended");
      this.buffer += this.decoder.decode(chunk.value, { stream: true });
    }
  }

  /** Messages until `count` events of these kinds were read. */
  async collect(count: number, kinds: string[]): Promise<SseMessage[]> {
    const got: SseMessage[] = [];
    while (got.length < count) {
      const m = await this.next();
      if (kinds.includes(m.event!)) got.push(m);
    }
    return got;
  }

  close(): void {
    this.controller.abort();
  }
}

function parse(block: string): SseMessage {
  const m: SseMessage = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = line.slice(0, at);
    const value = line.slice(at + 1).replace(/^ /, "");
    if (field === "id") m.id = value;
    if (field === "event") m.event = value;
    if (field === "data") m.data = JSON.parse(value) as Record<string, unknown>;
  }
  return m;
}

async function openStream(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("text/event-stream");
  return new SseReader(response, controller);
}

describe("two shards behind a router", () => {
  const cluster = new Cluster();
  let base = "";

  beforeAll(async () => {
    const httpPort = freePort();
    await cluster.twoShardsBehindRouter({ routerArgs: ["--http-port", String(httpPort)] });
    base = `http://127.0.0.1:${httpPort}`;
    await waitFor("the HTTP port", async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined));
  });

  afterAll(() => cluster.stopAll());

  const submit = async (tasks: unknown[]): Promise<number[]> => {
    const r = await fetch(`${base}/v1/tasks`, { method: "POST", body: JSON.stringify(tasks) });
    expect(r.status).toBe(201);
    return ((await r.json()) as { taskIds: number[] }).taskIds;
  };

  test("completed and dead events of both shards, with codes; the filter leaves the rest out", async () => {
    const all = await openStream(`${base}/v1/events`);
    const deadOnly = await openStream(`${base}/v1/events?kinds=dead`);
    await all.positioned(2); // both subscriptions reach both shards before the tasks exist
    await deadOnly.positioned(2);
    const ok = await submit(Array.from({ length: 40 }, () => ({ type: "noop" })));
    const [late] = await submit([{ type: "noop", delayMs: 400, deadlineMs: 50 }]);
    const got = await all.collect(41, ["completed", "dead"]);
    expect(new Set(got.filter((m) => m.event === "completed").map((m) => m.data!.taskId))).toEqual(new Set(ok));
    expect(new Set(got.map((m) => m.data!.shard))).toEqual(new Set([0, 1]));
    const dead = got.find((m) => m.event === "dead")!;
    expect(dead.data).toMatchObject({ kind: "dead", taskId: late, type: "noop", code: "E_DEADLINE" });
    // Each id names both shards' positions: "<shard>.<term>.<seq>" joined by "_".
    expect(all.lastId).toMatch(/^0\.\d+\.\d+_1\.\d+\.\d+$/);
    expect((await deadOnly.next()).data).toMatchObject({ kind: "dead", taskId: late, code: "E_DEADLINE" });
    all.close();
    deadOnly.close();
  }, RUN_MS);

  test("a stream resumed with Last-Event-ID gets every event it missed, none twice", async () => {
    const first = await openStream(`${base}/v1/events?kinds=completed&types=noop`);
    await first.positioned(2);
    const before = await submit(Array.from({ length: 20 }, () => ({ type: "noop" })));
    const seen = (await first.collect(20, ["completed"])).map((m) => m.data!.taskId as number);
    const lastId = first.lastId!;
    first.close();
    // Submitted and finished while nobody listens.
    const missed = await submit(Array.from({ length: 30 }, () => ({ type: "noop" })));
    await waitFor("the missed tasks to finish", async () => {
      const states = await Promise.all(missed.map(async (id) => ((await (await fetch(`${base}/v1/tasks/${id}`)).json()) as { state: string }).state));
      return states.every((s) => s === "completed") ? true : undefined;
    });
    const resumed = await openStream(`${base}/v1/events?kinds=completed&types=noop`, { "last-event-id": lastId });
    const after = (await resumed.collect(30, ["completed"])).map((m) => m.data!.taskId as number);
    expect(new Set(seen)).toEqual(new Set(before));
    expect(after.sort()).toEqual([...missed].sort());
    // ?after= does the same for clients that cannot set headers.
    const again = await openStream(`${base}/v1/events?kinds=completed&after=${lastId}`);
    expect(new Set((await again.collect(30, ["completed"])).map((m) => m.data!.taskId))).toEqual(new Set(missed));
    resumed.close();
    again.close();
  }, RUN_MS);

  test("a position from another primary's term gets a gap event, then what this primary holds", async () => {
    const stream = await openStream(`${base}/v1/events`, { "last-event-id": "0.7.5_1.7.5" });
    // Each shard: its gap first, then every event it holds (the earlier tests' completions, 60 and more of them).
    const got = await stream.collect(2 + 60, ["gap", "completed"]);
    const gaps = got.filter((m) => m.event === "gap");
    expect(new Set(gaps.map((m) => m.data!.shard))).toEqual(new Set([0, 1]));
    expect(String(gaps[0]!.data!.reason)).toContain("new primary since term 7");
    for (const gap of gaps) {
      const firstOfShard = got.find((m) => m.data!.shard === gap.data!.shard);
      expect(firstOfShard).toBe(gap);
    }
    stream.close();
  }, RUN_MS);

  test("a bad filter or event id is a 400 before any stream", async () => {
    for (const query of ["kinds=bogus", "after=not-an-id", "ids=x", "colour=red"]) {
      const r = await fetch(`${base}/v1/events?${query}`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("E_BAD_REQUEST");
    }
  }, RUN_MS);
});

describe("with tokens", () => {
  const cluster = new Cluster();
  const dir = mkdtempSync(join(tmpdir(), "sse-tokens-"));
  afterAll(async () => {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the read role streams; no token is 401, a worker's token 403; keepalives hold a quiet stream past the idle time-out", async () => {
    const tokens = join(dir, "tokens");
    writeTokensFile(tokens);
    const coordinator = await cluster.coordinator(["--tokens", tokens]);
    const httpPort = freePort();
    await cluster.router([coordinator.port], ["--tokens", tokens, "--http-port", String(httpPort), "--client-idle-timeout-ms", "600"]);
    const url = `http://127.0.0.1:${httpPort}/v1/events`;
    await waitFor("the HTTP port", async () => ((await fetch(url.replace("/v1/events", "/healthz"))).ok ? true : undefined));
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: "Bearer not-a-token-at-all" } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${TOKENS.worker}` } })).status).toBe(403);
    const stream = await openStream(url, { authorization: `Bearer ${TOKENS.read}` });
    cluster.worker([coordinator.port], ["--token", TOKENS.worker]);
    const submit = async () => {
      const r = await fetch(url.replace("/v1/events", "/v1/tasks"), { method: "POST", body: JSON.stringify({ type: "noop" }), headers: { authorization: `Bearer ${TOKENS.submit}` } });
      return ((await r.json()) as { taskId: number }).taskId;
    };
    const taskId = await submit();
    expect((await stream.next()).data).toMatchObject({ kind: "completed", taskId });
    await Bun.sleep(1_500); // quiet for over twice --client-idle-timeout-ms: only the keepalives cross
    const later = await submit();
    expect((await stream.next()).data).toMatchObject({ kind: "completed", taskId: later });
    stream.close();
  }, RUN_MS);
});
