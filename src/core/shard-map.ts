// Which shard a new task goes to. With a routing key (the idempotency key), a
// stable hash over the known shards, so a retried submission lands on the
// shard that has its key; without one, round-robin so load spreads evenly.

export class ShardMap {
  private shards: number[] = [];
  private rotation = 0;

  /** Shard ids seen so far, ascending. */
  get known(): readonly number[] {
    return this.shards;
  }

  add(shard: number): void {
    if (this.shards.includes(shard)) return;
    this.shards = [...this.shards, shard].sort((a, b) => a - b);
  }

  remove(shard: number): void {
    this.shards = this.shards.filter((s) => s !== shard);
  }

  /** The shard for a key given as bytes (data[start, end)); empty key: round-robin. -1 when no shard is known. */
  pick(data: Uint8Array, start: number, end: number): number {
    const n = this.shards.length;
    if (n === 0) return -1;
    if (end <= start) return this.shards[this.rotation++ % n]!;
    return this.shards[mix32(fnv1a(data, start, end)) % n]!;
  }
}

/**
 * murmur3's finalizer: FNV-1a's low bits depend only on the low bits of each
 * byte, so `hash % 2` would ignore most of the key; mixing spreads every bit.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit FNV-1a: fast, stable across processes and versions, good enough spread for keys. */
export function fnv1a(data: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    hash ^= data[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
