// A FIFO in fixed blocks of 1,024 slots: O(1) push and shift without the O(n)
// cost of Array.prototype.shift on long queues.
//
// Blocks rather than one circular array because of the garbage collector: an
// old array written to is rescanned whole by the next young-generation
// collection, and the scheduler's retention queue holds 200,000 tasks. In
// blocks, a push writes only the last block and a shift only the first.

const BLOCK_SHIFT = 10;
const BLOCK_SLOTS = 1 << BLOCK_SHIFT;
const SLOT_MASK = BLOCK_SLOTS - 1;

export class Deque<T> {
  /** blocks[0] holds the oldest items, from slot `head` on. */
  private readonly blocks: (T | undefined)[][] = [];
  private head = 0;
  private count = 0;
  /** One emptied block kept for the next push at a block boundary (a short queue crosses one every 1,024 items). */
  private spare: (T | undefined)[] | undefined;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    const end = this.head + this.count;
    const blockIndex = end >>> BLOCK_SHIFT;
    if (blockIndex === this.blocks.length) {
      this.blocks.push(this.spare ?? new Array<T | undefined>(BLOCK_SLOTS));
      this.spare = undefined;
    }
    this.blocks[blockIndex]![end & SLOT_MASK] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const first = this.blocks[0]!;
    const item = first[this.head];
    first[this.head] = undefined;
    this.count--;
    this.head++;
    if (this.head === BLOCK_SLOTS) {
      this.spare = this.blocks.shift();
      this.head = 0;
    } else if (this.count === 0) {
      this.head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.blocks[0]![this.head];
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) {
      const at = this.head + i;
      yield this.blocks[at >>> BLOCK_SHIFT]![at & SLOT_MASK] as T;
    }
  }
}
