// What a coordinator with static --peer replicas does next, given what its peer
// links last said and what it holds itself: the rules of src/coordinator/peers.ts
// (see there) as one pure function, no clock and no IO, so each rule can be
// tested alone. The epoch is the fencing token: one primary per epoch.

/** What one peer's link last said (WELCOME, then ROLE), kept while it is down. */
export interface PeerView {
  /** Its address, as dialled: ties between equals go to the lower one. */
  label: string;
  up: boolean;
  primary: boolean;
  shard: number;
  epoch: number;
  /** The log index it said it holds. */
  index: number;
  /** It answered since this process started. */
  heard: boolean;
  /** It handed over to this node: ignored while its epoch is older than ours. */
  retired: boolean;
}

export interface StaticRoleView {
  address: string;
  shard: number;
  role: "primary" | "backup" | "candidate";
  epoch: number;
  highestEpochSeen: number;
  /** Log index recovered from disk. */
  recoveredIndex: number;
  /** Its state holds all that was acknowledged in `epoch` as far as it knows. */
  holdsLatest: boolean;
  /** Synced to a primary, or primary, since this process started. */
  syncedSinceStart: boolean;
  /** It set its data aside (--recover-from-peer). */
  rejoining: boolean;
  /** The peer it follows now (its label), if any. */
  following: string | undefined;
  peers: readonly PeerView[];
  failoverTimeoutMs: number;
}

export type StaticDecision =
  /** Nothing to change. */
  | { kind: "stay" }
  /** A primary that a better one outranks: follow it, stepping down first. */
  | { kind: "step-down"; to: string }
  | { kind: "follow"; to: string }
  /** Something stops this node from leading, whatever the time; `peer`: the one it waits for. */
  | { kind: "wait"; peer?: string; reason: string }
  /** No primary and nothing stops it: it may lead once there has been none for `afterMs`, as `epoch`. */
  | { kind: "may-lead"; afterMs: number; epoch: number };

export function decideStaticRole(v: StaticRoleView): StaticDecision {
  const best = bestPrimary(v);
  if (v.role === "primary") {
    return best !== undefined && (best.epoch > v.epoch || (best.epoch === v.epoch && best.label < v.address)) ? { kind: "step-down", to: best.label } : { kind: "stay" };
  }
  if (best !== undefined) return v.following !== best.label || v.epoch !== best.epoch ? { kind: "follow", to: best.label } : { kind: "stay" };
  const blocker = leadBlocker(v);
  if (blocker !== undefined) return { kind: "wait", ...blocker };
  // Wait longer for every live peer that should lead instead: more state (epoch, then index), or as much and a lower address.
  let rank = 0;
  for (const p of v.peers) if (p.up && peerLeads(v, p)) rank++;
  return { kind: "may-lead", afterMs: v.failoverTimeoutMs * (1 + rank), epoch: Math.max(v.epoch, v.highestEpochSeen) + 1 };
}

/** The live primary of this shard with the highest epoch (ties: the lowest address). */
function bestPrimary(v: StaticRoleView): PeerView | undefined {
  let best: PeerView | undefined;
  for (const p of v.peers) {
    if (!p.up || !p.primary || p.shard !== v.shard) continue;
    if (p.retired && p.epoch < v.epoch) continue; // it handed over and is on its way out
    if (best === undefined || p.epoch > best.epoch || (p.epoch === best.epoch && p.label < best.label)) best = p;
  }
  return best;
}

/** Why this node may not lead now (whatever the time), or undefined when it may. */
function leadBlocker(v: StaticRoleView): { peer?: string; reason: string } | undefined {
  if (v.rejoining && !v.syncedSinceStart) {
    // Its peers may all hold nothing too (they lost their data, or are new): leading now could
    // start the shard over empty while the set-aside files hold acknowledged tasks.
    return { reason: "this node set its data aside (--recover-from-peer): it leads only once it holds a primary's snapshot" };
  }
  if (!v.syncedSinceStart) {
    // All it holds is what it recovered, or nothing: a peer that is down now may have acknowledged more.
    for (const p of v.peers) {
      if (!p.heard) return { peer: p.label, reason: "not heard from since this node started: it may hold acknowledged tasks this node lacks" };
    }
    for (const p of v.peers) {
      if (holdsMore(v, p)) return { peer: p.label, reason: `it holds more (epoch ${p.epoch}, index ${p.index}; this node: epoch ${v.epoch}, index ${v.recoveredIndex}): it should lead` };
    }
  }
  if (!v.holdsLatest && v.highestEpochSeen > 0) {
    return { reason: `this node does not hold the state of epoch ${v.highestEpochSeen} (its snapshot never arrived): promoting would drop tasks acknowledged in it` };
  }
  return undefined;
}

/** Does that peer hold more than this node (a later epoch, or more of the same), by what it last said, up or down? */
function holdsMore(v: StaticRoleView, p: PeerView): boolean {
  return p.epoch !== v.epoch ? p.epoch > v.epoch : p.index > v.recoveredIndex;
}

function peerLeads(v: StaticRoleView, p: PeerView): boolean {
  if (p.epoch !== v.epoch) return p.epoch > v.epoch;
  if (p.index !== v.recoveredIndex) return p.index > v.recoveredIndex;
  return p.label < v.address;
}
