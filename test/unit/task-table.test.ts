// TaskTable against a Map-and-key-map reference: ids across many blocks, keys
// reused after their task is forgotten, restores out of id order.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { keyHash, SPARSE_BELOW, TABLE_BLOCK_IDS, TaskTable } from "../../src/core/task-table.ts";
import { makeTaskId, type Task } from "../../src/core/task.ts";

function task(id: number, key = ""): Task {
  return { id, idempotencyKey: key } as Task;
}

describe("TaskTable", () => {
  test("get, has, withKey and size across blocks", () => {
    const table = new TaskTable();
    const ids = [1, 2, TABLE_BLOCK_IDS, 3 * TABLE_BLOCK_IDS + 5, makeTaskId(3, 7)];
    for (const id of ids) table.add(task(id, `k${id}`));
    expect(table.size).toBe(ids.length);
    for (const id of ids) {
      expect(table.get(id)?.id).toBe(id);
      expect(table.has(id)).toBe(true);
      expect(table.withKey(`k${id}`)?.id).toBe(id);
    }
    expect(table.get(4)).toBeUndefined();
    expect(table.get(2 * TABLE_BLOCK_IDS)).toBeUndefined();
    expect(table.withKey("nope")).toBeUndefined();
    expect([...table.values()].map((t) => t.id)).toEqual(ids);
  });

  test("deleting the last task of a block drops the block; adding again brings it back in id order", () => {
    const table = new TaskTable();
    for (const id of [5, TABLE_BLOCK_IDS + 1, 2 * TABLE_BLOCK_IDS + 1]) table.add(task(id));
    table.delete(task(TABLE_BLOCK_IDS + 1));
    expect((table as unknown as { blocks: unknown[] }).blocks.length).toBe(2);
    table.add(task(TABLE_BLOCK_IDS + 2));
    expect([...table.values()].map((t) => t.id)).toEqual([5, TABLE_BLOCK_IDS + 2, 2 * TABLE_BLOCK_IDS + 1]);
    table.delete(task(999_999)); // not held: nothing happens
    expect(table.size).toBe(3);
  });

  test("an older block left with few tasks turns sparse, and everything still works on it", () => {
    const table = new TaskTable();
    const held = new Map<number, Task>();
    for (let id = 1; id < 2 * TABLE_BLOCK_IDS + 10; id++) {
      const t = task(id, `k${id}`);
      table.add(t);
      held.set(id, t);
    }
    // Keep 5 tasks of block 0, scattered: the rest go (retention, say).
    const keep = new Set([1, 100, 4000, 8000, TABLE_BLOCK_IDS - 1]);
    for (let id = 1; id < TABLE_BLOCK_IDS; id++) {
      if (keep.has(id)) continue;
      table.delete(held.get(id)!);
      held.delete(id);
    }
    const blocks = (table as unknown as { blocks: Array<{ slots?: unknown[]; sparse?: Map<number, Task> }> }).blocks;
    expect(blocks[0]!.slots).toBeUndefined();
    expect(blocks[0]!.sparse!.size).toBe(5);
    expect(blocks[1]!.slots).toBeDefined(); // full
    expect(blocks[2]!.slots).toBeDefined(); // the newest
    expect(table.size).toBe(held.size);
    for (const id of keep) {
      expect(table.get(id)?.id).toBe(id);
      expect(table.withKey(`k${id}`)?.id).toBe(id);
    }
    expect(table.get(2)).toBeUndefined();
    // Re-adding into a sparse block, then iterating: still in id order.
    table.add(task(50, "k50"));
    expect([...table.values()].slice(0, 7).map((t) => t.id)).toEqual([1, 50, 100, 4000, 8000, TABLE_BLOCK_IDS - 1, TABLE_BLOCK_IDS]);
    // Deleting by id alone (another object, no key) still forgets the held task's key.
    for (const id of [1, 50, 100, 4000, 8000, TABLE_BLOCK_IDS - 1]) table.delete(task(id));
    expect(blocks.length).toBe(2);
    expect(table.withKey("k100")).toBeUndefined();
    expect((table as unknown as { idByKeyHash: Map<number, number> }).idByKeyHash.size).toBe(table.size);
  });

  test("the newest block stays dense however few it holds, until a newer block starts", () => {
    const table = new TaskTable();
    for (let id = 1; id <= SPARSE_BELOW + 10; id++) table.add(task(id));
    for (let id = 1; id <= SPARSE_BELOW + 5; id++) table.delete(task(id));
    const blocks = (table as unknown as { blocks: Array<{ slots?: unknown[] }> }).blocks;
    expect(blocks[0]!.slots).toBeDefined();
    table.add(task(TABLE_BLOCK_IDS + 1));
    expect(blocks[0]!.slots).toBeUndefined();
    expect([...table.values()].map((t) => t.id)).toEqual([SPARSE_BELOW + 6, SPARSE_BELOW + 7, SPARSE_BELOW + 8, SPARSE_BELOW + 9, SPARSE_BELOW + 10, TABLE_BLOCK_IDS + 1]);
  });

  test("sparsenAll after a restore: blocks filled densely with few tasks turn sparse", () => {
    const table = new TaskTable();
    for (let b = 0; b < 4; b++) table.add(task(b * TABLE_BLOCK_IDS + 7));
    table.sparsenAll();
    const blocks = (table as unknown as { blocks: Array<{ slots?: unknown[] }> }).blocks;
    expect(blocks.map((b) => b.slots === undefined)).toEqual([true, true, true, false]);
    for (let b = 0; b < 4; b++) expect(table.get(b * TABLE_BLOCK_IDS + 7)?.id).toBe(b * TABLE_BLOCK_IDS + 7);
  });

  test("ids no task can have find nothing, and cannot be added", () => {
    const table = new TaskTable();
    table.add(task(3));
    for (const id of [-1, 1.5, Number.NaN, Infinity, 2 ** 60, -0.5]) expect(table.get(id)).toBeUndefined();
    for (const id of [-1, 1.5, Number.NaN, 2 ** 60]) expect(() => table.add(task(id))).toThrow(RangeError);
  });

  test("a key given to a newer task finds the newer one; forgetting the older keeps the newer", () => {
    const table = new TaskTable();
    const older = task(10, "k");
    const newer = task(3 * TABLE_BLOCK_IDS, "k");
    table.add(older);
    table.add(newer);
    expect(table.withKey("k")).toBe(newer);
    table.delete(older);
    expect(table.withKey("k")).toBe(newer);
    table.delete(newer);
    expect(table.withKey("k")).toBeUndefined();
  });

  test("keys whose hashes collide are all found, whichever is forgotten first", () => {
    const table = new TaskTable(() => 42);
    const [a, b, c] = [task(1, "a"), task(2, "b"), task(3, "c")];
    for (const t of [a, b, c]) table.add(t);
    expect([table.withKey("a"), table.withKey("b"), table.withKey("c"), table.withKey("d")]).toEqual([a, b, c, undefined]);
    table.delete(a);
    expect([table.withKey("a"), table.withKey("b"), table.withKey("c")]).toEqual([undefined, b, c]);
    const b2 = task(4, "b");
    table.add(b2);
    expect(table.withKey("b")).toBe(b2);
    table.delete(b2);
    table.delete(c);
    expect([table.withKey("b"), table.withKey("c")]).toEqual([b, undefined]);
  });

  test("keyHash: a safe integer, different for near keys", () => {
    const hashes = new Set<number>();
    for (let i = 0; i < 100_000; i++) {
      const h = keyHash(`run-${i}`);
      expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
      hashes.add(h);
    }
    expect(hashes.size).toBe(100_000);
  });

  for (const [name, hash] of [["keyHash", keyHash], ["a hash with many collisions", (k: string) => k.length % 3]] as const) {
    test(`random adds and deletes match a Map (seed=11, ${name})`, () => {
      const prng = new Prng(11);
      const table = new TaskTable(hash);
      const ref = new Map<number, Task>();
      const order: number[] = []; // ids held, oldest first
      let nextSeq = 1;
      for (let step = 0; step < 60_000; step++) {
        if (prng.int(5) < 3 || ref.size === 0) {
          const t = task(makeTaskId(1, nextSeq), `key-${nextSeq}`);
          nextSeq += 1 + prng.int(3);
          table.add(t);
          ref.set(t.id, t);
          order.push(t.id);
        } else {
          // Mostly the oldest (retention), sometimes any (cancel, purge).
          const id = order.splice(prng.int(4) === 0 ? prng.int(order.length) : 0, 1)[0]!;
          table.delete(ref.get(id)!);
          ref.delete(id);
        }
        if (step % 4999 === 0) {
          expect(table.size).toBe(ref.size);
          for (const [id, t] of ref) {
            expect(table.get(id)).toBe(t);
            expect(table.withKey(t.idempotencyKey)).toBe(t);
          }
        }
      }
      expect([...table.values()].sort((a, b) => a.id - b.id)).toEqual([...ref.values()].sort((a, b) => a.id - b.id));
    });
  }
});
