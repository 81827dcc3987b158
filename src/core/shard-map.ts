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
  /** The warnings add() gave, each given once. */
  private readonly warned = new Set<string>();

  /** `shardCount`: the cluster's shards, ids 0..N-1 (0: not given, hash over the known). */
  constructor(readonly shardCount = 0) {}

  /** Shard ids seen so far, ascending. */
  get known(): readonly number[] {
    return this.shards;
  }

  /** A coordinator serves `shard`. Returns, once each, what that means for keys: a shard outside the count, or keys that move. */
  add(shard: number): string | undefined {
    if (this.shards.includes(shard)) return undefined;
    const warning =
      this.shardCount > 0 && shard >= this.shardCount ? `a coordinator serves shard ${shard}, outside --shards ${this.shardCount}: tasks with an idempotency key never go there`
      : this.shardCount === 0 && this.shards.length > 0 ? "several shards and no --shards: a task's idempotency key hashes over the shards heard from so far, so a retry while shards come and go may make a second task; give --shards N"
      : undefined;
    this.shards = [...this.shards, shard].sort((a, b) => a - b);
    if (warning === undefined || this.warned.has(warning)) return undefined;
    this.warned.add(warning);
    return warning;
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

  /** Shards of the cluster (0..shardCount-1) no coordinator has said it serves yet: a refusal for one is retryable. */
  unheard(): number[] {
    const unheard: number[] = [];
    for (let shard = 0; shard < this.shardCount; shard++) if (!this.shards.includes(shard)) unheard.push(shard);
    return unheard;
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
