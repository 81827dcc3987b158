// Which connections a server keeps, as pure bookkeeping (no sockets, no clock):
// slots by kind, so idle clients can never take the links a cluster needs to
// work (workers, routers, other coordinators), and an idle clock per client.
// The framed ports (endpoints.ts) and the HTTP ports (http-front.ts) share it.

import type { Role } from "../protocol/messages.ts";

/**
 * "handshaking": open, kind not known yet (no valid HELLO, or for HTTP no
 * complete first request head). "client": clients, top and HTTP callers.
 * "peer": workers, routers and other coordinators.
 */
export type SlotKind = "handshaking" | "client" | "peer";

export interface SlotLimits {
  /** Connections in their handshake at once; past it the oldest of them is closed to make room. */
  handshakesMax: number;
  /** Client connections (client and top roles; every HTTP connection) after their handshake. */
  clientsMax: number;
  /** Worker, router and coordinator links after their handshake: slots clients never take. */
  peersMax: number;
}

/** The flag that sets each limit, so a refusal can say which one was hit. */
const LIMIT_FLAG: Record<"client" | "peer", string> = { client: "--connections-max", peer: "--peer-connections-max" };
const KIND_WORDS: Record<"client" | "peer", string> = { client: "client connections", peer: "worker, router and coordinator links" };

/** The slot a role takes once its HELLO is accepted. */
export function slotKindOf(role: Role): "client" | "peer" {
  return role === "client" || role === "top" ? "client" : "peer";
}

export class ConnectionSlots<T> {
  /** In insertion order, so the first is the one longest in its handshake. */
  private readonly handshaking = new Set<T>();
  private readonly clients = new Set<T>();
  private readonly peers = new Set<T>();

  constructor(readonly limits: SlotLimits) {}

  count(kind: SlotKind): number {
    return this.setOf(kind).size;
  }

  /** Client connections, for the idle sweep. */
  get clientConnections(): ReadonlySet<T> {
    return this.clients;
  }

  /**
   * A new connection takes a handshaking slot. When they are all taken, the
   * oldest handshake is returned for the caller to close: a flood of silent
   * connections then has to outpace a real handshake (about a millisecond)
   * to push one out, where refusing the newest would shut out every new
   * worker for as long as the flood lasts.
   */
  open(conn: T): T | undefined {
    let evicted: T | undefined;
    if (this.handshaking.size >= this.limits.handshakesMax) {
      evicted = this.handshaking.values().next().value as T;
      this.handshaking.delete(evicted);
    }
    this.handshaking.add(conn);
    return evicted;
  }

  /**
   * The handshake of `conn` completed as `kind`: its handshaking slot becomes
   * a slot of that kind. When those are all taken, returns why (the
   * connection keeps its handshaking slot until the caller closes it).
   */
  identify(conn: T, kind: "client" | "peer"): string | undefined {
    if (!this.handshaking.has(conn)) return "this connection was not in its handshake";
    const taken = this.setOf(kind);
    const max = kind === "client" ? this.limits.clientsMax : this.limits.peersMax;
    if (taken.size >= max) return `this server already holds ${max} ${KIND_WORDS[kind]}, its limit (${LIMIT_FLAG[kind]}); retry later`;
    this.handshaking.delete(conn);
    taken.add(conn);
    return undefined;
  }

  /** The connection closed: whatever slot it held is free. */
  close(conn: T): void {
    if (!this.handshaking.delete(conn) && !this.clients.delete(conn)) this.peers.delete(conn);
  }

  private setOf(kind: SlotKind): Set<T> {
    return kind === "handshaking" ? this.handshaking : kind === "client" ? this.clients : this.peers;
  }
}

/**
 * When a client connection has been idle too long: nothing heard from it and
 * nothing it waits for (a task's result, a forwarded request) for the whole
 * time. The listener's sweep calls sweep() every so often; between sweeps the
 * connection only flips `heard`, so the read path pays one store.
 */
export class IdleClock {
  /** Bytes arrived since the last sweep (true at first, so the first sweep starts the clock). */
  heard = true;
  /** Answers the peer is still owed that may take long; while any, it is not idle however quiet. */
  private waits = 0;
  private quietSinceMs = 0;

  get waiting(): number {
    return this.waits;
  }

  startWait(): void {
    this.waits++;
  }

  endWait(): void {
    // An end without its start is ignored, so it cannot cancel out a real wait later.
    if (this.waits > 0) this.waits--;
  }

  /** How long the connection has been idle as of `nowMs` (0 when it was heard from or waits on something). */
  sweep(nowMs: number): number {
    if (this.heard || this.waits > 0) {
      this.heard = false;
      this.quietSinceMs = nowMs;
      return 0;
    }
    return nowMs - this.quietSinceMs;
  }
}
