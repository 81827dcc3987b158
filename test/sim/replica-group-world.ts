// The replica group simulation's environment: logical time as one event queue,
// the network (per-link delays, drops, partitions), TCP-like connections
// between nodes, and etcd calls and watches that cross that network. Nodes see
// only what arrives; a paused node keeps it in a backlog, a crashed one loses it.
// Everything random comes from the one seeded Prng, so a seed replays exactly;
// each watch draws from its own Prng seeded from it, so when a watch is closed
// changes no other draw.

import { drainMicrotasks } from "bun:jsc";
import { Heap } from "../../src/core/heap.ts";
import { Prng } from "../../src/core/prng.ts";
import { SimEtcd, SimEtcdError, type SimWatchEvent } from "./replica-group-etcd.ts";

/** Every bound of the network, named (TigerStyle: put a limit on everything). */
export const NET = {
  delayMsMax: 12, etcdDelayMsMax: 6,
  /** etcd requests, responses and client messages lost (a request then times out), per mille. */
  dropPerMille: 8,
  /** A node-to-node connection reset on a send, per mille. */
  resetPerMille: 2,
  /** How long an end takes to notice a connection or watch that broke silently. */
  detectMsMin: 100, detectMsSpread: 1_400,
  connectTimeoutMs: 300,
  /** Of the watches a cut breaks, one in this many hangs silently instead. */
  watchHangsPer: 4,
};

/** What a node is to the world: an incarnation that may be down or paused. */
export interface Host {
  readonly name: string;
  /** Runs `fn` if incarnation `inc` is still up: now, or on resume when paused. */
  deliver(inc: number, fn: () => void): void;
  readonly inc: number;
  readonly up: boolean;
}

export interface ConnEnd<M> {
  host: Host;
  inc: number;
  closed: boolean;
  message(conn: Conn<M>, msg: M): void;
  closedByPeer(conn: Conn<M>): void;
}

export class Conn<M> {
  broken = false;
  readonly lastAt: [number, number] = [0, 0];
  constructor(readonly id: number, readonly ends: [ConnEnd<M>, ConnEnd<M>]) {}
}

export interface WatchHandle {
  close(): void;
  /**
   * For stats only: the first revision etcd had for this watch after it was closed
   * (0: none yet), a change the watch would have carried had it stayed open.
   */
  readonly missedRevision: number;
}

/** etcd's side of one watch: the next revision it owes and when its last message arrives. */
interface Watcher {
  host: Host;
  inc: number;
  next: number;
  lastAt: number;
  handle: { closed: boolean; missedRevision: number };
  /** This watch's own delays and losses: closing it sooner or later leaves every other draw as it was. */
  prng: Prng;
  onEvents: (events: SimWatchEvent[]) => void;
  onError: () => void;
}

interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

export class World {
  now = 0;
  private seq = 0;
  private readonly queue = new Heap<Event>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  /** Link ("a|b", sorted) or endpoint ("a") cut until the given time. */
  readonly cuts = new Map<string, number>();
  /** etcd processes every request this much later until `slowUntil` (its leader hiccups). */
  etcdSlowMs = 0;
  etcdSlowUntil = 0;
  reliable = false;
  private nextConnId = 1;
  private readonly watchers = new Set<Watcher>();
  /** The last lines of what happened, for a failure's report. */
  readonly recent: string[] = [];
  traceAll = false;
  /** Watches that hung silently (see NET.watchHangsPer). */
  watchesHung = 0;

  constructor(readonly prng: Prng, readonly etcd: SimEtcd) {
    etcd.onChange = (revision, events) => {
      for (const w of this.watchers) this.push(w, revision, events);
    };
  }

  trace(line: string): void {
    const text = `t=${this.now} ${line}`;
    if (this.traceAll) console.log(text);
    this.recent.push(text);
    if (this.recent.length > 40) this.recent.shift();
  }

  at(time: number, fn: () => void): void {
    this.queue.push({ at: time, seq: this.seq++, fn });
  }

  /** A timer of incarnation `host.inc`: it fires late (on resume) when the host is paused, never once it crashed. */
  timer(host: Host, delayMs: number, fn: () => void, inc = host.inc): void {
    this.at(this.now + delayMs, () => host.deliver(inc, fn));
  }

  /** Runs every event due by `until`, each at its own time; etcd expires leases before each. */
  runUntil(until: number): void {
    for (let ev = this.queue.peek(); ev !== undefined && ev.at <= until; ev = this.queue.peek()) {
      this.queue.pop();
      this.now = ev.at;
      this.etcd.expire(this.now);
      ev.fn();
      // What the event settled (an etcd answer the real EtcdControl awaits) runs now, as after any callback.
      drainMicrotasks();
    }
    this.now = until;
    this.etcd.expire(this.now);
  }

  cut(a: string, b: string): boolean {
    if (this.reliable) return false;
    const now = this.now;
    return now < (this.cuts.get(a) ?? 0) || now < (this.cuts.get(b) ?? 0) || now < (this.cuts.get(a < b ? `${a}|${b}` : `${b}|${a}`) ?? 0);
  }

  /** Delay of one message from a to b, or undefined when it is lost. */
  transit(a: string, b: string, droppable: boolean, prng = this.prng): number | undefined {
    if (this.cut(a, b)) return undefined;
    if (droppable && !this.reliable && prng.int(1000) < NET.dropPerMille) return undefined;
    const etcd = a === "etcd" || b === "etcd";
    return 1 + prng.int(etcd ? NET.etcdDelayMsMax : NET.delayMsMax);
  }

  /**
   * When the end that closes a connection hears its own socket close: once the peer's
   * close comes back (a round trip), or when it notices the link is dead.
   */
  closeHeardMs(a: string, b: string): number {
    const there = this.transit(a, b, false);
    const back = there === undefined ? undefined : this.transit(b, a, false);
    return there === undefined || back === undefined ? this.detectMs() : there + back;
  }

  private detectMs(prng = this.prng): number {
    return NET.detectMsMin + prng.int(NET.detectMsSpread);
  }

  private etcdExtraMs(): number {
    return this.now < this.etcdSlowUntil ? this.prng.int(this.etcdSlowMs) : 0;
  }

  // ------------------------------------------------------------ etcd calls

  /** One etcd request (as EtcdClient.call): it may be applied in etcd and still time out at the caller. */
  etcdCall<R>(host: Host, timeoutMs: number, op: (etcd: SimEtcd, now: number) => R, ok: (r: R) => void, err: (why: string) => void): void {
    const inc = host.inc;
    let done = false;
    const finish = (f: () => void) => host.deliver(inc, () => {
      if (done) return;
      done = true;
      f();
    });
    this.at(this.now + timeoutMs, () => finish(() => err("timed out")));
    const there = this.transit(host.name, "etcd", true);
    if (there === undefined) return;
    this.at(this.now + there + this.etcdExtraMs(), () => {
      let answer: () => void;
      try {
        const r = op(this.etcd, this.now);
        answer = () => ok(r);
      } catch (e) {
        if (!(e instanceof SimEtcdError)) throw e;
        answer = () => err(e.message);
      }
      const back = this.transit("etcd", host.name, true);
      if (back !== undefined) this.at(this.now + back, () => finish(answer));
    });
  }

  /** A watch of every key from `fromRevision` on, as one ordered stream; it breaks on a cut link. */
  watch(host: Host, timeoutMs: number, fromRevision: number, onEvents: (events: SimWatchEvent[]) => void, onError: () => void): WatchHandle {
    const inc = host.inc;
    const prng = new Prng(this.prng.int(2 ** 32));
    const handle = { closed: false, missedRevision: 0 };
    const watchHandle: WatchHandle = {
      close: () => void (handle.closed = true),
      get missedRevision() {
        return handle.missedRevision;
      },
    };
    const there = this.transit(host.name, "etcd", true);
    if (there === undefined) {
      this.timer(host, timeoutMs, () => handle.closed || onError());
      return watchHandle;
    }
    this.at(this.now + there + this.etcdExtraMs(), () => {
      if (handle.closed) return;
      const w = { host, inc, next: fromRevision, lastAt: 0, handle, prng, onEvents, onError };
      this.watchers.add(w);
      const history = this.etcd.history;
      let i = history.length;
      while (i > 0 && history[i - 1]!.revision >= fromRevision) i--;
      for (; i < history.length; i++) this.push(w, history[i]!.revision, history[i]!.events);
    });
    return watchHandle;
  }

  private push(w: Watcher, revision: number, events: SimWatchEvent[]): void {
    if (revision < w.next || !this.watchers.has(w)) return;
    if (w.handle.closed) {
      w.handle.missedRevision = revision;
      return void this.watchers.delete(w);
    }
    w.next = revision + 1;
    if (w.host.inc !== w.inc || this.transit("etcd", w.host.name, false, w.prng) === undefined) {
      this.watchers.delete(w);
      // One cut watch in NET.watchHangsPer: its connection stays half open, so the node never hears it ended.
      if (w.host.inc === w.inc && w.prng.int(NET.watchHangsPer) === 0) {
        this.watchesHung++;
        return this.trace(`${w.host.name}'s watch hangs (no events, no error)`);
      }
      this.timer(w.host, this.detectMs(w.prng), () => w.handle.closed || ((w.handle.closed = true), w.onError()), w.inc);
      return;
    }
    w.lastAt = Math.max(this.now + 1 + w.prng.int(NET.etcdDelayMsMax), w.lastAt);
    this.at(w.lastAt, () => w.host.deliver(w.inc, () => w.handle.closed || w.onEvents(events)));
  }

  // ------------------------------------------------------------ connections between nodes

  /** Dials `to` from `from.host`; `accept` gives `to`'s end (the kernel accepts even while the process is paused), or the dial fails. */
  dial<M>(from: ConnEnd<M>, to: Host, accept: (conn: Conn<M>) => ConnEnd<M>, failed: () => void): void {
    const there = this.transit(from.host.name, to.name, false);
    if (there === undefined) return this.timer(from.host, NET.connectTimeoutMs, failed, from.inc);
    this.at(this.now + there, () => {
      if (!to.up) {
        const back = this.transit(to.name, from.host.name, false);
        return this.timer(from.host, back ?? NET.connectTimeoutMs, failed, from.inc); // refused, or unanswered
      }
      const conn = new Conn<M>(this.nextConnId++, [from, from]);
      conn.ends[1] = accept(conn);
    });
  }

  /** Sends on a connection from end `side`, in order; a cut link or a reset breaks it. */
  send<M>(conn: Conn<M>, side: 0 | 1, msg: M): void {
    const [me, peer] = [conn.ends[side], conn.ends[1 - side]!];
    if (conn.broken || me.closed || peer.closed) return;
    const delay = this.transit(me.host.name, peer.host.name, false);
    if (delay === undefined || (!this.reliable && this.prng.int(1000) < NET.resetPerMille)) return this.breakConn(conn);
    const at = Math.max(this.now + delay, conn.lastAt[side]);
    conn.lastAt[side] = at;
    this.at(at, () => peer.host.deliver(peer.inc, () => conn.broken || peer.closed || peer.message(conn, msg)));
  }

  /** End `side` closes (or its process died): the peer hears after what was in flight, or later when cut off. */
  close<M>(conn: Conn<M>, side: 0 | 1): void {
    const [me, peer] = [conn.ends[side], conn.ends[1 - side]!];
    if (me.closed) return;
    me.closed = true;
    if (conn.broken || peer.closed) return;
    const delay = this.transit(me.host.name, peer.host.name, false);
    const at = delay === undefined ? this.now + this.detectMs() : Math.max(this.now + delay, conn.lastAt[side]);
    this.at(at, () => peer.host.deliver(peer.inc, () => {
      if (peer.closed) return;
      peer.closed = true;
      peer.closedByPeer(conn);
    }));
  }

  /** Lost on the way: what is in flight is dropped, and each end notices after a while. */
  private breakConn<M>(conn: Conn<M>): void {
    conn.broken = true;
    for (const end of conn.ends) {
      if (end.closed) continue;
      this.at(this.now + this.detectMs(), () => end.host.deliver(end.inc, () => {
        if (end.closed) return;
        end.closed = true;
        end.closedByPeer(conn);
      }));
    }
  }
}
