// The etcd session of src/coordinator/etcd-control.ts: the lease grant and
// member key (join, with its own `joining` flag), keep-alives that feed the real
// LeaderLease, and the `busy` flag of campaigns and key removals. Kept apart
// from the role rules (replica-group-control.ts) only for size; the calls are
// etcd-control's, in the same order.

import { LeaderLease } from "../../src/core/leader-lease.ts";
import { CONTROL, KEYS } from "./replica-group-control.ts";
import type { SimEtcd } from "./replica-group-etcd.ts";
import type { SimNode } from "./replica-group-node.ts";

export interface SessionEvents {
  /** The control's role: a primary never changes sessions under its leader key. */
  role(): "primary" | "backup" | "candidate";
  /** etcd-control's fence(): stop acting as primary, drop the session, join anew. */
  fence(reason: string): void;
  /** The session is up: read the keys and watch them. */
  joined(): void;
  /** A keep-alive found the lease gone in etcd (LeaderLease is already told). */
  expired(): void;
}

export class SimSession {
  readonly lease = new LeaderLease(CONTROL.leaseTtlMs * CONTROL.leaseMarginFraction);
  /** 0: none (etcd-control's ""). */
  leaseId = 0;
  /** A campaign or key removal in flight: decisions wait for its answer. */
  busy = false;
  /** A join in flight (independent of `busy`: a lost session must always be rebuilt). */
  joining = false;
  private keepAliveLoop = 0;
  private keepAliveInFlight = false;

  constructor(private readonly node: SimNode, private readonly events: SessionEvents) {}

  call<R>(op: (etcd: SimEtcd, now: number) => R, ok: (r: R) => void, err: (why: string) => void): void {
    this.node.cluster.world.etcdCall(this.node, CONTROL.requestTimeoutMs, op, ok, err);
  }

  /** fence(): whatever etcd holds under the old lease must go before this node may lead again. */
  drop(): void {
    const old = this.leaseId;
    this.leaseId = 0;
    this.lease.lost();
    if (old !== 0) this.call((e) => e.revoke(old), () => undefined, () => undefined);
  }

  /**
   * A new session: lease, member key, keep-alives, then the keys; retried until it
   * works. The lease counts (may be campaigned on, renews LeaderLease) only once
   * the whole join worked: a half-made session is revoked. A primary fences first.
   */
  join(): void {
    if (this.joining) return;
    if (this.events.role() === "primary") return this.events.fence("its etcd session is being replaced");
    this.joining = true;
    const stats = this.node.cluster.stats;
    if (this.busy) stats.joinsDuringTxn++;
    this.node.trace(`joining etcd${this.busy ? " (a txn is in flight)" : ""}`);
    let granted: { id: number; ttlMs: number } | undefined;
    const failed = (why: string) => {
      this.joining = false;
      if (granted !== undefined) {
        const id = granted.id;
        stats.halfJoinsRevoked++;
        this.call((e) => e.revoke(id), () => undefined, () => undefined);
      }
      this.node.trace(`join failed: ${why}${granted !== undefined ? `; revoking lease ${granted.id}` : ""}`);
      this.node.cluster.world.timer(this.node, CONTROL.retryMs, () => this.join());
    };
    const sentAt = this.node.mono();
    this.call((e, now) => e.grant(CONTROL.leaseTtlMs, now), (g) => {
      granted = g;
      this.node.trace(`granted lease ${g.id}`);
      const me = { replicaId: this.node.replicaId, address: this.node.name };
      this.call((e) => e.put(KEYS.member(this.node.replicaId), me, g.id), () => {
        this.leaseId = g.id;
        this.lease.renewed(sentAt, g.ttlMs);
        const loop = ++this.keepAliveLoop;
        const every = () => this.node.cluster.world.timer(this.node, CONTROL.keepAliveMs, () => {
          if (loop !== this.keepAliveLoop) return;
          this.keepAlive();
          every();
        });
        every();
        this.joining = false;
        this.events.joined();
      }, failed);
    }, failed);
  }

  private keepAlive(): void {
    if (this.keepAliveInFlight || this.leaseId === 0) return;
    this.keepAliveInFlight = true;
    const id = this.leaseId;
    const sentAt = this.node.mono();
    this.call((e, now) => e.keepAlive(id, now), (ttlMs) => {
      this.keepAliveInFlight = false;
      if (id !== this.leaseId) return;
      if (ttlMs > 0) return this.lease.renewed(sentAt, ttlMs);
      this.lease.lost();
      this.node.trace(`lease ${id} expired in etcd${this.busy ? " (busy)" : ""}`);
      this.events.expired();
    }, () => void (this.keepAliveInFlight = false));
  }
}
