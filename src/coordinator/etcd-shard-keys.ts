// What an etcd-led replica knows of its shard's keys (etcd-keys.ts): the leader
// key and the ISR, read once and then watched from the revision read. A broken
// watch is read and watched anew; a watch that hangs without breaking (a
// half-open connection through a proxy or a partition) is caught by reading the
// keys back every few seconds, or a backup could follow a gone leader for good.
// EtcdControl decides on what this holds (changed()) and writes to it when its
// own transactions succeed.

import type { Logger } from "../cli/log.ts";
import { AssertionError } from "../core/assert.ts";
import type { EtcdKv, EtcdWatchEvent } from "../net/etcd-client.ts";
import { isrKey, leaderKey, shardPrefix, type IsrRecord, type LeaderRecord } from "../net/etcd-keys.ts";
import type { EtcdPort, Timers } from "./control-ports.ts";

const RETRY_MS = 200;
/** How often the keys are read back to catch a watch that hangs. */
const WATCH_CHECK_MS = 3_000;

export interface LeaderState {
  record: LeaderRecord;
  /** The key's create revision. */
  epoch: number;
  modRevision: number;
  lease: string;
}

export interface IsrState {
  members: string[];
  /** 0: the shard has no ISR yet (never led). */
  modRevision: number;
}

export interface ShardKeyEvents {
  /** What etcd shows changed (or was read anew): decide again. */
  changed(): void;
  /** False once the node stops: reads are no longer applied. */
  mayRead(): boolean;
  /** False while stopping or (re)joining: the read-back waits. */
  mayCheck(): boolean;
}

export class ShardKeys {
  leader: LeaderState | undefined;
  /** Undefined until first read. */
  isr: IsrState | undefined;
  /** The last leader etcd named (kept after its key is gone): the one a new leader deposes. */
  lastLeaderReplicaId: string | undefined;
  private watch: { close(): void } | undefined;
  /** Counts reloads: an answer to any but the latest is dropped. */
  private reloads = 0;
  private stopChecks: (() => void) | undefined;
  private checkingWatch = false;
  /** What a read-back found etcd to hold that the watch had not brought (see checkWatch). */
  private watchSuspect: string | undefined;

  constructor(
    private readonly etcd: EtcdPort,
    private readonly timers: Timers,
    private readonly log: Logger,
    private readonly prefix: string,
    private readonly shard: number,
    private readonly events: ShardKeyEvents,
  ) {}

  startChecks(): void {
    this.stopChecks = this.timers.every(WATCH_CHECK_MS, () => void this.checkWatch());
  }

  close(): void {
    this.stopChecks?.();
    this.watch?.close();
  }

  /**
   * Reads the shard's keys and watches them from there; a broken watch comes back
   * here. The old watch stops before the read, and only the latest reload applies
   * what it read: otherwise an old watch's newer events could be overwritten by an
   * older read (a backup then lost its leader and never asked it for a snapshot).
   */
  async reload(): Promise<void> {
    if (!this.events.mayRead()) return;
    const generation = ++this.reloads;
    this.watch?.close();
    this.watch = undefined;
    const shard = this.shard;
    let read: { kvs: EtcdKv[]; revision: number };
    try {
      read = await this.etcd.getPrefix(shardPrefix(this.prefix, shard));
    } catch (err) {
      if (generation !== this.reloads) return this.log.debug("dropped an etcd read's failure: a newer read started");
      this.log.warn("etcd read failed; retrying", { error: (err as Error).message });
      this.timers.after(RETRY_MS, () => void this.reload());
      return;
    }
    const { kvs, revision } = read;
    if (generation !== this.reloads) return this.log.debug("dropped an etcd read: a newer one started", { revision });
    if (!this.events.mayRead()) return;
    this.leaderFrom(kvs.find((kv) => kv.key === leaderKey(this.prefix, shard)));
    this.isrFrom(kvs.find((kv) => kv.key === isrKey(this.prefix, shard)));
    const current = () => generation === this.reloads;
    this.watch = this.etcd.watchPrefix(shardPrefix(this.prefix, shard), revision + 1, (events) => {
      if (current()) this.onWatch(events);
    }, (err) => {
      // What onWatch() threw ends the watch too: a broken invariant (its role change ran the core) is fatal, not re-read.
      if (err instanceof AssertionError) throw err;
      if (!current()) return;
      this.log.warn("etcd watch ended; re-reading", { error: err.message });
      this.timers.after(RETRY_MS, () => void this.reload());
    });
    this.events.changed();
  }

  /**
   * Reads the leader and ISR keys back and compares their revisions with what the
   * watch brought. A change may still be on its way through the watch, so only
   * the same difference twice in a row means the watch hangs: then re-read and watch anew.
   */
  private async checkWatch(): Promise<void> {
    if (!this.events.mayCheck() || this.watch === undefined || this.checkingWatch) return;
    const generation = this.reloads;
    const shard = this.shard;
    this.checkingWatch = true;
    let kvs: EtcdKv[];
    try {
      ({ kvs } = await this.etcd.getPrefix(shardPrefix(this.prefix, shard)));
    } catch {
      return; // etcd unreachable: the keep-alives deal with that
    } finally {
      this.checkingWatch = false;
    }
    if (generation !== this.reloads || !this.events.mayCheck()) return;
    const revisionOf = (key: string) => kvs.find((kv) => kv.key === key)?.modRevision ?? 0;
    const inEtcd = `${revisionOf(leaderKey(this.prefix, shard))}/${revisionOf(isrKey(this.prefix, shard))}`;
    const known = `${this.leader?.modRevision ?? 0}/${this.isr?.modRevision ?? 0}`;
    if (inEtcd === known || inEtcd !== this.watchSuspect) {
      this.watchSuspect = inEtcd === known ? undefined : inEtcd;
      return;
    }
    this.watchSuspect = undefined;
    this.log.warn("etcd watch missed a change; re-reading", { leaderAndIsrRevisions: inEtcd, known });
    void this.reload();
  }

  private onWatch(events: EtcdWatchEvent[]): void {
    const shard = this.shard;
    for (const e of events) {
      const kv = e.type === "DELETE" ? undefined : e.kv;
      if (e.kv.key === leaderKey(this.prefix, shard)) this.leaderFrom(kv);
      else if (e.kv.key === isrKey(this.prefix, shard)) this.isrFrom(kv);
    }
    this.events.changed();
  }

  private leaderFrom(kv: EtcdKv | undefined): void {
    if (kv === undefined) {
      if (this.leader !== undefined) this.log.info("shard has no leader", { previous: this.leader.record.nodeId, epoch: this.leader.epoch });
      this.leader = undefined;
      return;
    }
    const record = parseJson<LeaderRecord>(kv.value);
    if (record === undefined || typeof record.address !== "string" || typeof record.replicaId !== "string") {
      this.log.error("unreadable leader key in etcd; ignoring it until it changes", { key: kv.key });
      this.leader = undefined;
      return;
    }
    this.leader = { record, epoch: kv.createRevision, modRevision: kv.modRevision, lease: kv.lease };
    this.lastLeaderReplicaId = record.replicaId;
  }

  /** An ISR key read or written (undefined: the shard has none). */
  isrFrom(kv: EtcdKv | undefined): void {
    if (kv === undefined) {
      this.isr = { members: [], modRevision: 0 };
      return;
    }
    // A late answer or read must not take us back to an older ISR than the watch already showed.
    if (this.isr !== undefined && kv.modRevision < this.isr.modRevision) {
      return this.log.debug("ignored an in-sync replica list older than the one known", { read: kv.modRevision, known: this.isr.modRevision });
    }
    // An unreadable ISR names nobody: then no node campaigns (safe) until a leader rewrites it.
    const record = parseJson<IsrRecord>(kv.value);
    this.isr = { members: Array.isArray(record?.members) ? record.members.map(String) : [], modRevision: kv.modRevision };
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
