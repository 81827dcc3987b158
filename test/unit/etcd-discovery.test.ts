// MemberDiscovery: the diffing by address as pure functions, then the whole
// class against a real etcd (list, watch, a cut watch followed by a new listing).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { EtcdClient, type EtcdKv, type EtcdWatchEvent } from "../../src/net/etcd-client.ts";
import { applyEvents, diffMembers, MemberDiscovery, membersOf, type DiscoveryStore } from "../../src/net/etcd-discovery.ts";
import { isrKey, leaderKey, memberKey, type MemberRecord } from "../../src/net/etcd-keys.ts";
import { etcdAvailable, startEtcd, type EtcdServer } from "../support/etcd-server.ts";

const P = "/t";

function member(shard: number, replicaId: string, address: string): MemberRecord {
  return { nodeId: `n-${replicaId}`, replicaId, address, shard };
}

function kv(key: string, value: string): EtcdKv {
  return { key, value, createRevision: 1, modRevision: 1, version: 1, lease: "0" };
}

function put(m: MemberRecord): EtcdWatchEvent {
  return { type: "PUT", kv: kv(memberKey(P, m.shard, m.replicaId), JSON.stringify(m)) };
}

function del(m: MemberRecord): EtcdWatchEvent {
  return { type: "DELETE", kv: kv(memberKey(P, m.shard, m.replicaId), "") };
}

const addresses = (ms: MemberRecord[]) => ms.map((m) => m.address).sort();

describe("member diffing", () => {
  const a = member(0, "r-a", "127.0.0.1:5000");
  const b = member(1, "r-b", "127.0.0.1:5001");
  const aAgain = member(0, "r-a2", "127.0.0.1:5000"); // a restarted without its data: new replica id, same address

  test("a listing keeps member keys only", () => {
    const members = membersOf([
      kv(memberKey(P, 0, "r-a"), JSON.stringify(a)),
      kv(leaderKey(P, 0), JSON.stringify({ nodeId: "x", replicaId: "r-a", address: a.address })),
      kv(isrKey(P, 0), JSON.stringify({ members: ["r-a"], epoch: 7 })),
      kv(memberKey(P, 1, "broken"), "{not json"),
    ]);
    expect([...members.keys()]).toEqual([memberKey(P, 0, "r-a")]);
  });

  test("from nothing every address is added; back to nothing every one is removed", () => {
    const all = applyEvents(new Map(), [put(a), put(b)]);
    expect(addresses(diffMembers(new Map(), all).added)).toEqual([a.address, b.address]);
    expect(diffMembers(new Map(), all).removed).toEqual([]);
    expect(addresses(diffMembers(all, new Map()).removed)).toEqual([a.address, b.address]);
  });

  test("an address two replica ids share is added once and removed when neither names it", () => {
    const one = applyEvents(new Map(), [put(a)]);
    const both = applyEvents(one, [put(aAgain)]);
    expect(diffMembers(one, both)).toEqual({ added: [], removed: [] });
    const newOnly = applyEvents(both, [del(a)]);
    expect(diffMembers(both, newOnly)).toEqual({ added: [], removed: [] });
    const none = applyEvents(newOnly, [del(aAgain)]);
    expect(diffMembers(newOnly, none)).toEqual({ added: [], removed: [aAgain] });
  });

  test("both replica ids in one batch: one add; one of them put again: nothing", () => {
    const both = applyEvents(new Map(), [put(a), put(aAgain)]);
    expect(diffMembers(new Map(), both).added).toEqual([a]); // the smaller key's record, whatever the order
    expect(diffMembers(new Map(), applyEvents(new Map(), [put(aAgain), put(a)])).added).toEqual([a]);
    expect(diffMembers(both, applyEvents(both, [put(a)]))).toEqual({ added: [], removed: [] });
  });

  test("a member key overwritten with something unreadable counts as deleted", () => {
    const one = applyEvents(new Map(), [put(a)]);
    const garbled = applyEvents(one, [{ type: "PUT", kv: kv(memberKey(P, 0, "r-a"), "garbage") }]);
    expect(diffMembers(one, garbled).removed).toEqual([a]);
  });

  test("a member that moves to another address: the old address goes, the new one comes", () => {
    const one = applyEvents(new Map(), [put(a)]);
    const moved = applyEvents(one, [put({ ...a, address: "127.0.0.1:6000" })]);
    const d = diffMembers(one, moved);
    expect(addresses(d.added)).toEqual(["127.0.0.1:6000"]);
    expect(addresses(d.removed)).toEqual([a.address]);
  });

  test("a delete of a key never seen and a re-list that changed nothing report nothing", () => {
    const one = applyEvents(new Map(), [put(a)]);
    expect(diffMembers(one, applyEvents(one, [del(b)]))).toEqual({ added: [], removed: [] });
    expect(diffMembers(one, new Map(one))).toEqual({ added: [], removed: [] });
  });
});

// ---------------------------------------------------------------- against etcd

if (!etcdAvailable()) console.warn("SKIP MemberDiscovery against etcd: no etcd binary (Debian: apt-get install etcd-server)");

describe.skipIf(!etcdAvailable())("MemberDiscovery against etcd", () => {
  const QUIET = new Logger("test", "error");
  const WAIT_MS = 5_000;
  let etcd: EtcdServer;
  let client: EtcdClient;
  beforeAll(async () => {
    etcd = await startEtcd();
    client = new EtcdClient([etcd.endpoint]);
  });
  afterAll(async () => {
    client?.close();
    await etcd?.stop();
  });

  /** What discovery has reported so far, and a way to wait for a state of it. */
  function recorder() {
    const live = new Set<string>();
    const log: string[] = [];
    return {
      live,
      log,
      events: {
        onAdd: (m: MemberRecord) => {
          log.push(`+${m.address}`);
          live.add(m.address);
        },
        onRemove: (m: MemberRecord) => {
          log.push(`-${m.address}`);
          live.delete(m.address);
        },
      },
      async until(what: string, check: () => boolean): Promise<void> {
        const deadline = Date.now() + WAIT_MS;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; reported: ${log.join(" ")}`);
          await Bun.sleep(5);
        }
      },
    };
  }

  const register = (prefix: string, m: MemberRecord) => client.put(memberKey(prefix, m.shard, m.replicaId), JSON.stringify(m));
  const unregister = (prefix: string, m: MemberRecord) => client.delete(memberKey(prefix, m.shard, m.replicaId));

  test("lists what is there, then follows puts and deletes; a shared address is reported once", async () => {
    const prefix = "/watch-case";
    const a = member(0, "r-a", "127.0.0.1:7000");
    const b = member(1, "r-b", "127.0.0.1:7001");
    const aAgain = member(0, "r-a2", "127.0.0.1:7000");
    await register(prefix, a);
    await client.put(leaderKey(prefix, 0), JSON.stringify({ nodeId: "n", replicaId: "r-a", address: a.address }));
    await client.put(`${prefix}-other/shards/0/members/x`, JSON.stringify(member(0, "x", "127.0.0.1:1"))); // another cluster's prefix
    const r = recorder();
    const discovery = new MemberDiscovery(client, prefix, r.events, QUIET);
    discovery.start();
    try {
      await r.until("the listed member", () => r.live.has(a.address));
      await register(prefix, b);
      await r.until("a member put after the listing", () => r.live.has(b.address));
      await register(prefix, aAgain);
      await unregister(prefix, a);
      await unregister(prefix, b);
      await r.until("b removed", () => !r.live.has(b.address));
      expect(r.live.has(a.address)).toBe(true); // still named by r-a2
      await unregister(prefix, aAgain);
      await r.until("the shared address removed", () => r.live.size === 0);
      expect(r.log).toEqual([`+${a.address}`, `+${b.address}`, `-${b.address}`, `-${a.address}`]);
    } finally {
      discovery.close();
    }
  });

  test("a cut watch is followed by a new listing, and what changed meanwhile is reported", async () => {
    const prefix = "/cut-case";
    const a = member(0, "r-a", "127.0.0.1:7100");
    const b = member(1, "r-b", "127.0.0.1:7101");
    const c = member(2, "r-c", "127.0.0.1:7102");
    await register(prefix, a);
    await register(prefix, b);
    // The store hands out the real listing and watch, but the test can fail the watch and hold the next listing.
    let lists = 0;
    let cut: (() => void) | undefined;
    const listingHeld = Promise.withResolvers<void>();
    const store: DiscoveryStore = {
      getPrefix: async (p) => {
        if (++lists === 2) await listingHeld.promise;
        return client.getPrefix(p);
      },
      watchPrefix: (p, from, onEvents, onError) => {
        const w = client.watchPrefix(p, from, onEvents, onError);
        cut = () => {
          w.close();
          onError(new Error("cut by the test"));
        };
        return w;
      },
    };
    const r = recorder();
    const discovery = new MemberDiscovery(store, prefix, r.events, QUIET, { retryMinMs: 10, retryMaxMs: 20, resyncMs: 60_000 });
    discovery.start();
    try {
      await r.until("both listed", () => r.live.size === 2);
      await r.until("the watch to be open", () => cut !== undefined);
      cut!();
      await r.until("the second listing to be asked for", () => lists === 2);
      await unregister(prefix, b);
      await register(prefix, c);
      listingHeld.resolve();
      await r.until("the difference reported", () => r.live.has(c.address) && !r.live.has(b.address));
      expect([...r.live].sort()).toEqual([a.address, c.address]);
      // And the new watch runs from that listing on.
      await unregister(prefix, a);
      await r.until("a removed through the new watch", () => !r.live.has(a.address));
      expect(lists).toBe(2);
      expect(r.log).toEqual([`+${a.address}`, `+${b.address}`, `-${b.address}`, `+${c.address}`, `-${a.address}`]);
    } finally {
      discovery.close();
    }
  });

  test("nothing is removed while etcd cannot be reached", async () => {
    const prefix = "/outage-case";
    const a = member(0, "r-a", "127.0.0.1:7200");
    await register(prefix, a);
    let failing = false;
    let cut: (() => void) | undefined;
    let failedLists = 0;
    const store: DiscoveryStore = {
      getPrefix: async (p) => {
        if (failing) {
          failedLists++;
          throw new Error("etcd unreachable (test)");
        }
        return client.getPrefix(p);
      },
      watchPrefix: (p, from, onEvents, onError) => {
        const w = client.watchPrefix(p, from, onEvents, onError);
        cut = () => {
          w.close();
          onError(new Error("cut by the test"));
        };
        return w;
      },
    };
    const r = recorder();
    const discovery = new MemberDiscovery(store, prefix, r.events, QUIET, { retryMinMs: 5, retryMaxMs: 10, resyncMs: 60_000 });
    discovery.start();
    try {
      await r.until("a listed", () => r.live.has(a.address));
      await r.until("the watch to be open", () => cut !== undefined);
      failing = true;
      cut!();
      await r.until("three failed listings", () => failedLists >= 3);
      expect(r.log).toEqual([`+${a.address}`]);
      failing = false;
      await unregister(prefix, a);
      await r.until("a removed once etcd answers again", () => r.live.size === 0);
    } finally {
      discovery.close();
    }
  });
});
