// splitCredit: a worker's slots split among the coordinators it serves, moved
// towards the ones with work for it, and never more leasable than it has.

import { describe, expect, test } from "bun:test";
import { splitCredit, type CreditLink } from "../../src/core/credit-split.ts";
import { Prng } from "../../src/core/prng.ts";

const link = (used: number, granted: number, eligible = true): CreditLink => ({ eligible, used, granted });

/** What the coordinators together may have running here: each its credit, or more if it already runs more. */
function leasable(links: readonly CreditLink[], grants: readonly number[]): number {
  return links.reduce((sum, l, i) => sum + Math.max(grants[i]!, l.used), 0);
}

describe("splitCredit", () => {
  test("a fresh worker splits its slots evenly over the primaries it serves; backups get none", () => {
    expect(splitCredit(8, [link(0, 0), link(0, 0)])).toEqual([4, 4]);
    expect(splitCredit(8, [link(0, 0), link(0, 0, false), link(0, 0)])).toEqual([4, 0, 4]);
    expect(splitCredit(8, [link(0, 0), link(0, 0), link(0, 0)])).toEqual([2, 3, 3]);
    expect(splitCredit(2, [link(0, 0), link(0, 0), link(0, 0)])).toEqual([0, 1, 1]);
    expect(splitCredit(8, [])).toEqual([]);
  });

  test("an idle coordinator keeps what it uses and a probe slot; the busy one gets the rest", () => {
    // A runs all 4 of its slots (it has more queued); B runs none of its 4.
    expect(splitCredit(8, [link(4, 4), link(0, 4)])).toEqual([7, 1]);
    expect(splitCredit(8, [link(4, 4), link(2, 4)])).toEqual([5, 3]);
  });

  test("credit moves back once the idle coordinator has work again", () => {
    // B's one slot is busy: both are hungry, and B's share grows as A's tasks finish.
    expect(splitCredit(8, [link(7, 7), link(1, 1)])).toEqual([4, 1]); // A's 7 still run: B waits for room
    expect(splitCredit(8, [link(4, 4), link(1, 1)])).toEqual([4, 4]);
  });

  test("credit given only from free room: a link running more than its new credit holds its slots", () => {
    const links = [link(8, 8), link(0, 0)];
    const grants = splitCredit(8, links);
    expect(grants).toEqual([4, 0]);
    expect(leasable(links, grants)).toBe(8);
  });

  test("random states: never more leasable than the total, backups get nothing (seed=16)", () => {
    const prng = new Prng(16);
    try {
      for (let round = 0; round < 20_000; round++) {
        const total = prng.int(40);
        const n = prng.int(5);
        const links: CreditLink[] = [];
        let room = total;
        for (let i = 0; i < n; i++) {
          const granted = prng.int(room + 1);
          const used = prng.int(2) === 0 ? granted : prng.int(granted + 1);
          room -= granted;
          links.push(link(used, granted, prng.int(4) !== 0));
        }
        const grants = splitCredit(total, links);
        expect(leasable(links, grants)).toBeLessThanOrEqual(total);
        links.forEach((l, i) => {
          expect(grants[i]!).toBeGreaterThanOrEqual(0);
          if (!l.eligible) expect(grants[i]).toBe(0);
        });
      }
    } catch (err) {
      throw new Error(`seed=16: ${String(err)}`, { cause: err });
    }
  });

  test("two coordinators, one with a backlog: it ends with most of the slots, and the sum never exceeds them", () => {
    const total = 8;
    let grants = splitCredit(total, [link(0, 0), link(0, 0)]);
    let backlog = [1000, 0];
    for (let round = 0; round < 20; round++) {
      // Each coordinator fills its credit from its backlog; every task finishes before the next round.
      const used = grants.map((g, i) => Math.min(g, backlog[i]!));
      backlog = backlog.map((b, i) => b - used[i]!);
      expect(used[0]! + used[1]!).toBeLessThanOrEqual(total);
      grants = splitCredit(total, used.map((u, i) => link(u, grants[i]!)));
    }
    expect(grants).toEqual([7, 1]);
  });
});

test("a worker's credit on the wire is a number: \"3\", true or [5] are refused", async () => {
  const { workerCredit } = await import("../../src/coordinator/request-shapes.ts");
  expect(workerCredit(3, 8, "E_BAD_REQUEST")).toBe(3);
  for (const bad of ["3", true, [5], 9, -1, 1.5, null]) expect(() => workerCredit(bad, 8, "E_BAD_REQUEST")).toThrow("worker slots must be an integer from 0 to 8");
});
