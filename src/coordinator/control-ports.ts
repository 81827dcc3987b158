// What the etcd-led role and replication shells (etcd-control.ts,
// isr-replica-set.ts) need of the world, as interfaces: the process passes
// performance.now(), timers, an EtcdClient and TCP links (leader-link.ts); the
// deterministic simulation (test/sim/replica-group-*) passes its own, so it
// drives this same code. Nothing here may read a clock or start a timer itself.

import type { EtcdClient } from "../net/etcd-client.ts";

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}

export interface Timers {
  after(ms: number, fn: () => void): void;
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

/** The etcd calls the shells make (EtcdClient's, with its timeouts and errors). */
export type EtcdPort = Pick<EtcdClient, "grantLease" | "keepAlive" | "revoke" | "get" | "getPrefix" | "put" | "txn" | "watchPrefix" | "close">;

/** A backup's link to the leader it follows, redialled while open. `Out`: what it sends up. */
export interface LeaderLink<Out> {
  /** The address dialled, as the leader key names it. */
  readonly label: string;
  /** Connected and welcomed. */
  readonly up: boolean;
  /** What the far end said it is (WELCOME, then ROLE). */
  readonly primary: boolean;
  readonly epoch: number;
  connect(): void;
  close(): void;
  /** Ask for the leader's state (REPL_SYNC): a snapshot follows. */
  requestSync(epoch: number, replicaId: string): void;
  /** Best effort: dropped while the link is down or the leader reads too slowly. */
  send(out: Out): void;
}

/** `In`: a replication message (snapshot or append) from the leader. */
export interface LeaderLinkEvents<In> {
  onReplication(link: LeaderLink<unknown>, msg: In): void;
  onReadEnd(link: LeaderLink<unknown>): void;
  /** Connected and welcomed. */
  onUp(link: LeaderLink<unknown>): void;
  /** The far end announced a new role or epoch. */
  onRole(link: LeaderLink<unknown>): void;
  /** A welcomed connection closed; the link redials on its own. */
  onDown(link: LeaderLink<unknown>): void;
}

/** Makes (does not dial) a link to `address`; throws when the address cannot be dialled. */
export type DialLeader<In, Out> = (address: string, events: LeaderLinkEvents<In>) => LeaderLink<Out>;

export const processClock: Clock = { now: () => performance.now() };

export const processTimers: Timers = {
  after: (ms, fn) => void setTimeout(fn, ms),
  every: (ms, fn) => {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  },
};
