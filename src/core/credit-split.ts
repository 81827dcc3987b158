// How a worker serving several coordinators splits its slots (threads x
// concurrency) among them, so that together they never lease it more than it
// can run. Pure: the worker calls it with what each link uses and was granted.
//
// Demand is read from use: a coordinator running fewer tasks here than its
// credit had nothing more for this worker (it leases whenever it has credit
// and a task this worker can run), so it keeps what it uses plus one slot to
// show new demand; the others ("hungry": every slot of theirs busy) share the
// rest evenly. Credit taken from a link is taken at once; credit given to a
// link only comes out of slots that no link can still fill, so the sum of
// max(credit, running) over links never goes above the total.

import { assert } from "./assert.ts";

export interface CreditLink {
  /** Whether this coordinator may lease work here now (the primary of its shard). Others get 0. */
  eligible: boolean;
  /** Tasks from this coordinator running (or waiting for a slot) on the worker. */
  used: number;
  /** The credit it was last granted. */
  granted: number;
}

/** Spare slots an idle coordinator keeps beyond what it uses: a task it gets for it shows new demand. */
export const CREDIT_PROBE_SLOTS = 1;

/** New credit per link, in the links' order. */
export function splitCredit(total: number, links: readonly CreditLink[]): number[] {
  assert(Number.isInteger(total) && total >= 0, "a worker's total slots are a non-negative integer", "total", total);
  const target = fairTargets(total, links);
  // Decreases at once (the coordinator stops leasing past the new credit); increases only into free room.
  const grants = links.map((l, i) => Math.min(target[i]!, l.granted));
  let room = total;
  for (let i = 0; i < links.length; i++) room -= Math.max(grants[i]!, links[i]!.used);
  for (let i = 0; i < links.length && room > 0; i++) {
    const held = Math.max(grants[i]!, links[i]!.used);
    const raised = Math.min(target[i]!, held + room);
    if (raised <= grants[i]!) continue;
    grants[i] = raised;
    room -= Math.max(raised, links[i]!.used) - held;
  }
  return grants;
}

/** The split to move towards: idle links get use + a probe slot; hungry ones share the rest (max-min fair). */
function fairTargets(total: number, links: readonly CreditLink[]): number[] {
  const target = links.map(() => 0);
  const open: number[] = [];
  for (let i = 0; i < links.length; i++) if (links[i]!.eligible) open.push(i);
  if (open.length === 0) return target;
  const hungry = open.filter((i) => links[i]!.used >= links[i]!.granted);
  // Nobody hungry: everyone has spare credit, so split evenly (a burst then starts from a fair share).
  const wants = (i: number): number => (hungry.length === 0 || hungry.includes(i) ? Infinity : links[i]!.used + CREDIT_PROBE_SLOTS);
  // Water-filling: the smallest wants are met first, the rest shared evenly among the others; the
  // last one (hungry, or everyone when nobody is) takes what floor() left, so the whole total is handed out.
  const order = [...open].sort((a, b) => wants(a) - wants(b) || a - b);
  let left = total;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const share = Math.floor(left / (order.length - k));
    target[i] = Math.min(wants(i), share);
    left -= target[i]!;
  }
  return target;
}
