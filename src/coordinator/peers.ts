// A coordinator's view of the other replicas of its shard, and the rules that
// decide its role. Each node dials every peer; WELCOME and ROLE messages say
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

  /** The role rules above, applied to what the links know now. */
  private evaluate(now: number): void {
    for (const l of this.links) if (l.up && l.epoch > this.highestEpochSeen) this.highestEpochSeen = l.epoch;
    const best = this.bestPrimary();
    if (this.role === "primary") {
      if (best !== undefined && this.outranks(best)) {
        // Follow first, so what stepDown() announces is already "backup".
        this.follow(best);
        this.events.stepDown(`${best.label} is primary of epoch ${best.epoch}`);
      }
      return;
    }
    if (best !== undefined) {
      this.noPrimarySince = undefined;
      this.unblocked();
      if (this.following !== best || this.epoch !== best.epoch) this.follow(best);
      return;
    }
    const blocker = this.leadBlocker();
    if (blocker !== undefined) return this.waitToLead(now, blocker);
    this.unblocked();
    this.noPrimarySince ??= now;
    // Wait longer for every live peer that should lead instead: more state (epoch, then index), or as much and a lower address.
    let rank = 0;
    for (const l of this.links) if (l.up && this.peerLeads(l)) rank++;
    if (now - this.noPrimarySince >= this.config.failoverTimeoutMs * (1 + rank)) {
      this.becomePrimary(Math.max(this.epoch, this.highestEpochSeen) + 1, `no primary for ${now - this.noPrimarySince} ms`);
    }
  }

  /** Why this node may not lead now (whatever the time), or undefined when it may. */
  private leadBlocker(): { peer?: CoordinatorLink; reason: string } | undefined {
    if (this.rejoining && !this.syncedSinceStart) {
      // Its peers may all hold nothing too (they lost their data, or are new): leading now could
      // start the shard over empty while the set-aside files hold acknowledged tasks.
      return { reason: "this node set its data aside (--recover-from-peer): it leads only once it holds a primary's snapshot" };
    }
    if (!this.syncedSinceStart) {
      // All it holds is what it recovered, or nothing: a peer that is down now may have acknowledged more.
      for (const l of this.links) {
        if (!this.heard.has(l)) return { peer: l, reason: "not heard from since this node started: it may hold acknowledged tasks this node lacks" };
      }
      for (const l of this.links) {
        if (this.holdsMore(l)) return { peer: l, reason: `it holds more (epoch ${l.epoch}, index ${l.index}; this node: epoch ${this.epoch}, index ${this.recoveredIndex}): it should lead` };
      }
    }
    if (!this.holdsLatest && this.highestEpochSeen > 0) {
      return { reason: `this node does not hold the state of epoch ${this.highestEpochSeen} (its snapshot never arrived): promoting would drop tasks acknowledged in it` };
    }
    return undefined;
  }

  /** No promotion while blocked; the failover wait starts when the block ends. Says why once the wait outlasts a failover timeout. */
  private waitToLead(now: number, blocker: { peer?: CoordinatorLink; reason: string }): void {
    this.noPrimarySince = undefined;
    this.blockedSince ??= now;
    const key = `${blocker.peer?.label}: ${blocker.reason}`;
    if (now - this.blockedSince < this.config.failoverTimeoutMs || key === this.blockLogged) return;
    this.blockLogged = key;
    if (blocker.peer === undefined) this.log.warn("not leading", { reason: blocker.reason, waitedMs: now - this.blockedSince });
    else this.log.warn("waiting for peer before leading", { peer: blocker.peer.label, reason: blocker.reason, waitedMs: now - this.blockedSince });
  }

  private unblocked(): void {
    this.blockedSince = undefined;
    this.blockLogged = undefined;
  }

  /** The live primary with the highest epoch (ties: the lowest address). */
  private bestPrimary(): CoordinatorLink | undefined {
    let best: CoordinatorLink | undefined;
    for (const l of this.links) {
      if (!l.up || !l.primary || l.shard !== this.config.scheduler.shard) continue;
      if (l === this.retired && l.epoch < this.epoch) continue; // it handed over and is on its way out
      if (best === undefined || l.epoch > best.epoch || (l.epoch === best.epoch && l.label < best.label)) best = l;
    }
    return best;
  }

  /** Does that peer hold more than this node (a later epoch, or more of the same), by what it last said, up or down? */
  private holdsMore(l: CoordinatorLink): boolean {
    return l.epoch !== this.epoch ? l.epoch > this.epoch : l.index > this.recoveredIndex;
  }

  private peerLeads(l: CoordinatorLink): boolean {
    if (l.epoch !== this.epoch) return l.epoch > this.epoch;
    if (l.index !== this.recoveredIndex) return l.index > this.recoveredIndex;
    return l.label < this.config.advertise;
  }

  /** Does that primary win over this one? */
  private outranks(other: CoordinatorLink): boolean {
    return other.epoch > this.epoch || (other.epoch === this.epoch && other.label < this.config.advertise);
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
