// The simulated shell of src/coordinator/etcd-control.ts: one node's etcd
// session (lease, keep-alives, member key), its read-and-watch of the shard's
// keys, and the link to the leader it follows. Every role decision is the real
// decideReplicaRole and every lease judgement the real LeaderLease; this file
// only carries their inputs and outputs the way etcd-control.ts does, step for
// step (the same calls, in the same order, with the same flags and retries).
// Clock offsets go through the real ClockOffsetFilter on the node's monotonic clock.

import { CLOCK_WINDOW_MS } from "../../src/core/clock-offset.ts";
import { ClockOffsetFilter } from "../../src/core/clock-offset.ts";
import { decideReplicaRole } from "../../src/core/replica-role.ts";
import type { SimEtcd, SimKv, SimWatchEvent } from "./replica-group-etcd.ts";
import type { Msg, SimNode } from "./replica-group-node.ts";
import { SimLink } from "./replica-group-link.ts";
import { SimSession } from "./replica-group-session.ts";
import type { WatchHandle } from "./replica-group-world.ts";

/** etcd-control.ts and main.ts, as run in the simulation. */
export const CONTROL = {
  leaseTtlMs: 1_000,
  leaseMarginFraction: 0.1,
  retryMs: 200,
  /** isr-replica-set.ts ISR_RETRY_MS: an ISR write of unknown outcome is written again this much later. */
  isrRetryMs: 100,
  /** EtcdClient's requestTimeoutMs and the keep-alive interval: TTL / 4. */
  requestTimeoutMs: 250,
  keepAliveMs: 250,
  maxClockOffsetMs: 500,
  reconnectMinMs: 50, reconnectMaxMs: 1_000, helloTimeoutMs: 1_000,
};

export const KEYS = { leader: "leader", isr: "isr", member: (id: string) => `member/${id}` };

interface LeaderState {
  replicaId: string;
  address: string;
  epoch: number;
  modRevision: number;
  lease: number;
}

export class SimControl {
  role: "primary" | "backup" | "candidate" = "candidate";
  epoch = 0;
  private readonly session: SimSession;
  private watch: WatchHandle | undefined;
  /** Counts reloads: an answer to any but the latest is dropped. */
  private reloads = 0;
  /** Backup: a sync went out on the current connection and its snapshot has not come yet. */
  private syncRequested = false;
  leader: LeaderState | undefined;
  isr: { members: string[]; modRevision: number } | undefined;
  deposedReplicaId: string | undefined;
  private lastLeaderReplicaId: string | undefined;
  link: SimLink | undefined;
  private stateSynced = false;
  /** Our wall clock minus the primaries' as their APPENDs tell it (least-delayed recent sample). */
  private readonly clockOffset_ = new ClockOffsetFilter(CLOCK_WINDOW_MS);
  private lastSaid = "";

  constructor(private readonly node: SimNode) {
    this.session = new SimSession(node, {
      role: () => this.role,
      fence: (reason) => this.fence(reason),
      joined: () => this.reload(),
      expired: () => {
        if (this.role === "primary") return this.fence("the lease expired in etcd");
        this.session.leaseId = 0;
        this.session.join();
      },
    });
  }

  get isSynced(): boolean {
    return this.stateSynced;
  }

  get primaryLabel(): string | undefined {
    if (this.role === "primary") return this.node.name;
    return this.link?.up ? this.leader?.address : undefined;
  }

  get isrMembers(): string[] {
    return this.isr?.members ?? [this.node.replicaId];
  }

  recovered(epoch: number): void {
    this.epoch = epoch;
  }

  start(): void {
    this.session.join();
  }

  /** Backup: our wall clock when an APPEND arrived minus the primary's when it left. */
  clockOffset(offsetMs: number): void {
    const now = this.node.mono();
    this.clockOffset_.sample(offsetMs, now);
    if (Math.abs(offsetMs) > CONTROL.maxClockOffsetMs && Math.abs(this.clockOffset_.estimate(now)!) <= CONTROL.maxClockOffsetMs) {
      this.node.cluster.stats.delayedClockSamplesOutvoted++;
    }
  }

  mayLead(now: number): boolean {
    return this.session.lease.isValid(now);
  }

  fence(reason = "no keep-alive answered within the lease"): void {
    if (this.role !== "primary") return;
    this.role = "candidate";
    this.node.cluster.stats.fences++;
    this.node.trace(`fenced at epoch ${this.epoch}: ${reason}`);
    this.node.stepDown(reason);
    this.session.drop();
    this.session.join();
  }

  tick(): void {
    this.evaluate();
  }

  synced(epoch: number): void {
    this.stateSynced = epoch === this.leader?.epoch;
    this.syncRequested = false;
  }

  resync(): void {
    this.requestSnapshot();
  }

  sendToPrimary(msg: Msg): void {
    this.link?.send(msg);
  }

  /**
   * Primary: writeIsr(), the ISR compare-and-swap. `held` gets the ISR etcd holds
   * afterwards: `members` when the swap took, what a re-read of the ISR key finds
   * when etcd refused it. `unknown` (the promise's rejection) when the txn got no
   * answer (it may still be applied later: nothing read now can settle it), when
   * the re-read failed, or when this node no longer leads.
   */
  writeIsr(members: string[], held: (members: string[]) => void, unknown: (why: string) => void): void {
    const isr = this.isr;
    if (this.role !== "primary" || isr === undefined) return unknown("not the leader");
    const epoch = this.epoch;
    const stats = this.node.cluster.stats;
    /** The caller has heard "unanswered": from here on, a read-back cannot tell whether the txn takes. */
    let gaveUp = false;
    const reread = () => this.call((e) => {
      const kv = e.get(KEYS.isr);
      return kv === undefined ? undefined : { ...kv };
    }, (kv) => {
      this.isrFrom(kv);
      held(this.isr?.members ?? []);
    }, unknown);
    this.call((e) => {
      const res = e.txn(
        [{ key: KEYS.leader, target: "CREATE", equals: epoch }, { key: KEYS.isr, target: "MOD", equals: isr.modRevision }],
        [{ put: { key: KEYS.isr, value: { members, epoch } } }],
      );
      if (gaveUp) {
        stats.isrWritesLate++;
        this.node.trace(`ISR change to ${members.join(",")} reached etcd after "unanswered": ${res.succeeded ? `applied (revision ${res.revision})` : "refused"}`);
      }
      return res;
    }, (res) => {
      if (res.succeeded) {
        if (res.revision > (this.isr?.modRevision ?? 0)) this.isr = { members, modRevision: res.revision };
        this.node.trace(`ISR now ${members.join(",")} (epoch ${epoch})`);
        return held(members);
      }
      this.node.trace(`ISR change to ${members.join(",")} refused by etcd; re-reading`);
      reread();
    }, (why) => {
      // Unanswered is not refused: the txn may still be applied after any read made now.
      // Unknown: the caller writes the same change again; an answered attempt rules out
      // every earlier one (they compare the same ISR revision).
      gaveUp = true;
      stats.isrWritesUnanswered++;
      unknown(`in-sync replica change unanswered: ${why}`);
    });
  }

  // ------------------------------------------------------------ keys and watch

  private call<R>(op: (etcd: SimEtcd, now: number) => R, ok: (r: R) => void, err: (why: string) => void): void {
    this.session.call(op, ok, err);
  }

  /**
   * Reads the shard's keys and watches them from there; a broken watch comes back
   * here. The old watch stops before the read, and only the latest reload applies
   * what it read (or retries on its failure); an old watch's events and errors are
   * dropped. Otherwise an old watch's newer events could be overwritten by an
   * older read (a backup then lost its leader and never asked it for a snapshot).
   */
  private reload(): void {
    const generation = ++this.reloads;
    const stats = this.node.cluster.stats;
    const old = this.watch;
    old?.close();
    this.watch = undefined;
    const current = () => generation === this.reloads;
    this.call((e) => e.range(), ({ kvs, revision }) => {
      if (!current()) return void stats.staleReloadsDropped++;
      // The race the closed old watch no longer runs: a change newer than this read, which it could have delivered first.
      if (old !== undefined && old.missedRevision > revision) {
        stats.readsRacedByOldWatch++;
        this.node.trace(`read at revision ${revision}, older than revision ${old.missedRevision} its closed old watch missed`);
      }
      this.leaderFrom(kvs.find((kv) => kv.key === KEYS.leader));
      this.isrFrom(kvs.find((kv) => kv.key === KEYS.isr));
      this.watch = this.node.cluster.world.watch(this.node, CONTROL.requestTimeoutMs, revision + 1, (events) => {
        if (current()) this.onWatch(events);
      }, () => {
        if (!current()) return;
        this.node.cluster.world.timer(this.node, CONTROL.retryMs, () => this.reload());
      });
      this.evaluate();
    }, () => {
      if (!current()) return void stats.staleReloadsDropped++;
      this.node.cluster.world.timer(this.node, CONTROL.retryMs, () => this.reload());
    });
  }

  private onWatch(events: SimWatchEvent[]): void {
    for (const e of events) {
      const kv = e.type === "DELETE" ? undefined : e.kv;
      if (e.kv.key === KEYS.leader) this.leaderFrom(kv);
      else if (e.kv.key === KEYS.isr) this.isrFrom(kv);
    }
    this.evaluate();
  }

  private leaderFrom(kv: SimKv | undefined): void {
    if (kv === undefined) {
      this.leader = undefined;
      return;
    }
    const record = kv.value as { replicaId: string; address: string };
    this.leader = { replicaId: record.replicaId, address: record.address, epoch: kv.createRevision, modRevision: kv.modRevision, lease: kv.lease };
    this.lastLeaderReplicaId = record.replicaId;
  }

  private isrFrom(kv: SimKv | undefined): void {
    if (kv === undefined) {
      this.isr = { members: [], modRevision: 0 };
      return;
    }
    // A late answer or read must not take us back to an older ISR than the watch already showed.
    if (this.isr !== undefined && kv.modRevision < this.isr.modRevision) {
      this.node.cluster.stats.olderIsrReadsIgnored++;
      return;
    }
    this.isr = { members: [...(kv.value as { members: string[] }).members], modRevision: kv.modRevision };
  }

  // ------------------------------------------------------------ the rules

  private evaluate(): void {
    if (this.session.busy || this.session.joining) return;
    const leader = this.leader;
    const decision = decideReplicaRole({
      selfId: this.node.replicaId, role: this.role, epoch: this.epoch,
      lease: this.session.leaseId === 0 ? "" : String(this.session.leaseId), leaseValid: this.session.lease.isValid(this.node.mono()),
      leader: leader && { replicaId: leader.replicaId, address: leader.address, epoch: leader.epoch, lease: String(leader.lease) },
      isr: this.isr, clockOffsetMs: this.clockOffset_.estimate(this.node.mono()), maxClockOffsetMs: CONTROL.maxClockOffsetMs,
      following: this.role === "backup" && this.link !== undefined ? { address: this.link.label, epoch: this.epoch } : undefined,
    });
    // Our own key on our current lease while we do not lead: a campaign won in etcd whose answer was lost.
    if (decision.kind === "remove-stale-leader-key" && leader!.lease === this.session.leaseId) this.node.cluster.stats.unheardCampaignWins++;
    this.node.decided(decision, leader === undefined);
    const said = `${decision.kind}${"reason" in decision ? `: ${decision.reason}` : ""}`;
    if (said !== this.lastSaid) this.node.trace(`decides ${said}`);
    this.lastSaid = said;
    switch (decision.kind) {
      case "stay":
        // Following the right leader but without its state (e.g. the link came up while
        // etcd briefly showed no leader): ask for it now.
        if (this.role === "backup" && !this.stateSynced && !this.syncRequested) {
          this.linkReady();
          if (this.syncRequested) {
            this.node.cluster.stats.unsyncedStaysResynced++;
            this.node.trace(`follows ${this.leader?.replicaId} at epoch ${this.epoch} without its state and no sync outstanding: asks for it`);
          }
        }
        return;
      case "wait":
        return;
      case "fence":
        if (decision.reason.includes("not on the lease")) this.node.cluster.stats.leaderKeysOffLeaseFenced++;
        return this.fence(decision.reason);
      case "follow":
        return this.followAddress(decision.address, decision.epoch);
      case "remove-stale-leader-key":
        return this.clearOwnStaleLeadership(leader!);
      case "campaign":
        return this.campaign(decision.freshShard);
    }
  }

  private campaign(fresh: boolean): void {
    const isr = this.isr!;
    const me = this.node.replicaId;
    const record = { replicaId: me, address: this.node.name };
    const previous = this.lastLeaderReplicaId;
    const lease = this.session.leaseId;
    this.session.busy = true;
    this.call((e) => e.txn(
      [
        { key: KEYS.leader, target: "CREATE", equals: 0 },
        fresh ? { key: KEYS.isr, target: "CREATE", equals: 0 } : { key: KEYS.isr, target: "MOD", equals: isr.modRevision },
      ],
      [{ put: { key: KEYS.leader, value: record, lease } }, ...(fresh ? [{ put: { key: KEYS.isr, value: { members: [me], epoch: 0 } } }] : [])],
    ), (res) => {
      this.session.busy = false;
      if (!res.succeeded) return; // someone else won, or the ISR moved: the watch tells us which
      // Won, but on a session that has since been replaced: that key's lease is not the one
      // we keep alive, so we must not act on it. The remove-stale-leader-key rule clears it.
      if (lease !== this.session.leaseId || !this.session.lease.isValid(this.node.mono())) {
        this.node.cluster.stats.campaignWinsOnLostLease++;
        this.node.trace(`won epoch ${res.revision} on lease ${lease}, which it no longer keeps alive: does not lead`);
        return;
      }
      if (fresh) this.isr = { members: [me], modRevision: res.revision };
      this.leader = { replicaId: me, address: this.node.name, epoch: res.revision, modRevision: res.revision, lease };
      this.becomePrimary(res.revision, previous);
    }, (why) => {
      this.session.busy = false;
      this.node.trace(`campaign failed: ${why}`);
    });
  }

  private becomePrimary(epoch: number, previous: string | undefined): void {
    this.deposedReplicaId = previous !== this.node.replicaId ? previous : undefined;
    this.link?.close();
    this.link = undefined;
    this.role = "primary";
    this.epoch = epoch;
    this.stateSynced = true;
    this.node.promote(epoch);
  }

  private clearOwnStaleLeadership(leader: LeaderState): void {
    this.session.busy = true;
    const done = () => void (this.session.busy = false);
    this.call((e) => e.txn([{ key: KEYS.leader, target: "MOD", equals: leader.modRevision }], [{ del: KEYS.leader }]), done, done);
  }

  private followAddress(address: string, epoch: number): void {
    if (this.link?.label !== address) {
      this.link?.close();
      this.link = new SimLink(address, this, this.node);
      this.link.connect();
    }
    if (this.role !== "backup" || this.epoch !== epoch) {
      this.role = "backup";
      this.epoch = epoch;
      this.stateSynced = false;
      this.node.follow();
    }
    this.linkReady();
  }

  linkReady(): void {
    const link = this.link;
    if (link === undefined || !link.up || this.role !== "backup") return;
    if (!link.primary || link.epoch !== this.leader?.epoch) return;
    this.requestSnapshot();
  }

  /**
   * The link's onDown (a connection that was up closed): the state stays what it was,
   * and the link redials and asks for a snapshot when up. A replaced link's close can
   * land after the new link asked: only the current link's counts.
   */
  linkDown(link: SimLink): void {
    if (link === this.link) return void (this.syncRequested = false);
    if (!this.syncRequested) return;
    this.node.cluster.stats.replacedLinkDownsIgnored++;
    this.node.trace(`a replaced link to ${link.label} closed; the sync the current one sent is still outstanding`);
  }

  private requestSnapshot(): void {
    this.stateSynced = false;
    this.syncRequested = true;
    this.link?.send({ kind: "sync", epoch: this.epoch, replicaId: this.node.replicaId });
  }

  fromLeader(link: SimLink, msg: Msg): void {
    if (link !== this.link || link.epoch !== this.epoch) return;
    if (msg.kind === "snapshot" || msg.kind === "append") this.node.onReplication(msg);
  }
}
