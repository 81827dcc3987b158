// Which shard a new task goes to. With a routing key (the idempotency key), a
// stable hash, so a retried submission lands on the shard that has its key;
// without one, round-robin over the shards known so load spreads evenly.
// The hash is over `shardCount` shards (ids 0..N-1) when the cluster's size is
// given, whether each is up or not: a key then always names the same shard, on
// every router, however shards come and go. Without it, over the shards known
// so far, and a key can move while that set changes (a router starting, etcd
// adding a shard), where a retry would make a second task under the same key.

export class ShardMap {
  private shards: number[] = [];
  private rotation = 0;

  /** `shardCount`: the cluster's shards, ids 0..N-1 (0: not given, hash over the known). */
  constructor(readonly shardCount = 0) {}

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
    if (end > start && this.shardCount > 0) return mix32(fnv1a(data, start, end)) % this.shardCount;
    const n = this.shards.length;
    if (n === 0) return -1;
    if (end <= start) return this.shards[this.rotation++ % n]!;
    return this.shards[mix32(fnv1a(data, start, end)) % n]!;
  }

  /** A shard of the cluster whose coordinators may just not have answered yet (so a refusal should be retryable). */
  expected(shard: number): boolean {
    return shard >= 0 && (shard < this.shardCount || this.shards.includes(shard));
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
