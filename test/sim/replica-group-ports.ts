// The simulated world as the real EtcdControl and IsrReplicaSet see it
// (src/coordinator/control-ports.ts): a node's monotonic clock, timers that
// die with its incarnation, etcd calls and watches that cross the simulated
// network (World.etcdCall, World.watch) to SimEtcd, and a Logger whose lines
// become the trace and the coverage counts. The promises the ports return are
// settled inside world events; World.runUntil drains the microtask queue after
// each event, so their continuations run at once, in a replayable order.

import { drainMicrotasks } from "bun:jsc";
import { Logger } from "../../src/cli/log.ts";
import type { Clock, EtcdPort, Timers } from "../../src/coordinator/control-ports.ts";
import { etcdRequestTimeoutMs } from "../../src/coordinator/etcd-control.ts";
import type { EtcdCompare, EtcdKv, EtcdOp, EtcdWatchEvent } from "../../src/net/etcd-client.ts";
import { isrKey, leaderKey, memberKey, type IsrRecord, type LeaderRecord } from "../../src/net/etcd-keys.ts";
import type { SimCompare, SimEtcd, SimKv, SimOp } from "./replica-group-etcd.ts";
import type { SimNode } from "./replica-group-node.ts";
import type { WatchHandle } from "./replica-group-world.ts";

export { drainMicrotasks };

/** What main.ts gives EtcdControl, as the simulation runs it. */
export const CONTROL = {
  prefix: "/sim",
  shard: 0,
  leaseTtlMs: 1_000,
  maxClockOffsetMs: 500,
  requestTimeoutMs: etcdRequestTimeoutMs(1_000),
  /** CoordinatorLink's redial backoff and the HELLO time-out. */
  reconnectMinMs: 50, reconnectMaxMs: 1_000, helloTimeoutMs: 1_000,
};

export const KEYS = {
  leader: leaderKey(CONTROL.prefix, CONTROL.shard),
  isr: isrKey(CONTROL.prefix, CONTROL.shard),
  member: (replicaId: string) => memberKey(CONTROL.prefix, CONTROL.shard, replicaId),
};

/** The ISR a key holds (what checkers and the drain read of etcd). */
export function isrMembersOf(kv: SimKv | undefined): string[] | undefined {
  return kv === undefined ? undefined : (JSON.parse(kv.value as string) as IsrRecord).members;
}

export function leaderReplicaIdOf(kv: SimKv): string {
  return (JSON.parse(kv.value as string) as LeaderRecord).replicaId;
}

export function simClock(node: SimNode): Clock {
  return { now: () => node.mono() };
}

/** Timers of the node's current incarnation: late when it is paused, never once it crashed. */
export function simTimers(node: SimNode): Timers {
  const world = node.cluster.world;
  return {
    after: (ms, fn) => world.timer(node, ms, fn),
    every: (ms, fn) => {
      let running = true;
      const next = () => world.timer(node, ms, () => {
        if (!running) return;
        fn();
        next();
      });
      next();
      return () => void (running = false);
    },
  };
}

function toEtcdKv(kv: SimKv): EtcdKv {
  return { key: kv.key, value: kv.value as string, createRevision: kv.createRevision, modRevision: kv.modRevision, version: 1, lease: kv.lease === 0 ? "0" : String(kv.lease) };
}

function toSimCompare(c: EtcdCompare): SimCompare {
  if (c.result !== "EQUAL" || (c.target !== "CREATE" && c.target !== "MOD")) throw new Error(`the simulated etcd has no ${c.target} ${c.result} compare`);
  return { key: c.key, target: c.target, equals: (c.target === "CREATE" ? c.createRevision : c.modRevision) ?? 0 };
}

function toSimOp(op: EtcdOp): SimOp {
  if ("put" in op) return { put: { key: op.put.key, value: op.put.value, lease: op.put.lease === undefined ? 0 : Number(op.put.lease) } };
  if ("deleteRange" in op && op.deleteRange.prefix !== true) return { del: op.deleteRange.key };
  throw new Error("the simulated etcd has no range or prefix delete in a txn");
}

/** EtcdClient for one node: each call crosses the network both ways and may time out after etcd applied it. */
export function simEtcdPort(node: SimNode): EtcdPort {
  const world = node.cluster.world;
  const stats = node.cluster.stats;
  /** The watch a reload closed last: its read may be older than a change the closed watch missed. */
  let closedWatch: WatchHandle | undefined;
  const call = <R>(op: (etcd: SimEtcd, now: number) => R, onGiveUp?: () => void): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      world.etcdCall(node, CONTROL.requestTimeoutMs, op, resolve, (why) => {
        onGiveUp?.();
        reject(new Error(why));
      });
    });
  return {
    grantLease: (ttlS) => call((e, now) => e.grant(ttlS * 1000, now)).then((g) => ({ id: String(g.id), ttlS: g.ttlMs / 1000 })),
    keepAlive: (id) => call((e, now) => e.keepAlive(Number(id), now)).then((ttlMs) => ttlMs / 1000),
    revoke: (id) => call((e) => e.revoke(Number(id))),
    get: (key) => call((e) => {
      const kv = e.get(key);
      return { kv: kv && toEtcdKv(kv), revision: e.revision };
    }),
    getPrefix: (prefix) => call((e) => {
      const { kvs, revision } = e.range();
      return { kvs: kvs.filter((kv) => kv.key.startsWith(prefix)).map(toEtcdKv), revision };
    }).then((read) => {
      // The race the closed old watch no longer runs: a change newer than this read, which it could have delivered first.
      if (closedWatch !== undefined && closedWatch.missedRevision > read.revision) {
        stats.readsRacedByOldWatch++;
        node.trace(`read at revision ${read.revision}, older than revision ${closedWatch.missedRevision} its closed old watch missed`);
      }
      return read;
    }),
    put: (key, value, lease) => call((e) => ({ revision: e.put(key, value, lease === undefined ? 0 : Number(lease)) })),
    txn: (compares, success, failure = []) => {
      if (failure.length > 0) throw new Error("the simulated etcd has no failure branch");
      const isrWrite = success.some((op) => "put" in op && op.put.key === KEYS.isr);
      /** The caller has heard "unanswered": from here on, a read-back cannot tell whether the txn takes. */
      let gaveUp = false;
      return call((e) => {
        const res = e.txn(compares.map(toSimCompare), success.map(toSimOp));
        if (gaveUp && isrWrite) {
          stats.isrWritesLate++;
          node.trace(`an ISR change reached etcd after "unanswered": ${res.succeeded ? `applied (revision ${res.revision})` : "refused"}`);
        }
        return { ...res, responses: [] };
      }, () => void (gaveUp = true));
    },
    watchPrefix: (prefix, fromRevision, onEvents, onError) => {
      const handle = world.watch(node, CONTROL.requestTimeoutMs, fromRevision, (events) => {
        const mine: EtcdWatchEvent[] = events.filter((e) => e.kv.key.startsWith(prefix)).map((e) => ({ type: e.type, kv: toEtcdKv(e.kv) }));
        if (mine.length > 0) onEvents(mine, mine.at(-1)!.kv.modRevision);
      }, () => onError(new Error("watch broken")));
      return {
        close: () => {
          handle.close();
          closedWatch = handle;
        },
      };
    },
    close: () => undefined,
  };
}

/** The control's and replica set's log lines, as trace lines and as coverage counts. */
export function simLogger(node: SimNode): Logger {
  return new Logger(node.name, "debug", (line) => {
    const { event, level: _level, ts: _ts, component: _component, ...fields } = JSON.parse(line) as Record<string, unknown> & { event: string };
    node.logged(event, fields);
  });
}
