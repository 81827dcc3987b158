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

import type { Task } from "./task.ts";

/** Ids per block: small enough to rescan in well under a millisecond, few enough blocks for a short scan. */
export const TABLE_BLOCK_IDS = 8192;

interface Block {
  readonly number: number;
  /** The id of slot 0: a block holds ids first ... first + TABLE_BLOCK_IDS - 1, each at slot id - first. */
  readonly first: number;
  readonly slots: (Task | undefined)[];
  count: number;
}

export class TaskTable {
  /** Ascending by block number: the newest ids are in the last block. */
  private readonly blocks: Block[] = [];
  /** The block last looked up: most lookups in a row are for neighbouring ids. */
  private recent: Block | undefined;
  private count = 0;
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
    return this.count;
  }

  get(taskId: number): Task | undefined {
    const block = this.blockOf(taskId);
    return block === undefined ? undefined : block.slots[taskId - block.first];
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
    return collided === undefined ? undefined : this.get(collided);
  }

  add(task: Task): void {
    if (!Number.isSafeInteger(task.id) || task.id < 0) throw new RangeError(`task id ${task.id} is not a non-negative safe integer`);
    const block = this.blockOf(task.id) ?? this.newBlock(blockNumber(task.id));
    const slot = task.id - block.first;
    if (block.slots[slot] === undefined) {
      block.count++;
      this.count++;
    }
    block.slots[slot] = task;
    if (task.idempotencyKey !== "") this.indexKey(task);
  }

  delete(task: Task): void {
    const block = this.blockOf(task.id);
    const slot = block === undefined ? -1 : task.id - block.first;
    if (block === undefined || block.slots[slot] === undefined) return;
    block.slots[slot] = undefined;
    block.count--;
    this.count--;
    if (task.idempotencyKey !== "") this.unindexKey(task);
    if (block.count === 0) {
      this.blocks.splice(this.blocks.indexOf(block), 1);
      if (this.recent === block) this.recent = undefined;
    }
  }

  /** Every task, in id order. */
  *values(): IterableIterator<Task> {
    for (const block of this.blocks) {
      for (const task of block.slots) if (task !== undefined) yield task;
    }
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
    const number = blockNumber(taskId);
    if (this.recent?.number === number) return this.recent;
    // Newest first: just submitted and just finished tasks are the common case; otherwise a short scan.
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      const block = this.blocks[i]!;
      if (block.number === number) return (this.recent = block);
      if (block.number < number) return undefined;
    }
    return undefined;
  }

  private newBlock(number: number): Block {
    const block: Block = { number, first: number * TABLE_BLOCK_IDS, slots: new Array<Task | undefined>(TABLE_BLOCK_IDS).fill(undefined), count: 0 };
    let at = this.blocks.length;
    while (at > 0 && this.blocks[at - 1]!.number > number) at--;
    this.blocks.splice(at, 0, block);
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
