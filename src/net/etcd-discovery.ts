// Which coordinators exist, from etcd: list <prefix>/shards/ once, then watch it,
// and report each coordinator address as it appears and goes. Routers and workers
// dial what it reports; who is primary they still learn from WELCOME and ROLE.

import type { FlagSpec, FlagValues } from "../cli/flags.ts";
import type { Logger } from "../cli/log.ts";
import { backoffDelayMs } from "./backoff.ts";
import { EtcdClient, type EtcdKv, type EtcdWatchEvent } from "./etcd-client.ts";
import { DEFAULT_ETCD_PREFIX, parseEtcdEndpoints, parseMember, shardsPrefix, type MemberRecord } from "./etcd-keys.ts";
import { parseHostPort, type HostPort } from "./endpoints.ts";

/** First and longest wait before listing again after a failed list or watch. */
export const DISCOVERY_RETRY_MIN_MS = 100;
export const DISCOVERY_RETRY_MAX_MS = 5_000;
/**
 * A watch whose connection hangs (etcd paused, a partition without a reset)
 * reports nothing and no error: listing again this often bounds how long a
 * change can go unseen.
 */
export const DISCOVERY_RESYNC_MS = 30_000;

export const ETCD_DISCOVERY_FLAGS: readonly FlagSpec[] = [
  {
    name: "etcd", meaning: "etcd endpoints, comma-separated: where the cluster's coordinators are registered (and, for a coordinator, led)", type: "string", default: "",
    help: `comma-separated etcd endpoints (host:port or URL): coordinators are found under <etcd-prefix>/shards/<shard>/members/ and dialled or dropped as they come and go (listed again after a watch error, backing off ${DISCOVERY_RETRY_MIN_MS} ms to ${DISCOVERY_RETRY_MAX_MS} ms, and every ${DISCOVERY_RESYNC_MS / 1000} s)`,
  },
  { name: "etcd-prefix", meaning: "the cluster's key prefix in etcd", type: "string", default: DEFAULT_ETCD_PREFIX, help: "the cluster's key prefix in etcd (with --etcd)" },
];

export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
}

/** --etcd / --etcd-prefix; undefined without --etcd. */
export function etcdSettings(v: FlagValues): EtcdSettings | undefined {
  const endpoints = parseEtcdEndpoints((v.etcd as string | undefined) ?? "");
  if (endpoints.length === 0) return undefined;
  const prefix = ((v["etcd-prefix"] as string | undefined) ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, "");
  if (!prefix.startsWith("/")) throw new Error(`--etcd-prefix "${v["etcd-prefix"]}" must start with /`);
  return { endpoints, prefix };
}

/** etcd key -> the member registered there. */
export type MemberMap = ReadonlyMap<string, MemberRecord>;

export interface MemberChanges {
  /** Addresses no key named before and one does now (one record each). */
  added: MemberRecord[];
  /** Addresses a key named before and none does now (the last record that named it). */
  removed: MemberRecord[];
}

/** The members among the keys of a listing; other keys (leader, isr) and unreadable records are left out. */
export function membersOf(kvs: readonly EtcdKv[]): Map<string, MemberRecord> {
  const members = new Map<string, MemberRecord>();
  for (const kv of kvs) {
    const m = parseMember(kv.key, kv.value);
    if (m !== undefined) members.set(kv.key, m);
  }
  return members;
}

/** The members after a batch of watch events: a put that is no member record (any more) removes its key. */
export function applyEvents(members: MemberMap, events: readonly EtcdWatchEvent[]): Map<string, MemberRecord> {
  const next = new Map(members);
  for (const e of events) {
    const m = e.type === "PUT" ? parseMember(e.kv.key, e.kv.value) : undefined;
    if (m !== undefined) next.set(e.kv.key, m);
    else next.delete(e.kv.key);
  }
  return next;
}

/**
 * What changed between two member maps, by address: a node restarted without
 * its data registers a new replica id at the same address, and the old key lives
 * on until its lease ends; the address is one coordinator to dial all along.
 */
export function diffMembers(before: MemberMap, after: MemberMap): MemberChanges {
  const was = byAddress(before);
  const is = byAddress(after);
  return {
    added: [...is].filter(([address]) => !was.has(address)).map(([, m]) => m),
    removed: [...was].filter(([address]) => !is.has(address)).map(([, m]) => m),
  };
}

/** One record per address: the one under the smallest key, so the choice does not depend on arrival order. */
function byAddress(members: MemberMap): Map<string, MemberRecord> {
  const out = new Map<string, MemberRecord>();
  for (const key of [...members.keys()].sort()) {
    const m = members.get(key)!;
    if (!out.has(m.address)) out.set(m.address, m);
  }
  return out;
}

/** The part of EtcdClient discovery uses (a test wraps it to cut the watch). */
export type DiscoveryStore = Pick<EtcdClient, "getPrefix" | "watchPrefix">;

export interface DiscoveryEvents {
  onAdd(member: MemberRecord): void;
  onRemove(member: MemberRecord): void;
}

export interface DiscoveryOptions {
  retryMinMs: number;
  retryMaxMs: number;
  resyncMs: number;
}

const DEFAULT_OPTIONS: DiscoveryOptions = { retryMinMs: DISCOVERY_RETRY_MIN_MS, retryMaxMs: DISCOVERY_RETRY_MAX_MS, resyncMs: DISCOVERY_RESYNC_MS };

/**
 * Lists the members, reports every address, then watches from the listing's
 * revision + 1. A failed list or watch is followed by a new listing after a
 * backoff, and the difference from what was reported is reported. While etcd
 * cannot be reached nothing is removed: an etcd outage is no coordinator outage.
 */
export class MemberDiscovery {
  private members: MemberMap = new Map();
  private watch: { close(): void } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  /** Bumped by every listing: answers and events of a superseded one are ignored. */
  private generation = 0;
  private closed = false;

  constructor(
    private readonly store: DiscoveryStore,
    private readonly prefix: string,
    private readonly events: DiscoveryEvents,
    private readonly log: Logger,
    private readonly options: DiscoveryOptions = DEFAULT_OPTIONS,
  ) {}

  start(): void {
    void this.sync();
  }

  close(): void {
    this.closed = true;
    this.generation++;
    clearTimeout(this.timer);
    this.watch?.close();
    this.watch = undefined;
  }

  private async sync(): Promise<void> {
    clearTimeout(this.timer);
    this.watch?.close();
    this.watch = undefined;
    const generation = ++this.generation;
    let listing: { kvs: EtcdKv[]; revision: number };
    try {
      listing = await this.store.getPrefix(shardsPrefix(this.prefix));
    } catch (err) {
      if (generation === this.generation) this.retryLater(`cannot list members: ${(err as Error).message}`);
      return;
    }
    if (generation !== this.generation) return;
    this.update(membersOf(listing.kvs));
    this.watch = this.store.watchPrefix(
      shardsPrefix(this.prefix),
      listing.revision + 1,
      (events) => {
        if (generation !== this.generation) return;
        this.failures = 0;
        this.update(applyEvents(this.members, events));
      },
      (err) => {
        if (generation === this.generation) this.retryLater(`member watch failed: ${err.message}`);
      },
    );
    this.timer = setTimeout(() => {
      this.failures = 0; // a watch that lived this long was healthy
      void this.sync();
    }, this.options.resyncMs);
  }

  private retryLater(reason: string): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.watch = undefined;
    const delayMs = backoffDelayMs(this.failures++, this.options.retryMinMs, this.options.retryMaxMs, Math.random());
    // Loud the first time and now and then after, not on every retry of a long outage.
    const level = this.failures === 1 || this.failures % 20 === 0 ? "warn" : "debug";
    this.log[level]("etcd discovery", { reason, retryInMs: delayMs, failures: this.failures });
    this.timer = setTimeout(() => void this.sync(), delayMs);
  }

  private update(next: MemberMap): void {
    const { added, removed } = diffMembers(this.members, next);
    this.members = next;
    for (const m of removed) this.report("coordinator gone from etcd", m, this.events.onRemove);
    for (const m of added) this.report("coordinator found in etcd", m, this.events.onAdd);
  }

  private report(event: string, m: MemberRecord, callback: (m: MemberRecord) => void): void {
    this.log.info(event, { address: m.address, shard: m.shard, replicaId: m.replicaId, nodeId: m.nodeId });
    try {
      callback.call(this.events, m);
    } catch (err) {
      // A caller's bug must not stop discovery (a throw inside the watch callback would end the watch).
      this.log.error("etcd discovery callback failed", { address: m.address, error: (err as Error).message });
    }
  }
}

/** A router's or worker's coordinator set as etcd changes it. */
export interface CoordinatorSet {
  add(address: HostPort): void;
  remove(address: HostPort): void;
}

/**
 * Discovery for a router or worker: dial what appears, drop what goes, but
 * never drop an address given on the command line (`pinned`).
 */
export function followCoordinators(settings: EtcdSettings, pinned: readonly HostPort[], log: Logger, set: CoordinatorSet): { close(): void } {
  const client = new EtcdClient(settings.endpoints);
  const label = (a: HostPort) => `${a.host}:${a.port}`;
  const pinnedLabels = new Set(pinned.map(label));
  const address = (m: MemberRecord): HostPort | undefined => {
    try {
      return parseHostPort(m.address);
    } catch (err) {
      log.warn("etcd member has an unusable address", { replicaId: m.replicaId, shard: m.shard, error: (err as Error).message });
      return undefined;
    }
  };
  const discovery = new MemberDiscovery(client, settings.prefix, {
    onAdd: (m) => {
      const a = address(m);
      if (a !== undefined) set.add(a);
    },
    onRemove: (m) => {
      const a = address(m);
      if (a !== undefined && !pinnedLabels.has(label(a))) set.remove(a);
    },
  }, log);
  discovery.start();
  return {
    close: () => {
      discovery.close();
      client.close();
    },
  };
}
