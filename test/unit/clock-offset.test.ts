// The clock-offset estimate (src/core/clock-offset.ts): transit time never makes
// a clock look further off than its least-delayed recent message says.

import { expect, test } from "bun:test";
import { ClockOffsetFilter } from "../../src/core/clock-offset.ts";

test("the least-delayed sample wins, for a clock ahead and one behind", () => {
  const ahead = new ClockOffsetFilter(10_000);
  for (const [delay, t] of [[40, 0], [2, 50], [15, 100]] as const) ahead.sample(-300 + delay, t);
  expect(ahead.estimate(150)).toBe(-298);
  const behind = new ClockOffsetFilter(10_000);
  for (const [delay, t] of [[9, 0], [1, 50]] as const) behind.sample(700 + delay, t);
  expect(behind.estimate(60)).toBe(701);
});

test("a burst of stale messages after a pause does not fake a skewed clock (seed 372 of the replica-group simulation)", () => {
  const f = new ClockOffsetFilter(30_000);
  for (let t = 0; t < 2_000; t += 50) f.sample(1, t); // prompt heartbeats, clocks exact
  // Paused 1.9 s; then the backlog arrives at once, each message as old as its wait.
  for (let sent = 2_000; sent < 3_900; sent += 50) f.sample(3_900 - sent, 3_900);
  expect(f.estimate(3_900)).toBe(1);
});

test("samples age out: with none in the last window there is no estimate, and a real skew shows", () => {
  const f = new ClockOffsetFilter(1_000);
  f.sample(5, 0);
  expect(f.estimate(400)).toBe(5);
  expect(f.estimate(2_500)).toBeUndefined();
  f.sample(7_200_000, 2_600);
  f.sample(7_200_003, 2_700);
  expect(f.estimate(2_800)).toBe(7_200_000);
});
