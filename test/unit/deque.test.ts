// Deque against an array as the reference, across block boundaries (1,024 slots a block).

import { describe, expect, test } from "bun:test";
import { Deque } from "../../src/core/deque.ts";
import { Prng } from "../../src/core/prng.ts";

describe("Deque", () => {
  test("empty: shift and peek give undefined", () => {
    const d = new Deque<number>();
    expect(d.length).toBe(0);
    expect(d.shift()).toBeUndefined();
    expect(d.peek()).toBeUndefined();
    expect([...d]).toEqual([]);
  });

  test("FIFO with peek and iteration in order", () => {
    const d = new Deque<string>();
    for (const x of ["a", "b", "c", "d", "e"]) d.push(x);
    expect(d.length).toBe(5);
    expect(d.peek()).toBe("a");
    expect([...d]).toEqual(["a", "b", "c", "d", "e"]);
    expect(d.shift()).toBe("a");
    expect(d.shift()).toBe("b");
    expect([...d]).toEqual(["c", "d", "e"]);
  });

  test("grows across blocks while the head is in the middle of the first", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 3; i++) d.push(i);
    d.shift();
    d.shift(); // head at 2
    for (let i = 3; i < 3000; i++) d.push(i);
    expect([...d]).toEqual(Array.from({ length: 2998 }, (_, i) => i + 2));
    for (let i = 2; i < 2000; i++) expect(d.shift()).toBe(i);
    expect(d.peek()).toBe(2000);
    expect(d.length).toBe(1000);
  });

  test("a short queue sliding past many block boundaries stays in order", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 10_000; i++) {
      d.push(i);
      d.push(-i);
      expect(d.shift()).toBe(i % 2 === 0 ? i / 2 : -(i - 1) / 2);
    }
    expect(d.length).toBe(10_000);
  });

  test("random pushes and shifts match an array (seed=5)", () => {
    const prng = new Prng(5);
    const d = new Deque<number>();
    const ref: number[] = [];
    for (let step = 0; step < 50_000; step++) {
      if (prng.int(3) < 2 || ref.length === 0) {
        d.push(step);
        ref.push(step);
      } else {
        expect(d.shift()).toBe(ref.shift()!);
      }
      if (step % 997 === 0) expect([...d]).toEqual(ref);
      expect(d.length).toBe(ref.length);
    }
  });

  test("shifted slots are cleared, so a long-lived deque does not keep finished items alive", () => {
    const d = new Deque<object>();
    for (let i = 0; i < 1500; i++) d.push({});
    for (let i = 0; i < 1400; i++) d.shift();
    const blocks = (d as unknown as { blocks: unknown[][] }).blocks;
    expect(blocks.flat().filter((x) => x !== undefined).length).toBe(100);
  });
});
