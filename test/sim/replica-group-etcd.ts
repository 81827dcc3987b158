// etcd as the replica group simulation needs it (replica-group-sim.test.ts): one
// KV store with a global revision, keys with create/mod revisions and a lease,
// leases that expire on etcd's clock (the sim's time) unless kept alive, a txn
// of compares and puts/deletes, and a change history that watches replay from a
// revision. Only what etcd-control.ts relies on, with etcd's semantics for it:
// a keep-alive's TTL runs from when etcd *processes* it, one revision per write,
// and a lease's keys go (in one revision) when it expires or is revoked.

export interface SimKv {
  key: string;
  value: unknown;
  createRevision: number;
  modRevision: number;
  /** 0: no lease. */
  lease: number;
}

export interface SimWatchEvent {
  type: "PUT" | "DELETE";
  kv: SimKv;
}

export interface SimCompare {
  key: string;
  target: "CREATE" | "MOD";
  equals: number;
}

export type SimOp = { put: { key: string; value: unknown; lease?: number } } | { del: string };

/** An etcd call that cannot be served (as etcd's "requested lease not found"): the client sees an error. */
export class SimEtcdError extends Error {}

interface Lease {
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
}

export class SimEtcd {
  revision = 1;
  private readonly kvs = new Map<string, SimKv>();
  private readonly leases = new Map<number, Lease>();
  private nextLeaseId = 1;
  /** Every change, grouped by revision, for watches that start in the past. */
  readonly history: Array<{ revision: number; events: SimWatchEvent[] }> = [];
  /** The lease each leader key (by create revision, i.e. epoch) sat on: checker 2 asks whether it still lives. */
  private readonly epochLease = new Map<number, number>();
  /** Called once per revision that changed something. */
  onChange: (revision: number, events: SimWatchEvent[]) => void = () => undefined;

  constructor(private readonly leaderKey: string) {}

  grant(ttlMs: number, now: number): { id: number; ttlMs: number } {
    const id = this.nextLeaseId++;
    this.leases.set(id, { ttlMs, expiresAt: now + ttlMs, keys: new Set() });
    return { id, ttlMs };
  }

  /** The TTL now granted (from `now`, when etcd got the keep-alive), or 0 when the lease is gone. */
  keepAlive(id: number, now: number): number {
    const lease = this.leases.get(id);
    if (lease === undefined) return 0;
    lease.expiresAt = Math.max(lease.expiresAt, now + lease.ttlMs);
    return lease.ttlMs;
  }

  revoke(id: number): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    this.leases.delete(id);
    const events: SimWatchEvent[] = [];
    for (const key of lease.keys) events.push(this.remove(key, this.revision + 1));
    if (events.length > 0) this.commit(events);
  }

  /** Leases whose TTL ran out by `now` are revoked (called before anything else happens at `now`). */
  expire(now: number): void {
    for (const [id, lease] of this.leases) if (lease.expiresAt <= now) this.revoke(id);
  }

  /** etcd's leader changed: the new one gives every lease a fresh TTL (as etcd's lessor does on promotion). */
  refreshLeases(now: number): void {
    for (const lease of this.leases.values()) lease.expiresAt = Math.max(lease.expiresAt, now + lease.ttlMs);
  }

  leaseAlive(id: number): boolean {
    return this.leases.has(id);
  }

  /** Whether the lease under the leader key of `epoch` still lives: that leader may still act. */
  epochLeaseAlive(epoch: number): boolean {
    const lease = this.epochLease.get(epoch);
    return lease !== undefined && this.leases.has(lease);
  }

  get(key: string): SimKv | undefined {
    return this.kvs.get(key);
  }

  range(): { kvs: SimKv[]; revision: number } {
    return { kvs: [...this.kvs.values()].map((kv) => ({ ...kv })), revision: this.revision };
  }

  put(key: string, value: unknown, lease = 0): number {
    return this.txn([], [{ put: { key, value, lease } }]).revision;
  }

  txn(compares: SimCompare[], ops: SimOp[]): { succeeded: boolean; revision: number } {
    for (const c of compares) {
      const kv = this.kvs.get(c.key);
      const actual = kv === undefined ? 0 : c.target === "CREATE" ? kv.createRevision : kv.modRevision;
      if (actual !== c.equals) return { succeeded: false, revision: this.revision };
    }
    for (const op of ops) {
      if ("put" in op && op.put.lease !== undefined && op.put.lease !== 0 && !this.leases.has(op.put.lease)) {
        throw new SimEtcdError(`requested lease ${op.put.lease} not found`);
      }
    }
    const revision = this.revision + 1;
    const events: SimWatchEvent[] = [];
    for (const op of ops) {
      if ("del" in op) {
        if (this.kvs.has(op.del)) events.push(this.remove(op.del, revision));
        continue;
      }
      const { key, value, lease = 0 } = op.put;
      const old = this.kvs.get(key);
      if (old !== undefined && old.lease !== 0) this.leases.get(old.lease)?.keys.delete(key);
      const kv: SimKv = { key, value, createRevision: old?.createRevision ?? revision, modRevision: revision, lease };
      this.kvs.set(key, kv);
      if (lease !== 0) this.leases.get(lease)!.keys.add(key);
      if (key === this.leaderKey && old === undefined) this.epochLease.set(revision, lease);
      events.push({ type: "PUT", kv: { ...kv } });
    }
    if (events.length > 0) this.commit(events);
    return { succeeded: true, revision: this.revision };
  }

  private remove(key: string, revision: number): SimWatchEvent {
    const kv = this.kvs.get(key)!;
    this.kvs.delete(key);
    if (kv.lease !== 0) this.leases.get(kv.lease)?.keys.delete(key);
    return { type: "DELETE", kv: { ...kv, modRevision: revision } };
  }

  private commit(events: SimWatchEvent[]): void {
    this.revision++;
    this.history.push({ revision: this.revision, events });
    this.onChange(this.revision, events);
  }
}
