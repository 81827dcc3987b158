// The etcd session of src/coordinator/etcd-control.ts: the lease grant and
// member key (join), keep-alives that feed the real LeaderLease, and the `busy`
// flag that join, campaign and key removal share. Kept apart from the role
// rules (replica-group-control.ts) only for size; the calls are etcd-control's.

import { LeaderLease } from "../../src/core/leader-lease.ts";
import { CONTROL, KEYS } from "./replica-group-control.ts";
import type { SimEtcd } from "./replica-group-etcd.ts";
import { KNOWN_BUGS } from "./replica-group-known-bugs.ts";
import type { SimNode } from "./replica-group-node.ts";

export interface SessionEvents {
  /** The session is up: read the keys and watch them. */
  joined(): void;
  /** A keep-alive found the lease gone in etcd (LeaderLease is already told). */
  expired(): void;
}

export class SimSession {
  readonly lease = new LeaderLease(CONTROL.leaseTtlMs * CONTROL.leaseMarginFraction);
  /** 0: none (etcd-control's ""). */
  leaseId = 0;
  busy = false;
  private keepAliveLoop = 0;
  private keepAliveInFlight = false;
  /** KNOWN_BUGS.retryJoinWhileBusy: a join that found another txn in flight, run when that one ends. */
  private joinWanted = false;

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

  /** Lease, member key, keep-alives, then the keys; retried until it works. */
  join(): void {
    if (this.busy) {
      if (KNOWN_BUGS.retryJoinWhileBusy) this.joinWanted = true;
      return;
    }
    this.busy = true;
    this.node.trace("joining etcd");
    const failed = () => {
      this.busy = false;
      this.joinWanted = false; // the retry below is that join
      this.node.trace("join failed");
      if (KNOWN_BUGS.dropHalfJoinedSession) {
        this.leaseId = 0;
        this.lease.lost();
      }
      this.node.cluster.world.timer(this.node, CONTROL.retryMs, () => this.join());
    };
    const sentAt = this.node.mono();
    this.call((e, now) => e.grant(CONTROL.leaseTtlMs, now), (granted) => {
      this.leaseId = granted.id;
      this.node.trace(`granted lease ${granted.id}`);
      this.lease.renewed(sentAt, granted.ttlMs);
      const me = { replicaId: this.node.replicaId, address: this.node.name };
      this.call((e) => e.put(KEYS.member(this.node.replicaId), me, granted.id), () => {
        const loop = ++this.keepAliveLoop;
        const every = () => this.node.cluster.world.timer(this.node, CONTROL.keepAliveMs, () => {
          if (loop !== this.keepAliveLoop) return;
          this.keepAlive();
          every();
        });
        every();
        this.busy = false;
        this.joinWanted = false;
        this.events.joined();
      }, failed);
    }, failed);
  }

  /** A campaign or key removal ended: a join it held up runs now (KNOWN_BUGS.retryJoinWhileBusy). */
  notBusy(): void {
    this.busy = false;
    this.joinIfWanted();
  }

  joinIfWanted(): void {
    if (!this.joinWanted || this.busy) return;
    this.joinWanted = false;
    this.join();
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
