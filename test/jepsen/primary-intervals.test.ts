// The derivation of primary terms from logs and signals, on small hand-made timelines.

import { describe, expect, test } from "bun:test";
import { acksOutsideTerms, primaryTerms, type NodeFault, type NodeLine } from "./primary-intervals.ts";

const line = (node: string, at: number, event: string, epoch?: number, life = 1): NodeLine => ({ node, life, at, event, ...(epoch !== undefined && { epoch }) });
const fault = (node: string, at: number, kind: NodeFault["kind"], life = 1): NodeFault => ({ node, life, at, kind });
const span = (t: { node: string; epoch: number; from: number; to: number }) => [t.node, t.epoch, t.from, t.to];

describe("primaryTerms", () => {
  test("a term runs from promotion to fence; one still open ends at `until`", () => {
    const lines = [line("c1", 10, "promoted to primary", 3), line("c1", 500, "fenced: stopped acting as primary"), line("c1", 501, "stepping down"), line("c2", 900, "promoted to primary", 9)];
    expect(primaryTerms(lines, [], 2_000).map(span)).toEqual([["c1", 3, 10, 500], ["c2", 9, 900, 2_000]]);
  });

  test("kill -9 ends the term when the signal was sent; a restart is a new life", () => {
    const lines = [line("c1", 10, "promoted to primary", 3), line("c1", 3_000, "promoted to primary", 15, 2)];
    expect(primaryTerms(lines, [fault("c1", 400, "kill")], 4_000).map(span)).toEqual([["c1", 3, 10, 400], ["c1", 15, 3_000, 4_000]]);
  });

  test("SIGSTOP closes the term; it stays closed when the node fences first after SIGCONT", () => {
    const lines = [line("c1", 10, "promoted to primary", 3), line("c1", 2_600, "backup lost"), line("c1", 2_601, "fenced: stopped acting as primary")];
    expect(primaryTerms(lines, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000).map(span)).toEqual([["c1", 3, 10, 100]]);
  });

  test("a fence logged in the same millisecond as the SIGCONT still comes after it: the term stays closed", () => {
    // Seen in CI: the resumed primary fenced 0 ms after the test's SIGCONT, and sorting the line first reopened its term.
    const lines = [line("c1", 10, "promoted to primary", 3), line("c1", 2_600, "fenced: stopped acting as primary"), line("c1", 2_601, "backup lost")];
    expect(primaryTerms(lines, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000).map(span)).toEqual([["c1", 3, 10, 100]]);
    // And a line of the same millisecond as the SIGSTOP was written before it.
    const before = [line("c1", 10, "promoted to primary", 3), line("c1", 100, "in-sync replicas changed"), line("c1", 2_700, "fenced: stopped acting as primary")];
    expect(primaryTerms(before, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000).map(span)).toEqual([["c1", 3, 10, 100]]);
    // A fence stamped a little before the SIGCONT (the node's clock and the test's differ by ms) was written after it.
    const early = [line("c1", 10, "promoted to primary", 3), line("c1", 2_598, "fenced: stopped acting as primary")];
    expect(primaryTerms(early, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000).map(span)).toEqual([["c1", 3, 10, 100]]);
  });

  test("after SIGCONT, primary work before any fence reopens the term (conservative)", () => {
    const lines = [line("c1", 10, "promoted to primary", 3), line("c1", 2_610, "in-sync replicas changed"), line("c1", 2_700, "fenced: stopped acting as primary")];
    expect(primaryTerms(lines, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000).map(span)).toEqual([["c1", 3, 10, 100], ["c1", 3, 2_600, 2_700]]);
  });

  test("a short pause the lease outlives: no fence after SIGCONT, so the term goes on", () => {
    const lines = [line("c1", 10, "promoted to primary", 3)];
    expect(primaryTerms(lines, [fault("c1", 100, "stop"), fault("c1", 400, "cont")], 1_000).map(span)).toEqual([["c1", 3, 10, 100], ["c1", 3, 400, 1_000]]);
  });
});

describe("acksOutsideTerms", () => {
  // c1 paused as primary, then fenced at once after SIGCONT: its term ends at the pause.
  const lines = [line("c1", 10, "promoted to primary", 3), line("c2", 1_200, "promoted to primary", 9), line("c1", 2_610, "fenced: stopped acting as primary")];
  const terms = primaryTerms(lines, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")], 5_000);

  test("an ack whose window meets a term of its node is explained, even one delivered late", () => {
    expect(acksOutsideTerms([{ node: "c1", key: "k", taskId: 1, sentAt: 90, at: 3_000 }], terms, [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")])).toEqual([]);
  });

  test("a request sent while the node was stopped and acknowledged after SIGCONT is evidence of a second primary", () => {
    const faults = [fault("c1", 100, "stop"), fault("c1", 2_600, "cont")];
    const out = acksOutsideTerms([{ node: "c1", key: "k", taskId: 1, sentAt: 1_500, at: 2_605 }], terms, faults);
    expect(out.map((o) => o.window)).toEqual([[2_600, 2_605]]);
    expect(out[0]!.asInterval).toMatchObject({ node: "c1", epoch: 3, from: 2_600, to: 2_605 });
  });
});
