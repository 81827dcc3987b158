// The etcd client against a real single-member etcd (test/support/etcd-server.ts),
// and its watch-stream splitter, which must survive any chunking (one byte at a time).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { createJsonSplitter, EtcdClient, EtcdError, prefixRangeEnd, type EtcdWatchEvent } from "../../src/net/etcd-client.ts";
import { etcdAvailable, startEtcd, type EtcdServer } from "../support/etcd-server.ts";

const ETCD_TEST_TIMEOUT_MS = 15_000;
const LEASE_GONE_DEADLINE_MS = 6_000;
const WATCH_DEADLINE_MS = 5_000;

/** Polls `check` until it returns something other than undefined, or throws at the deadline. */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

async function rejection(p: Promise<unknown>): Promise<EtcdError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EtcdError);
    return err as EtcdError;
  }
  throw new Error("expected the call to fail");
}

/** A loopback port nothing listens on (bound and released at once). */
function closedPort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

const fromB64 = (s: string) => Buffer.from(s, "base64");

describe("createJsonSplitter", () => {
  const messages = [
    { result: { created: true, header: { revision: "7" } } },
    { s: "braces { } [ ] inside a string", q: 'a "quoted" word', bs: "ends in a backslash \\", nested: { a: [{ b: {} }, "}"] } },
    { text: "héllo ✓ 日本語 🎉", esc: "\u0000\u001f\\\"" },
    { big: "é日".repeat(20_000) },
    {},
  ];
  const expected = messages.map((m) => JSON.stringify(m));

  function feed(stream: Uint8Array, cuts: number[]): string[] {
    const split = createJsonSplitter();
    const out: string[] = [];
    let at = 0;
    for (const cut of [...cuts, stream.length]) {
      out.push(...split(stream.subarray(at, cut)));
      at = cut;
    }
    return out;
  }

  for (const [name, sep] of [["newlines", "\n"], ["CRLF and spaces", " \r\n\t"], ["nothing", ""]] as const) {
    test(`one byte at a time, messages separated by ${name}`, () => {
      const stream = new TextEncoder().encode(expected.join(sep) + sep);
      const cuts = Array.from({ length: stream.length }, (_, i) => i + 1);
      expect(feed(stream, cuts)).toEqual(expected);
    });
  }

  test("random chunkings give the same messages", () => {
    const seed = Date.now() % 1_000_000;
    const prng = new Prng(seed);
    const stream = new TextEncoder().encode(expected.join("\n") + "\n");
    try {
      for (let round = 0; round < 50; round++) {
        const cuts: number[] = [];
        for (let at = prng.int(4000); at < stream.length; at += 1 + prng.int(4000)) cuts.push(at);
        expect(feed(stream, cuts)).toEqual(expected);
      }
    } catch (err) {
      console.error(`createJsonSplitter random chunking failed: reproduce with seed=${seed}`);
      throw err;
    }
  });

  test("the whole stream in one chunk", () => {
    expect(feed(new TextEncoder().encode(expected.join("\n")), [])).toEqual(expected);
  });

  test("bytes between messages that are not whitespace are an error", () => {
    const split = createJsonSplitter();
    expect(() => split(new TextEncoder().encode('{"a":1}\nx{"b":2}'))).toThrow("between JSON messages");
  });
});

describe("prefixRangeEnd", () => {
  test("increments the last byte of the key's UTF-8", () => {
    expect(fromB64(prefixRangeEnd("jobs/")).toString()).toBe("jobs0");
    expect([...fromB64(prefixRangeEnd("é"))]).toEqual([0xc3, 0xaa]);
  });

  test("the empty prefix means every key", () => {
    expect([...fromB64(prefixRangeEnd(""))]).toEqual([0]);
  });
});

if (!etcdAvailable()) console.warn("etcd-client.test.ts: no etcd binary (/usr/bin/etcd or etcd on PATH): skipping the tests against a real etcd (apt-get install etcd-server)");

describe.skipIf(!etcdAvailable())("EtcdClient against a real etcd", () => {
  let etcd: EtcdServer;
  let client: EtcdClient;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new EtcdClient([etcd.endpoint]);
  }, ETCD_TEST_TIMEOUT_MS);

  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  test("a 1 s lease holds while kept alive, and its key goes when it expires", async () => {
    const lease = await client.grantLease(1);
    expect(lease.id).not.toBe("0");
    expect(lease.ttlS).toBeGreaterThanOrEqual(1);
    expect(await client.keepAlive(lease.id)).toBeGreaterThan(0);

    await client.put("lease/held", "v", lease.id);
    expect((await client.get("lease/held")).kv?.lease).toBe(lease.id);

    await until("the leased key to expire", async () => ((await client.get("lease/held")).kv === undefined ? true : undefined), LEASE_GONE_DEADLINE_MS);
    expect(await client.keepAlive(lease.id)).toBeLessThanOrEqual(0);
    await client.revoke(lease.id); // already gone: not an error
  }, ETCD_TEST_TIMEOUT_MS);

  test("revoke removes the lease's keys at once, and keepAlive then reports it gone", async () => {
    const lease = await client.grantLease(30);
    await client.put("lease/revoked", "v", lease.id);
    await client.revoke(lease.id);
    expect((await client.get("lease/revoked")).kv).toBeUndefined();
    expect(await client.keepAlive(lease.id)).toBeLessThanOrEqual(0);
  });

  test("put, get and delete report revisions and the kv's fields", async () => {
    const { revision: created } = await client.put("kv/a", "one");
    const { revision: modified } = await client.put("kv/a", "two");
    expect(modified).toBe(created + 1);
    const { kv, revision } = await client.get("kv/a");
    expect(kv).toEqual({ key: "kv/a", value: "two", createRevision: created, modRevision: modified, version: 2, lease: "0" });
    expect(revision).toBe(modified);
    expect((await client.delete("kv/a")).revision).toBe(modified + 1);
    expect((await client.get("kv/a")).kv).toBeUndefined();
  });

  test("txn create-if-absent (CREATE == 0) succeeds once, then fails and shows the winner", async () => {
    const createIfAbsent = (value: string) =>
      client.txn([{ key: "txn/owner", target: "CREATE", result: "EQUAL", createRevision: 0 }], [{ put: { key: "txn/owner", value } }], [{ range: { key: "txn/owner" } }]);
    const first = await createIfAbsent("a");
    expect(first).toMatchObject({ succeeded: true, responses: [[]] });
    const second = await createIfAbsent("b");
    expect(second.succeeded).toBe(false);
    expect(second.revision).toBe(first.revision);
    expect(second.responses[0]?.[0]).toMatchObject({ key: "txn/owner", value: "a", modRevision: first.revision });
  });

  test("txn compare-and-swap on MOD revision: the stale writer loses", async () => {
    const { revision } = await client.put("txn/cas", "v1");
    const swap = (value: string) => client.txn([{ key: "txn/cas", target: "MOD", result: "EQUAL", modRevision: revision }], [{ put: { key: "txn/cas", value } }]);
    expect((await swap("v2")).succeeded).toBe(true);
    const stale = await swap("v3");
    expect(stale).toEqual({ succeeded: false, revision: revision + 1, responses: [] });
    expect((await client.get("txn/cas")).kv?.value).toBe("v2");
  });

  test("txn VALUE and LEASE compares, and prefix ops in a branch", async () => {
    await client.put("txn/p/1", "x");
    await client.put("txn/p/2", "y");
    const result = await client.txn(
      [{ key: "txn/p/1", target: "VALUE", result: "EQUAL", value: "x" }, { key: "txn/p/1", target: "LEASE", result: "EQUAL", lease: "0" }],
      [{ range: { key: "txn/p/", prefix: true } }, { deleteRange: { key: "txn/p/", prefix: true } }],
    );
    expect(result.succeeded).toBe(true);
    expect(result.responses.map((r) => r.map((kv) => kv.value))).toEqual([["x", "y"], []]);
    expect((await client.getPrefix("txn/p/")).kvs).toEqual([]);
  });

  test("getPrefix returns only the keys under the prefix, in key order", async () => {
    await client.put("pre/b", "2");
    await client.put("pre/a", "1");
    await client.put("pre", "not under pre/");
    const { revision: last } = await client.put("prf", "not under pre/ either");
    const { kvs, revision } = await client.getPrefix("pre/");
    expect(kvs.map((kv) => [kv.key, kv.value])).toEqual([["pre/a", "1"], ["pre/b", "2"]]);
    expect(revision).toBe(last);
  });

  test("watchPrefix streams PUT and DELETE with their revisions, from fromRevision inclusive, large and non-ASCII values whole", async () => {
    const { revision: from } = await client.put("w/before", "seen, since fromRevision is inclusive");
    const events: { event: EtcdWatchEvent; revision: number }[] = [];
    const errors: Error[] = [];
    const watch = client.watchPrefix("w/", from, (batch, revision) => events.push(...batch.map((event) => ({ event, revision }))), (err) => errors.push(err));
    try {
      const nonAscii = "héllo ✓ 日本語 🎉 \"quoted\" {braces}";
      const large = "é日".repeat(20_000); // 100 KB of UTF-8: spans many chunks, with characters cut between them
      const r1 = (await client.put("w/text", nonAscii)).revision;
      const r2 = (await client.put("w/large", large)).revision;
      const r3 = (await client.delete("w/text")).revision;
      await client.put("elsewhere", "not under w/");
      await until("4 watch events", () => (events.length >= 4 || errors.length > 0 ? true : undefined), WATCH_DEADLINE_MS);
      expect(errors).toEqual([]);
      expect(events.map(({ event }) => [event.type, event.kv.key, event.kv.modRevision])).toEqual([
        ["PUT", "w/before", from], ["PUT", "w/text", r1], ["PUT", "w/large", r2], ["DELETE", "w/text", r3],
      ]);
      expect(events[1]?.event.kv.value).toBe(nonAscii);
      expect(events[2]?.event.kv.value).toBe(large);
      expect(events[2]?.event.kv.createRevision).toBe(r2);
      for (const { event, revision } of events) expect(revision).toBeGreaterThanOrEqual(event.kv.modRevision);
    } finally {
      watch.close();
    }
  });

  test("watchPrefix from a compacted revision calls onError once, naming the compaction", async () => {
    await client.put("compact/a", "1");
    const { revision } = await client.put("compact/a", "2");
    const res = await fetch(`${etcd.endpoint}/v3/kv/compaction`, { method: "POST", body: JSON.stringify({ revision: String(revision) }) });
    expect(res.ok).toBe(true);
    const errors: Error[] = [];
    client.watchPrefix("compact/", revision - 1, () => {}, (err) => errors.push(err));
    const err = await until("the watch to fail", () => errors[0], WATCH_DEADLINE_MS);
    expect(err).toBeInstanceOf(EtcdError);
    expect((err as EtcdError).code).toBe("E_ETCD");
    expect(err.message).toContain("compacted");
    await client.get("compact/a"); // one more round trip: a second onError would have had time to come
    expect(errors.length).toBe(1);
  });

  test("close() stops watches without calling onError", async () => {
    const own = new EtcdClient([etcd.endpoint]);
    const seen: EtcdWatchEvent[] = [];
    const errors: Error[] = [];
    const { revision } = await client.put("closed/a", "1");
    own.watchPrefix("closed/", revision, (batch) => seen.push(...batch), (err) => errors.push(err));
    await until("the first event", () => (seen.length > 0 ? true : undefined), WATCH_DEADLINE_MS);
    own.close();
    await client.put("closed/a", "2");
    await client.get("closed/a");
    expect(seen.length).toBe(1);
    expect(errors).toEqual([]);
  });

  test("a watch whose etcd dies calls onError once with E_ETCD_UNAVAILABLE", async () => {
    const doomed = await startEtcd(); // its own etcd: the shared one must outlive this test
    const own = new EtcdClient([doomed.endpoint]);
    try {
      const seen: EtcdWatchEvent[] = [];
      const errors: Error[] = [];
      const { revision } = await own.put("dies/a", "1");
      own.watchPrefix("dies/", revision, (batch) => seen.push(...batch), (err) => errors.push(err));
      await until("the first event", () => (seen.length > 0 ? true : undefined), WATCH_DEADLINE_MS);
      await doomed.stop();
      const err = await until("the watch to fail", () => errors[0], WATCH_DEADLINE_MS);
      expect((err as EtcdError).code).toBe("E_ETCD_UNAVAILABLE");
      expect(err.message).toContain(doomed.endpoint);
      await client.get("x"); // one more round trip: a second onError would have had time to come
      expect(errors.length).toBe(1);
    } finally {
      own.close();
      await doomed.stop();
    }
  }, ETCD_TEST_TIMEOUT_MS);

  test("an HTTP error from etcd is E_ETCD and names the endpoint", async () => {
    const err = await rejection(client.txn([], [{ put: { key: "dup", value: "1" } }, { put: { key: "dup", value: "2" } }]));
    expect(err.code).toBe("E_ETCD");
    expect(err.message).toContain(etcd.endpoint);
    expect(err.message).toContain("duplicate key");
  });

  test("only a closed port: E_ETCD_UNAVAILABLE naming it", async () => {
    const dead = `127.0.0.1:${closedPort()}`;
    const err = await rejection(new EtcdClient([dead]).get("x"));
    expect(err.code).toBe("E_ETCD_UNAVAILABLE");
    expect(err.message).toContain(`http://${dead}`);
  });

  test("a dead first endpoint fails over to the second", async () => {
    const failover = new EtcdClient([`http://127.0.0.1:${closedPort()}`, etcd.endpoint]);
    await failover.put("failover/k", "v");
    expect((await failover.get("failover/k")).kv?.value).toBe("v");
  });

  test("an endpoint that never answers times out, and the one that answered is tried first afterwards", async () => {
    const timeoutMs = 300;
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }); // accepts, never replies
    try {
      const failover = new EtcdClient([`127.0.0.1:${silent.port}`, etcd.endpoint], { requestTimeoutMs: timeoutMs });
      let started = performance.now();
      await failover.get("x");
      expect(performance.now() - started).toBeGreaterThanOrEqual(timeoutMs - 10);
      started = performance.now();
      await failover.get("x");
      expect(performance.now() - started).toBeLessThan(timeoutMs);
    } finally {
      silent.stop(true);
    }
  });

  test("a hung etcd (SIGSTOP) gives E_ETCD_UNAVAILABLE after the request timeout", async () => {
    const hung = new EtcdClient([etcd.endpoint], { requestTimeoutMs: 300 });
    etcd.pause();
    try {
      const err = await rejection(hung.keepAlive("1"));
      expect(err.code).toBe("E_ETCD_UNAVAILABLE");
      expect(err.message).toContain("no answer within 300 ms");
    } finally {
      etcd.resume();
    }
    expect((await client.get("x")).kv).toBeUndefined();
  });
});
