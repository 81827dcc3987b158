// A coordinator's view of the other replicas of its shard, and the rules that
// decide its role (as a pure function: src/core/static-role.ts). Each node dials every peer; WELCOME and ROLE messages say
// what each peer is. Rules (the epoch is the fencing token: one primary per epoch):
//  - see a primary with a higher epoch (or the same epoch and a lower address):
//    follow it (a primary steps down first), asking for a snapshot then the log;
//  - no live primary for failoverTimeoutMs x (1 + number of live peers that
//    should lead instead): promote with epoch = highest seen + 1, but only
//    holding the state of the latest epoch, or in a cluster that never had a
//    primary;
//  - a node not synced to a primary (nor primary) since its process started
//    holds only what it recovered, or nothing: it leads only once it has heard
//    every peer since it started and none holds more (epoch, then index), so
//    a restart never leads over acknowledged tasks held by a peer that is down;
//  - a node that set its data aside (--recover-from-peer) holds nothing: it
//    leads only once it has synced to a primary, whatever its peers hold.
// At start-up this makes the lowest address the first primary; after a crash,
// the in-sync backup takes over. A primary that falls silent (no log traffic:
// each tick brings a TICK entry, or an APPEND of no entries when the tick
// changed nothing) for failoverTimeoutMs counts as dead.

import type { Logger } from "../cli/log.ts";
import { CoordinatorLink } from "../net/coordinator-link.ts";
import type { FrameWriter, Reader } from "../protocol/codec.ts";
import { Kind, PROTOCOL_VERSION, type Hello } from "../protocol/messages.ts";
import type { CoordinatorConfig } from "./config.ts";
import { isReplicationKind } from "./replication-codec.ts";
import type { ReplicationRole } from "./role-control.ts";
import { decideStaticRole, type StaticRoleView } from "../core/static-role.ts";


export interface PeerEvents {
  /** This node is primary of `epoch` now. */
  promote(epoch: number): void;
  /** This node starts following a primary: its state is replaced by the coming snapshot. */
  follow(): void;
  /** This primary saw a newer one and is about to follow it. */
  stepDown(reason: string): void;
  /** REPL_SNAPSHOT / REPL_APPEND from the followed primary. */
  onReplication(kind: number, r: Reader): void;
  onReplicationReadEnd(): void;
}

export class Peers {
  role: ReplicationRole = "candidate";
  epoch = 0;
  private highestEpochSeen = 0;
  /** Ready to apply the followed primary's APPENDs (and to ack them): its snapshot has arrived. */
  private applying = false;
  /**
   * This node's state holds all that was acknowledged in `epoch` as far as it knows, so it may
   * promote on it. Unlike `applying`, kept while it asks the same primary of the same epoch for
   * a snapshot again: a snapshot replaces the state only when it arrives, all at once.
   */
  private holdsLatest = false;
  /** Synced to a primary, or primary, since this process started: until then its state may be older than a peer's. */
  private syncedSinceStart = false;
  /** Peers that answered (WELCOME) since this process started; their links keep the epoch and index they last gave. */
  private readonly heard = new Set<CoordinatorLink>();
  private following: CoordinatorLink | undefined;
  /** The primary followed last, still set after its link dropped: following it again in its epoch keeps the state. */
  private lastPrimary: CoordinatorLink | undefined;
  /** Since when there has been no primary and nothing stopped this node from leading. */
  private noPrimarySince: number | undefined;
  /** Since when something stops this node from leading (leadBlocker), and the reason last logged. */
  private blockedSince: number | undefined;
  private blockLogged: string | undefined;
  private lastHeardAt = 0;
  /** Set its data aside (--recover-from-peer): may not lead before a primary's snapshot arrived. */
  private rejoining = false;
  /** Log index recovered from disk: after a whole-shard restart the most complete replica should lead. */
  private recoveredIndex = 0;
  /** A primary that handed over to us: not followed again unless it comes back with a newer epoch. */
  private retired: CoordinatorLink | undefined;
  private readonly links: CoordinatorLink[] = [];

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly log: Logger,
    private readonly events: PeerEvents,
  ) {}

  /** Ready to apply APPENDs from the followed primary (and to acknowledge them). */
  get isSynced(): boolean {
    return this.applying;
  }

  get primaryLabel(): string | undefined {
    if (this.role === "primary") return this.config.advertise;
    return this.following?.up ? this.following.label : undefined;
  }

  /** State recovered from disk (--data-dir): this node holds entries up to `index` of `epoch`. */
  recovered(epoch: number, index: number): void {
    this.epoch = epoch;
    this.recoveredIndex = index;
    this.highestEpochSeen = Math.max(this.highestEpochSeen, epoch);
    // The latest this node knows of; whether a peer holds more is for leadBlocker() to find out.
    this.holdsLatest = index > 0;
  }

  rejoinFromPeer(): void {
    this.rejoining = true;
  }

  start(now: number): void {
    if (this.config.peers.length === 0) {
      this.becomePrimary(this.epoch + 1, "single node (no --peer)");
      return;
    }
    this.blockedSince = now;
    const hello = (): Hello => ({
      role: "coordinator", version: PROTOCOL_VERSION, nodeId: this.config.nodeId,
      shard: this.config.scheduler.shard, epoch: this.epoch, primary: this.role === "primary",
      token: this.config.tokens.clusterToken,
    });
    // Peer links accept frames as large as a snapshot.
    const limits = { ...this.config.limits, frameBytesMax: Math.max(this.config.limits.frameBytesMax, this.config.snapshotBytesMax) };
    for (const address of this.config.peers) {
      const link = new CoordinatorLink(address, {
        hello, limits, tls: this.config.tls.client, reconnectMinMs: this.config.reconnectMinMs, reconnectMaxMs: this.config.reconnectMaxMs,
      }, this.log, {
        onMessage: (l, kind, r) => this.fromPeer(l, kind, r),
        onReadEnd: (l) => {
          if (l === this.following) this.events.onReplicationReadEnd();
        },
        onUp: (l) => {
          this.heard.add(l);
          this.evaluate(Date.now());
        },
        onRole: () => this.evaluate(Date.now()),
        onDown: (l) => {
          if (l === this.following) {
            // Keep holdsLatest: our state is still the latest this node knows, which is what promotion needs.
            this.log.warn("primary link lost", { primary: l.label });
            this.following = undefined;
          }
          this.evaluate(Date.now());
        },
      });
      this.links.push(link);
      link.connect();
    }
  }

  stop(): void {
    for (const link of this.links) link.close();
  }

  tick(now: number): void {
    if (this.following?.up && this.applying && now - this.lastHeardAt > this.config.failoverTimeoutMs) {
      this.log.warn("primary silent", { primary: this.following.label, silentMs: now - this.lastHeardAt });
      this.following.reset("primary sent nothing within --failover-timeout-ms");
    }
    this.evaluate(now);
  }

  /** After a snapshot from the followed primary of `epoch` was applied. */
  synced(epoch: number): void {
    this.applying = true;
    this.holdsLatest = true;
    this.syncedSinceStart = true;
    this.epoch = epoch;
    this.lastHeardAt = Date.now();
  }

  /**
   * The log had a gap: start over with a fresh snapshot. The state applied so far still holds
   * all that primary acknowledged (it counts this node's acks, and a gap's entries were never
   * acked), so follow() keeps it promotable until the snapshot replaces it.
   */
  resync(): void {
    if (this.following !== undefined) this.follow(this.following);
  }

  sendToPrimary(encode: (w: FrameWriter) => void): void {
    const conn = this.following?.writableConnection();
    if (conn === undefined) return;
    encode(conn.writer);
    conn.queueFlush();
  }

  private fromPeer(link: CoordinatorLink, kind: number, r: Reader): void {
    if (link !== this.following) return; // replication comes only from the primary we follow
    this.lastHeardAt = Date.now();
    if (isReplicationKind(kind)) this.events.onReplication(kind, r);
    if (kind === Kind.HANDOVER && this.applying) {
      // The primary is stopping on purpose and we hold all it acknowledged: take over now, not after a timeout.
      this.log.info("primary handed over", { primary: link.label, epoch: link.epoch });
      this.retired = link;
      this.following = undefined;
      this.becomePrimary(Math.max(this.epoch, this.highestEpochSeen) + 1, `handover from ${link.label}`);
    }
  }

  /** The role rules above (src/core/static-role.ts), applied to what the links know now. */
  private evaluate(now: number): void {
    for (const l of this.links) if (l.up && l.epoch > this.highestEpochSeen) this.highestEpochSeen = l.epoch;
    const decision = decideStaticRole(this.view());
    switch (decision.kind) {
      case "stay":
        if (this.role === "primary") return;
        // Following the best primary already.
        this.noPrimarySince = undefined;
        return this.unblocked();
      case "step-down": {
        const best = this.link(decision.to);
        // Follow first, so what stepDown() announces is already "backup".
        this.follow(best);
        return this.events.stepDown(`${best.label} is primary of epoch ${best.epoch}`);
      }
      case "follow":
        this.noPrimarySince = undefined;
        this.unblocked();
        return this.follow(this.link(decision.to));
      case "wait":
        return this.waitToLead(now, decision);
      case "may-lead":
        this.unblocked();
        this.noPrimarySince ??= now;
        if (now - this.noPrimarySince >= decision.afterMs) this.becomePrimary(decision.epoch, `no primary for ${now - this.noPrimarySince} ms`);
        return;
    }
  }

  private view(): StaticRoleView {
    return {
      address: this.config.advertise, shard: this.config.scheduler.shard, role: this.role, epoch: this.epoch,
      highestEpochSeen: this.highestEpochSeen, recoveredIndex: this.recoveredIndex, holdsLatest: this.holdsLatest,
      syncedSinceStart: this.syncedSinceStart, rejoining: this.rejoining, following: this.following?.label,
      failoverTimeoutMs: this.config.failoverTimeoutMs,
      peers: this.links.map((l) => ({
        label: l.label, up: l.up, primary: l.primary, shard: l.shard, epoch: l.epoch, index: l.index, heard: this.heard.has(l), retired: l === this.retired,
      })),
    };
  }

  private link(label: string): CoordinatorLink {
    return this.links.find((l) => l.label === label)!;
  }

  /** No promotion while blocked; the failover wait starts when the block ends. Says why once the wait outlasts a failover timeout. */
  private waitToLead(now: number, blocker: { peer?: string; reason: string }): void {
    this.noPrimarySince = undefined;
    this.blockedSince ??= now;
    const key = `${blocker.peer}: ${blocker.reason}`;
    if (now - this.blockedSince < this.config.failoverTimeoutMs || key === this.blockLogged) return;
    this.blockLogged = key;
    if (blocker.peer === undefined) this.log.warn("not leading", { reason: blocker.reason, waitedMs: now - this.blockedSince });
    else this.log.warn("waiting for peer before leading", { peer: blocker.peer, reason: blocker.reason, waitedMs: now - this.blockedSince });
  }

  private unblocked(): void {
    this.blockedSince = undefined;
    this.blockLogged = undefined;
  }

  private follow(link: CoordinatorLink): void {
    // The same primary in the same epoch again (its link dropped, or the log had a gap): our state
    // is a prefix of its log that holds all it acknowledged, promotable until the snapshot replaces it.
    const again = this.holdsLatest && link === this.lastPrimary && link.epoch === this.epoch;
    this.role = "backup";
    this.following = link;
    this.lastPrimary = link;
    this.applying = false;
    this.holdsLatest = again;
    this.epoch = link.epoch;
    this.lastHeardAt = Date.now();
    this.events.follow();
    this.log.info("following primary", { primary: link.label, epoch: link.epoch, keepsState: again });
    link.sendControl(Kind.REPL_SYNC, { epoch: link.epoch });
  }

  private becomePrimary(epoch: number, reason: string): void {
    this.role = "primary";
    this.epoch = epoch;
    this.highestEpochSeen = Math.max(this.highestEpochSeen, epoch);
    this.following = undefined;
    this.lastPrimary = undefined;
    this.applying = true;
    this.holdsLatest = true;
    this.syncedSinceStart = true;
    this.noPrimarySince = undefined;
    this.unblocked();
    this.log.info("promoted to primary", { epoch, reason, shard: this.config.scheduler.shard });
    this.events.promote(epoch);
  }
}
