// Every task a scheduler holds, by id and by idempotency key, kept in blocks of
// consecutive ids (an array slot per id) rather than in one big Map, and keys
// indexed by a hash.
//
// Why: the engine's young-generation collections rescan every old object
// written to since the last collection, and a Map that took a new entry counts
// as written to *as a whole*. With one Map of 200,000 retained tasks (and
// another of their keys), each young collection walked all 200,000 entries:
// pauses of 10-60 ms, several a second, at 40,000 tasks/s. New ids only land
// in the newest block and evictions in the oldest, so a collection rescans
// those two blocks and none of the rest. Keys are indexed by a 53-bit hash,
// number to number, which holds no references for a collection to follow
// (bench/gc-churn.ts measures the layouts).
//
// A block is dense (an array slot per id, no hashing) while it fills and while
// most of it is held; once it is an older block with few tasks left (dead
// letters, tasks delayed far ahead, the survivors of retention), it turns
// sparse (a small Map), so a handful of tasks never pin 8,192 slots.

import type { Task } from "./task.ts";

/** Ids per block: small enough to rescan in well under a millisecond. */
export const TABLE_BLOCK_IDS = 8192;
/** An older block holding fewer tasks than this turns sparse (64 KiB of slots for under 256 tasks). */
export const SPARSE_BELOW = TABLE_BLOCK_IDS / 32;

interface Block {
  readonly number: number;
  /** The id of slot 0: a block holds ids first ... first + TABLE_BLOCK_IDS - 1. */
  readonly first: number;
  /** Dense: the task of id first + i at slot i. Undefined once sparse. */
  slots: (Task | undefined)[] | undefined;
  /** Sparse: the tasks left, by id. */
  sparse: Map<number, Task> | undefined;
  count: number;
}

export class TaskTable {
  /** Ascending by block number: the newest ids are in the last block. */
  private readonly blocks: Block[] = [];
  private readonly blockByNumber = new Map<number, Block>();
  /** keyHash(key) -> id of the newest task given that key. */
  private readonly idByKeyHash = new Map<number, number>();
  /** Keys whose hash another held key already has (about never: 53 bits): key -> id. */
  private readonly idByCollidedKey = new Map<string, number>();

  /** The last key hashed: a submission looks its key up, then adds the task under it. */
  private lastKey = "";
  private lastKeyHash = 0;

  /** `hash` is for tests, to make collisions happen. */
  constructor(private readonly hash: (key: string) => number = keyHash) {
    this.lastKeyHash = hash("");
  }

  get size(): number {
    let tasks = 0;
    for (const block of this.blocks) tasks += block.count;
    return tasks;
  }

  get(taskId: number): Task | undefined {
    const block = this.blockOf(taskId);
    if (block === undefined) return undefined;
    return block.slots !== undefined ? block.slots[taskId - block.first] : block.sparse!.get(taskId);
  }

  has(taskId: number): boolean {
    return this.get(taskId) !== undefined;
  }

  /** The task a key was last given to, while it is held. */
  withKey(key: string): Task | undefined {
    const id = this.idByKeyHash.get(this.hashOf(key));
    if (id !== undefined) {
      const task = this.get(id);
      if (task?.idempotencyKey === key) return task;
    }
    if (this.idByCollidedKey.size === 0) return undefined;
    const collided = this.idByCollidedKey.get(key);
    const task = collided === undefined ? undefined : this.get(collided);
    return task?.idempotencyKey === key ? task : undefined;
  }

  add(task: Task): void {
    if (!Number.isSafeInteger(task.id) || task.id < 0) throw new RangeError(`task id ${task.id} is not a non-negative safe integer`);
    const block = this.blockOf(task.id) ?? this.newBlock(blockNumber(task.id));
    const isNew = this.place(block, task);
    if (isNew) block.count++;
    if (task.idempotencyKey !== "") this.indexKey(task);
  }

  /** Forgets the task held under this task's id (and its key). */
  delete(task: Task): void {
    const block = this.blockOf(task.id);
    const removed = block === undefined ? undefined : this.remove(block, task.id);
    if (block === undefined || removed === undefined) return;
    block.count--;
    if (removed.idempotencyKey !== "") this.unindexKey(removed);
    if (block.count === 0) this.dropBlock(block);
    else this.sparsenIfFew(block);
  }

  /** Every task, in id order. */
  *values(): IterableIterator<Task> {
    for (const block of this.blocks) {
      if (block.slots !== undefined) {
        for (const task of block.slots) if (task !== undefined) yield task;
      } else {
        yield* [...block.sparse!.values()].sort((x, y) => x.id - y.id);
      }
    }
  }

  /** Calls `fn` with every task, in no particular order: cheaper than values() where order does not matter (the full consistency check). */
  forEach(fn: (task: Task) => void): void {
    for (const block of this.blocks) {
      if (block.slots === undefined) {
        block.sparse!.forEach(fn);
        continue;
      }
      const slots = block.slots;
      for (let i = 0; i < slots.length; i++) {
        const task = slots[i];
        if (task !== undefined) fn(task);
      }
    }
  }

  /**
   * Up to `max` tasks with ids in (afterId, beforeId), ascending, appended to `into`:
   * a cursor over the table that stays valid while tasks come and go between calls.
   */
  range(afterId: number, beforeId: number, max: number, into: Task[]): void {
    for (const block of this.blocks) {
      if (into.length >= max || block.first >= beforeId) return;
      if (block.first + TABLE_BLOCK_IDS <= afterId + 1) continue;
      if (block.slots !== undefined) {
        const end = Math.min(TABLE_BLOCK_IDS, beforeId - block.first);
        for (let slot = Math.max(0, afterId + 1 - block.first); slot < end && into.length < max; slot++) {
          const task = block.slots[slot];
          if (task !== undefined) into.push(task);
        }
      } else {
        const ids = [...block.sparse!.keys()].filter((id) => id > afterId && id < beforeId).sort((x, y) => x - y);
        for (const id of ids) if (into.length < max) into.push(block.sparse!.get(id)!);
      }
    }
  }

  /** One past the largest id held (0 when empty). */
  idEnd(): number {
    const block = this.blocks.at(-1);
    if (block === undefined) return 0;
    if (block.sparse !== undefined) return Math.max(...block.sparse.keys()) + 1;
    for (let slot = TABLE_BLOCK_IDS - 1; slot >= 0; slot--) if (block.slots![slot] !== undefined) return block.first + slot + 1;
    return block.first;
  }

  /** Turns every older block with few tasks sparse: after a restore, which fills blocks densely. */
  sparsenAll(): void {
    for (const block of this.blocks) this.sparsenIfFew(block);
  }

  /** Puts the task in its block; true if its id was not held before. */
  private place(block: Block, task: Task): boolean {
    if (block.slots !== undefined) {
      const slot = task.id - block.first;
      const isNew = block.slots[slot] === undefined;
      block.slots[slot] = task;
      return isNew;
    }
    const isNew = !block.sparse!.has(task.id);
    block.sparse!.set(task.id, task);
    return isNew;
  }

  /** Takes the id out of its block: the task that was held under it, if one was. */
  private remove(block: Block, taskId: number): Task | undefined {
    if (block.slots === undefined) {
      const held = block.sparse!.get(taskId);
      block.sparse!.delete(taskId);
      return held;
    }
    const slot = taskId - block.first;
    const held = block.slots[slot];
    block.slots[slot] = undefined;
    return held;
  }

  /** A dense block that is not the newest, holding few tasks, becomes a Map of them. */
  private sparsenIfFew(block: Block): void {
    if (block.slots === undefined || block.count >= SPARSE_BELOW || block === this.blocks.at(-1)) return;
    const sparse = new Map<number, Task>();
    for (const task of block.slots) if (task !== undefined) sparse.set(task.id, task);
    block.sparse = sparse;
    block.slots = undefined;
  }

  private dropBlock(block: Block): void {
    this.blocks.splice(this.blocks.indexOf(block), 1);
    this.blockByNumber.delete(block.number);
  }

  private indexKey(task: Task): void {
    const hash = this.hashOf(task.idempotencyKey);
    const holder = this.idByKeyHash.get(hash);
    // The newest task given a key takes it over (as a Map from key to id would).
    if (holder === undefined || this.get(holder)?.idempotencyKey === task.idempotencyKey) this.idByKeyHash.set(hash, task.id);
    else this.idByCollidedKey.set(task.idempotencyKey, task.id);
  }

  private unindexKey(task: Task): void {
    const hash = this.hashOf(task.idempotencyKey);
    if (this.idByKeyHash.get(hash) === task.id) this.idByKeyHash.delete(hash);
    else if (this.idByCollidedKey.get(task.idempotencyKey) === task.id) this.idByCollidedKey.delete(task.idempotencyKey);
  }

  private hashOf(key: string): number {
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.lastKeyHash = this.hash(key);
    }
    return this.lastKeyHash;
  }

  private blockOf(taskId: number): Block | undefined {
    return this.blockByNumber.get(blockNumber(taskId));
  }

  private newBlock(number: number): Block {
    const block: Block = { number, first: number * TABLE_BLOCK_IDS, slots: new Array<Task | undefined>(TABLE_BLOCK_IDS).fill(undefined), sparse: undefined, count: 0 };
    const newestBefore = this.blocks.at(-1);
    let at = this.blocks.length;
    while (at > 0 && this.blocks[at - 1]!.number > number) at--;
    this.blocks.splice(at, 0, block);
    this.blockByNumber.set(number, block);
    // The block that was newest may have emptied while it was (a small retention): now it is an older one.
    if (newestBefore !== undefined && newestBefore !== this.blocks.at(-1)) this.sparsenIfFew(newestBefore);
    return block;
  }
}

function blockNumber(taskId: number): number {
  return Math.floor(taskId / TABLE_BLOCK_IDS);
}

/** 53 bits of two 32-bit FNV-style hashes of the key's UTF-16 units: a safe integer, so a number-keyed Map entry. */
export function keyHash(key: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    a = Math.imul(a ^ unit, 0x01000193);
    b = Math.imul(b ^ unit, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + (b >>> 11);
}
