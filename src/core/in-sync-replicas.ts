// The acknowledgement rule of an etcd-led replica group, as Kafka keeps its ISR:
// an entry is committed (a client may hear of it) once every in-sync replica
// holds it. Pure: acks, links and time come in as arguments; out come the
// committed index and the one change of the ISR to write to etcd next. The
// shell writes it with a compare-and-swap and reports back with settled().
//
// Safety rests on one rule: a replica counts for commits from the moment it is
// proposed for the ISR until etcd has confirmed its removal. So the ISR in etcd
// never names a replica that lacks a committed entry (only ISR members may lead),
// and nothing is acknowledged without a member before etcd says it has left.

import { assert } from "./assert.ts";

export interface InSyncReplicasOptions {
  /** This leader's replica id: always in the ISR, never waited for. */
  selfId: string;
  /** A member that has not acknowledged the last entry for this long (or is not connected) is proposed for removal. */
  lagTimeoutMs: number;
}

interface Replica {
  /** Highest log index it has acknowledged in this epoch (0: nothing yet, e.g. still loading our snapshot). */
  acked: number;
  connected: boolean;
  /**
   * Since when it has been disconnected or short of `target` (undefined: it holds
   * everything). As Kafka's lag rule: a replica acknowledging steadily under load
   * is always a little behind the last entry, but keeps reaching the last entry
   * as of the previous check, so it is never lagging.
   */
  behindSince: number | undefined;
  target: number;
  /** It may be kept out of the ISR for a reason of its own (a clock too far off). */
  excluded: boolean;
}

export class InSyncReplicas {
  /** The ISR as etcd holds it. */
  private confirmed: string[];
  /** A compare-and-swap in flight: its target list. */
  private proposed: string[] | undefined;
  private readonly replicas = new Map<string, Replica>();
  private committed: number;

  /** A leader that just took over: `members` is the ISR it read from etcd, `lastIndex` what it holds. */
  constructor(
    private readonly options: InSyncReplicasOptions,
    members: readonly string[],
    lastIndex: number,
    now: number,
  ) {
    assert(members.includes(options.selfId), "a leader is in the ISR it took over", "leader", options.selfId, "ISR", members.join(","));
    this.confirmed = [...members];
    // Everything the leader holds from before its epoch may have been acknowledged by its predecessor.
    this.committed = 0;
    for (const id of members) if (id !== options.selfId) this.replica(id, now);
    this.commit(lastIndex, now);
  }

  get members(): readonly string[] {
    return this.confirmed;
  }

  get committedIndex(): number {
    return this.committed;
  }

  get changePending(): boolean {
    return this.proposed !== undefined;
  }

  /**
   * A replica connected and was sent a snapshot of this leader's state at
   * `snapshotIndex`. It is behind until it acknowledges that much; a replica
   * that was already behind stays behind since then (reconnecting again and
   * again must not keep a replica that never catches up in the ISR).
   */
  connected(id: string, snapshotIndex: number, now: number): void {
    const r = this.replica(id, now);
    r.connected = true;
    r.acked = 0;
    r.behindSince ??= now;
    r.target = snapshotIndex;
  }

  disconnected(id: string, now: number): void {
    const r = this.replicas.get(id);
    if (r === undefined || !r.connected) return;
    r.connected = false;
    r.behindSince ??= now;
    r.target = Infinity;
  }

  acked(id: string, index: number): void {
    const r = this.replicas.get(id);
    if (r === undefined || !r.connected || index <= r.acked) return;
    r.acked = index;
  }

  /**
   * This leader itself stood still (a pause, a stalled event loop) for `stalledMs`
   * until `now`: whatever its connected replicas sent meanwhile is still unread in
   * its sockets, so their lag clocks move on by the stall instead of counting it
   * against them. (Disconnected ones had no way to be heard: no allowance.)
   */
  stalled(now: number, stalledMs: number): void {
    for (const r of this.replicas.values()) {
      if (r.connected && r.behindSince !== undefined) r.behindSince = Math.min(now, r.behindSince + stalledMs);
    }
  }

  /** A member known to be gone (the leader this one replaced): proposed for removal at once. */
  lost(id: string): void {
    const r = this.replicas.get(id);
    if (r === undefined) return;
    r.connected = false;
    r.behindSince = -Infinity;
    r.target = Infinity;
  }

  /** Keep (or stop keeping) a replica out of the ISR for a reason of its own. */
  exclude(id: string, excluded: boolean, now: number): void {
    this.replica(id, now).excluded = excluded;
  }

  /** The committed index, given the last index appended: the lowest acknowledgement of every voter. */
  commit(lastIndex: number, now: number): number {
    // What is committed may have been acknowledged to a client: the log never goes back past it.
    assert(lastIndex >= this.committed, "the log never shrinks below the committed index", "last index", lastIndex, "committed", this.committed);
    for (const r of this.replicas.values()) {
      if (!r.connected || r.acked < r.target) continue; // still short of the mark it was behind
      r.behindSince = r.acked >= lastIndex ? undefined : now;
      r.target = lastIndex;
    }
    let lowest = lastIndex;
    for (const id of this.voters()) {
      if (id === this.options.selfId) continue;
      const acked = this.replicas.get(id)?.acked ?? 0;
      if (acked < lowest) lowest = acked;
    }
    if (lowest > this.committed) this.committed = lowest;
    return this.committed;
  }

  /**
   * The ISR to write to etcd now, or undefined when none is wanted or one is in
   * flight: lagging, lost or excluded members out; connected replicas that hold
   * everything committed in. Call after commit(), which keeps the lag clocks.
   */
  proposal(now: number): string[] | undefined {
    // Called on every pump: decide whether anything changes before building a list.
    if (this.proposed !== undefined || !this.changeWanted(now)) return undefined;
    const next = this.confirmed.filter((id) => this.stays(id, now));
    for (const [id, r] of this.replicas) if (!this.confirmed.includes(id) && this.joins(r)) next.push(id);
    this.proposed = next;
    return next;
  }

  private changeWanted(now: number): boolean {
    for (const id of this.confirmed) if (!this.stays(id, now)) return true;
    for (const [id, r] of this.replicas) if (this.joins(r) && !this.confirmed.includes(id)) return true;
    return false;
  }

  private stays(id: string, now: number): boolean {
    return id === this.options.selfId || !this.lagging(id, now);
  }

  /** Holds everything committed and may lead: it may (re)join the ISR. */
  private joins(r: Replica): boolean {
    return r.connected && !r.excluded && r.acked > 0 && r.acked >= this.committed;
  }


  /** The compare-and-swap ended: `members` is what etcd holds now (the proposal, or undefined when it failed). */
  settled(members: readonly string[] | undefined): void {
    if (members !== undefined) this.confirmed = [...members];
    this.proposed = undefined;
  }

  /** Replicas commits wait for: the confirmed ISR and any proposed additions (see the module comment). */
  private voters(): string[] {
    if (this.proposed === undefined) return this.confirmed;
    const all = [...this.confirmed];
    for (const id of this.proposed) if (!all.includes(id)) all.push(id);
    return all;
  }

  /** Out of the ISR: excluded, or disconnected or behind for longer than the lag timeout. */
  private lagging(id: string, now: number): boolean {
    const r = this.replicas.get(id);
    if (r === undefined || r.excluded) return true;
    return r.behindSince !== undefined && now - r.behindSince > this.options.lagTimeoutMs;
  }

  private replica(id: string, now: number): Replica {
    let r = this.replicas.get(id);
    if (r === undefined) {
      r = { acked: 0, connected: false, behindSince: now, target: Infinity, excluded: false };
      this.replicas.set(id, r);
    }
    return r;
  }
}
