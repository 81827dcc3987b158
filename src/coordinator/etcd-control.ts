// A coordinator's role in an etcd-led replica group (--etcd). etcd decides who
// leads: the leader key sits on the leader's lease and its create revision is
// the epoch; only members of the in-sync replica set (ISR) campaign, so a node
// that may lack acknowledged tasks waits instead of leading. The leader acts only
// while its lease certainly lives (LeaderLease), so a paused or cut-off leader
// fences itself before anyone can replace it. Backups follow whoever the leader
// key names. etcd carries decisions only: nothing here runs per task.
// Everything it touches of the world comes through control-ports.ts, so the
// deterministic simulation (test/sim/replica-group-*) runs this same class.

import type { Logger } from "../cli/log.ts";
import { LeaderLease } from "../core/leader-lease.ts";
import { decideReplicaRole } from "../core/replica-role.ts";
import { CLOCK_WINDOW_MS, ClockOffsetFilter } from "../core/clock-offset.ts";
import type { EtcdTxnResult } from "../net/etcd-client.ts";
import { isrKey, leaderKey, memberKey, type IsrRecord, type LeaderRecord, type MemberRecord } from "../net/etcd-keys.ts";
import type { Clock, DialLeader, EtcdPort, LeaderLink, Timers } from "./control-ports.ts";
import { ShardKeys, type LeaderState } from "./etcd-shard-keys.ts";
import type { ReplicationRole, RoleEvents } from "./role-control.ts";

export interface EtcdSettings {
  endpoints: string[];
  prefix: string;
  /** TTL asked for the session lease (etcd may raise it: the granted TTL is what counts). */
  leaseTtlMs: number;
  /** This incarnation's id: stable across restarts with --data-dir, new on each start without. */
  replicaId: string;
}

/** Who this coordinator is, as the control says it in etcd and judges its clock. */
export interface EtcdIdentity {
  shard: number;
  nodeId: string;
  /** The address backups and routers dial. */
  advertise: string;
  maxClockOffsetMs: number;
}

/** The world, see control-ports.ts. `In`/`Out`: replication messages from and to the leader. */
export interface EtcdControlPorts<In, Out> {
  etcd: EtcdPort;
  clock: Clock;
  timers: Timers;
  dialLeader: DialLeader<In, Out>;
}

/** RoleEvents, with the leader's replication messages as the link gives them. */
export type EtcdRoleEvents<In> = Omit<RoleEvents, "onReplication"> & { onReplication(msg: In): void };

/** Most epochs a u32 field can carry: an etcd revision past it cannot be an epoch. */
const EPOCH_MAX = 0xffff_ffff;
/** Slack for clock-rate drift between this host and etcd and our own reaction time, per lease. */
const LEASE_MARGIN_FRACTION = 0.1;
const RETRY_MS = 200;

/** Each etcd request's time-out: a quarter of the lease, so a keep-alive can fail and be retried within it. */
export function etcdRequestTimeoutMs(leaseTtlMs: number): number {
  return Math.max(100, Math.floor(leaseTtlMs / 4));
}

/**
 * The process runs EtcdControl<LeaderFrame, FrameEncoder> (leader-link.ts), which is a
 * RoleControl; the simulation runs it over its own messages.
 */
export class EtcdControl<In, Out> {
  role: ReplicationRole = "candidate";
  epoch = 0;
  private readonly etcd: EtcdPort;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly lease: LeaderLease;
  private leaseId = "";
  private leaseTtlMs = 0;
  private stopKeepAlive: (() => void) | undefined;
  /** The shard's leader and ISR keys as etcd last showed them (read, then watched). */
  private readonly keys: ShardKeys;
  private keepAliveInFlight = false;
  /** Backup: a REPL_SYNC went out on the current connection and its snapshot has not come yet. */
  private syncRequested = false;
  /** The leader this node replaced, if any: it is out of the ISR until it catches up again. */
  deposedReplicaId: string | undefined;
  private link: LeaderLink<Out> | undefined;
  private stateSynced = false;
  /** A campaign or key removal in flight: decisions wait for its answer. */
  private busy = false;
  /** A join in flight (independent of `busy`: a lost session must always be rebuilt). */
  private joining = false;
  private stopped = false;
  private lastWaitReason = "";
  /** Our wall clock minus the primaries' as their APPENDs tell it (least-delayed recent sample). */
  private readonly clockOffset_ = new ClockOffsetFilter(CLOCK_WINDOW_MS);

  constructor(
    private readonly me: EtcdIdentity,
    private readonly settings: Omit<EtcdSettings, "endpoints">,
    private readonly ports: EtcdControlPorts<In, Out>,
    private readonly log: Logger,
    private readonly events: EtcdRoleEvents<In>,
  ) {
    this.etcd = ports.etcd;
    this.clock = ports.clock;
    this.timers = ports.timers;
    this.lease = new LeaderLease(settings.leaseTtlMs * LEASE_MARGIN_FRACTION);
    this.keys = new ShardKeys(ports.etcd, ports.timers, log, settings.prefix, me.shard, {
      changed: () => this.evaluate(),
      mayRead: () => !this.stopped,
      mayCheck: () => !this.stopped && !this.joining,
    });
  }

  get isSynced(): boolean {
    return this.stateSynced;
  }

  get primaryLabel(): string | undefined {
    if (this.role === "primary") return this.me.advertise;
    return this.link?.up ? this.keys.leader?.record.address : undefined;
  }

  /** For stats: the replica id, and why this node does not lead (empty when it does or need not). */
  get replicaId(): string {
    return this.settings.replicaId;
  }

  get notLeadingReason(): string {
    return this.role === "candidate" ? this.lastWaitReason : "";
  }

  /** Our wall clock minus the leader's, as its appends tell it (undefined: no recent sample). */
  get clockOffsetMs(): number | undefined {
    return this.clockOffset_.estimate(this.clock.now());
  }

  /** The ISR as this leader read it when it won (and as it has changed since). */
  get isrMembers(): string[] {
    return this.keys.isr?.members ?? [this.settings.replicaId];
  }

  recovered(epoch: number): void {
    this.epoch = epoch;
  }

  start(): void {
    void this.join();
    this.keys.startChecks();
  }

  stop(): void {
    this.stopped = true;
    this.lease.lost();
    this.stopKeepAlive?.();
    this.keys.close();
    this.link?.close();
    this.etcd.close();
  }

  /** Graceful stop: give the leadership back at once (the ISR campaigns without waiting for the TTL). */
  async resign(): Promise<void> {
    const id = this.leaseId;
    // Stop acting first: once the lease is revoked another replica may lead at once.
    this.stopped = true;
    this.leaseId = "";
    this.lease.lost();
    if (this.role === "primary") {
      this.role = "candidate";
      this.events.stepDown("handing over: this node is stopping");
    }
    if (id === "") return;
    try {
      await this.etcd.revoke(id);
    } catch (err) {
      this.log.warn("could not revoke the lease; it expires on its own", { error: (err as Error).message });
    }
  }

  /** Backup: our wall clock when an APPEND arrived minus the primary's when it left. */
  clockOffset(offsetMs: number): void {
    this.clockOffset_.sample(offsetMs, this.clock.now());
  }

  mayLead(now: number): boolean {
    return this.lease.isValid(now);
  }

  /** The lease may have expired, or etcd names another leader: stop acting as primary now. */
  fence(reason = `no keep-alive answered within the lease (${this.leaseTtlMs} ms)`): void {
    if (this.role !== "primary") return;
    this.role = "candidate";
    this.log.warn("fenced: stopped acting as primary", { epoch: this.epoch, reason });
    this.events.stepDown(reason);
    // Whatever etcd still holds under our lease must go before we may lead again: a new session.
    const old = this.leaseId;
    this.leaseId = "";
    this.lease.lost();
    if (old !== "") this.etcd.revoke(old).catch(() => undefined);
    void this.join();
  }

  /** `_wallNow` is the coordinator's wall clock; the lease runs on the monotonic one. */
  tick(_wallNow: number): void {
    this.evaluate();
  }

  synced(epoch: number): void {
    this.stateSynced = epoch === this.keys.leader?.epoch;
    this.syncRequested = false;
  }

  resync(): void {
    this.requestSnapshot();
  }

  sendToPrimary(out: Out): void {
    this.link?.send(out);
  }

  /**
   * Primary: replace the ISR in etcd, if this node still leads and nobody changed it
   * since. Resolves with the ISR etcd holds afterwards: `members` when the swap took,
   * what a re-read finds when etcd refused it. Rejects when the outcome is unknown (no
   * answer: it may still be applied later): the caller keeps waiting for the members of
   * both lists and writes the same change again.
   */
  async writeIsr(members: string[]): Promise<string[]> {
    const isr = this.keys.isr;
    if (this.role !== "primary" || isr === undefined) throw new Error("not the leader");
    const record: IsrRecord = { members, epoch: this.epoch };
    const shard = this.me.shard;
    try {
      const res = await this.etcd.txn(
        [
          { key: leaderKey(this.settings.prefix, shard), target: "CREATE", result: "EQUAL", createRevision: this.epoch },
          { key: isrKey(this.settings.prefix, shard), target: "MOD", result: "EQUAL", modRevision: isr.modRevision },
        ],
        [{ put: { key: isrKey(this.settings.prefix, shard), value: JSON.stringify(record) } }],
      );
      if (res.succeeded) {
        if (res.revision > (this.keys.isr?.modRevision ?? 0)) this.keys.isr = { members, modRevision: res.revision };
        this.log.info("in-sync replicas changed", { epoch: this.epoch, members });
        return members;
      }
      this.log.warn("in-sync replica change refused by etcd; re-reading", { epoch: this.epoch, members });
    } catch (err) {
      // Unanswered is not refused: the txn may still be applied after any read we make now
      // (found by the simulation, seed 533). Unknown: the caller writes the same change again,
      // and an answered attempt rules out every earlier one (they compare the same revision).
      throw new Error(`in-sync replica change unanswered: ${(err as Error).message}`);
    }
    const { kv } = await this.etcd.get(isrKey(this.settings.prefix, shard));
    this.keys.isrFrom(kv);
    return this.keys.isr?.members ?? [];
  }

  // ------------------------------------------------------------ session and watch

  /**
   * A new session: lease, registration, first read, watch; retried until it works.
   * The lease counts (may be campaigned on, renews LeaderLease) only once the whole
   * join worked: a half-made session is revoked, never led on. A primary never
   * changes its session under its leader key: it fences first.
   */
  private async join(): Promise<void> {
    if (this.stopped || this.joining) return;
    if (this.role === "primary") return this.fence("its etcd session is being replaced");
    this.joining = true;
    // A campaign or key removal may still be in flight: its answer settles `busy` on its own.
    this.log.debug("joining etcd", { txnInFlight: this.busy });
    // Only etcd's calls are in the try: what the role change after them throws is a bug, never "etcd unavailable".
    let granted: { id: string; ttlS: number } | undefined;
    const sentAt = this.clock.now();
    try {
      granted = await this.etcd.grantLease(Math.max(1, Math.round(this.settings.leaseTtlMs / 1000)));
      const shard = this.me.shard;
      const me: MemberRecord = { nodeId: this.me.nodeId, replicaId: this.settings.replicaId, address: this.me.advertise, shard };
      await this.etcd.put(memberKey(this.settings.prefix, shard, this.settings.replicaId), JSON.stringify(me), granted.id);
      if (this.stopped) throw new Error("stopping");
    } catch (err) {
      this.joining = false;
      // Half made (granted, then the member key failed): that lease must never be led on.
      if (granted !== undefined) this.etcd.revoke(granted.id).catch(() => undefined);
      if (this.stopped) return;
      this.log.warn("etcd unavailable; retrying", { error: (err as Error).message, retryInMs: RETRY_MS, ...(granted && { revokedLease: granted.id }) });
      this.timers.after(RETRY_MS, () => void this.join());
      return;
    }
    this.leaseId = granted.id;
    this.leaseTtlMs = granted.ttlS * 1000;
    this.lease.renewed(sentAt, this.leaseTtlMs);
    this.stopKeepAlive?.();
    this.stopKeepAlive = this.timers.every(Math.max(50, Math.floor(this.leaseTtlMs / 4)), () => void this.keepAlive());
    this.log.info("joined etcd", { lease: this.leaseId, ttlMs: this.leaseTtlMs, replicaId: this.settings.replicaId, prefix: this.settings.prefix });
    this.joining = false;
    await this.keys.reload();
  }

  private async keepAlive(): Promise<void> {
    if (this.keepAliveInFlight || this.leaseId === "") return;
    this.keepAliveInFlight = true;
    const id = this.leaseId;
    const sentAt = this.clock.now();
    try {
      const ttlS = await this.etcd.keepAlive(id);
      if (id !== this.leaseId) return;
      if (ttlS > 0) return this.lease.renewed(sentAt, ttlS * 1000);
      this.log.warn("etcd lease expired", { lease: id });
      this.lease.lost();
      if (this.role === "primary") return this.fence("the lease expired in etcd");
      this.leaseId = "";
      void this.join();
    } catch (err) {
      this.log.debug("keep-alive failed", { error: (err as Error).message });
    } finally {
      this.keepAliveInFlight = false;
    }
  }

  // ------------------------------------------------------------ the rules

  /** Follow the leader etcd names, campaign when there is none and this node may, fence when it may no longer lead. */
  private evaluate(): void {
    if (this.stopped || this.busy || this.joining) return;
    const leader = this.keys.leader;
    const decision = decideReplicaRole({
      selfId: this.settings.replicaId, role: this.role, epoch: this.epoch,
      lease: this.leaseId, leaseValid: this.lease.isValid(this.clock.now()),
      leader: leader && { replicaId: leader.record.replicaId, address: leader.record.address, epoch: leader.epoch, lease: leader.lease },
      isr: this.keys.isr, clockOffsetMs: this.clockOffset_.estimate(this.clock.now()), maxClockOffsetMs: this.me.maxClockOffsetMs,
      following: this.role === "backup" && this.link !== undefined ? { address: this.link.label, epoch: this.epoch } : undefined,
    });
    switch (decision.kind) {
      case "stay":
        // Following the right leader but without its state (e.g. the link came up while
        // etcd briefly showed no leader): ask for it now.
        if (this.role === "backup" && !this.stateSynced && !this.syncRequested) {
          this.linkReady();
          if (this.syncRequested) this.log.debug("following the leader without its state and no request out: asked for it", { epoch: this.epoch });
        }
        return;
      case "fence":
        return this.fence(decision.reason);
      case "follow":
        return this.followAddress(decision.address, decision.epoch);
      case "remove-stale-leader-key":
        // On our current lease: a campaign etcd applied whose answer we never heard.
        this.log.info("removing a leader key naming this replica, which does not lead", { epoch: leader!.epoch, onCurrentLease: leader!.lease === this.leaseId });
        return void this.clearOwnStaleLeadership(leader!);
      case "wait":
        return this.waitingBecause(decision.reason);
      case "campaign":
        return void this.campaign(decision.freshShard);
    }
  }

  private async campaign(fresh: boolean): Promise<void> {
    const isr = this.keys.isr!;
    const me = this.settings.replicaId;
    const shard = this.me.shard;
    const record: LeaderRecord = { nodeId: this.me.nodeId, replicaId: me, address: this.me.advertise };
    // Read before the await: our own leader key may come back through the watch while the txn is in flight.
    const previous = this.keys.lastLeaderReplicaId;
    const lease = this.leaseId;
    this.busy = true;
    let res: EtcdTxnResult;
    try {
      res = await this.etcd.txn(
        [
          { key: leaderKey(this.settings.prefix, shard), target: "CREATE", result: "EQUAL", createRevision: 0 },
          fresh
            ? { key: isrKey(this.settings.prefix, shard), target: "CREATE", result: "EQUAL", createRevision: 0 }
            : { key: isrKey(this.settings.prefix, shard), target: "MOD", result: "EQUAL", modRevision: isr.modRevision },
        ],
        [
          { put: { key: leaderKey(this.settings.prefix, shard), value: JSON.stringify(record), lease } },
          ...(fresh ? [{ put: { key: isrKey(this.settings.prefix, shard), value: JSON.stringify({ members: [me], epoch: 0 } satisfies IsrRecord) } }] : []),
        ],
      );
    } catch (err) {
      // Only etcd's call is in the try: what becoming primary throws below is a bug, never "campaign failed".
      this.busy = false;
      this.log.warn("campaign failed", { error: (err as Error).message });
      return;
    }
    this.busy = false;
    if (!res.succeeded) return; // someone else won, or the ISR moved: the watch tells us which
    // Won, but on a session that has since been replaced (or while stopping): that key's lease is not
    // the one we keep alive, so we must not act on it. The remove-stale-leader-key rule clears it.
    if (this.stopped || lease !== this.leaseId || !this.lease.isValid(this.clock.now())) {
      return this.log.info("won the leader key on a session no longer kept alive; not leading on it", { epoch: res.revision });
    }
    if (res.revision > EPOCH_MAX) {
      // Epochs travel as u32: leading on a larger one would wrap and fence nothing. Stay out and say what to do.
      return this.waitingBecause(`etcd revision ${res.revision} is past the largest epoch ${EPOCH_MAX}; compact etcd and reset the cluster's keys`);
    }
    if (fresh) this.keys.isr = { members: [me], modRevision: res.revision };
    this.keys.leader = { record, epoch: res.revision, modRevision: res.revision, lease };
    this.becomePrimary(res.revision, previous);
  }

  private becomePrimary(epoch: number, previous: string | undefined): void {
    this.deposedReplicaId = previous !== this.settings.replicaId ? previous : undefined;
    this.link?.close();
    this.link = undefined;
    this.role = "primary";
    this.epoch = epoch;
    this.stateSynced = true;
    this.lastWaitReason = "";
    this.log.info("promoted to primary", { epoch, shard: this.me.shard, isr: this.keys.isr?.members, previous });
    this.events.promote(epoch);
  }

  /** The leader key names this replica but this process does not lead: a previous life's key (or lease). Remove it. */
  private async clearOwnStaleLeadership(leader: LeaderState): Promise<void> {
    this.busy = true;
    try {
      const res = await this.etcd.txn(
        [{ key: leaderKey(this.settings.prefix, this.me.shard), target: "MOD", result: "EQUAL", modRevision: leader.modRevision }],
        [{ deleteRange: { key: leaderKey(this.settings.prefix, this.me.shard) } }],
      );
      // Refused: the key changed since we read it (the watch tells us to what).
      if (res.succeeded) this.log.info("removed a leader key naming this replica, which does not lead", { epoch: leader.epoch });
    } catch (err) {
      this.log.warn("could not remove an old leader key", { error: (err as Error).message });
    } finally {
      this.busy = false;
    }
  }

  private followAddress(address: string, epoch: number): void {
    if (this.link?.label !== address) {
      let link: LeaderLink<Out>;
      try {
        link = this.ports.dialLeader(address, {
          onReplication: (l, msg) => this.fromLeader(l, msg),
          onReadEnd: (l) => {
            if (l === this.link) this.events.onReplicationReadEnd();
          },
          onUp: () => this.linkReady(),
          onRole: () => this.linkReady(),
          // The state stays what it was; the link redials and asks for a snapshot when up.
          onDown: (l) => this.linkDown(l),
        });
      } catch (err) {
        return this.waitingBecause(`the leader key names an address that cannot be dialled: ${(err as Error).message}`);
      }
      this.link?.close();
      this.link = link;
      link.connect();
    }
    if (this.role !== "backup" || this.epoch !== epoch) {
      this.role = "backup";
      this.epoch = epoch;
      this.stateSynced = false;
      this.events.follow();
      this.log.info("following primary", { primary: address, epoch });
    }
    this.linkReady();
  }

  /** The link reached the leader etcd names, at its epoch: ask for its state. */
  private linkReady(): void {
    const link = this.link;
    if (link === undefined || !link.up || this.role !== "backup") return;
    if (!link.primary || link.epoch !== this.keys.leader?.epoch) return; // it has not taken over yet (its ROLE follows)
    this.requestSnapshot();
  }

  /** A replaced link's close can land after the new link asked for a snapshot: only the current link's counts. */
  private linkDown(link: LeaderLink<unknown>): void {
    if (link === this.link) this.syncRequested = false;
    else if (this.syncRequested) this.log.debug("a replaced link to a leader closed; the current link's request stands", { link: link.label });
  }

  private requestSnapshot(): void {
    this.stateSynced = false;
    this.syncRequested = true;
    this.link?.requestSync(this.epoch, this.settings.replicaId);
  }

  private fromLeader(link: LeaderLink<unknown>, msg: In): void {
    if (link !== this.link || link.epoch !== this.epoch) return; // a deposed leader's traffic is dropped
    this.events.onReplication(msg);
  }

  private waitingBecause(reason: string): void {
    if (reason === this.lastWaitReason) return;
    this.lastWaitReason = reason;
    this.log.warn("not leading", { reason });
  }
}
