// Where a cluster keeps its control-plane state in etcd: one place that names
// every key, so coordinators, routers and workers agree on the layout.
//
//   <prefix>/shards/<shard>/leader             {nodeId, replicaId, address}  on the leader's lease;
//                                              its create revision is the shard's epoch
//   <prefix>/shards/<shard>/isr                {members: replicaId[], epoch} written by the leader only
//   <prefix>/shards/<shard>/members/<replica>  {nodeId, replicaId, address, shard} on each member's lease

export const DEFAULT_ETCD_PREFIX = "/task-scheduler";

/** A coordinator's registration: enough to dial it and to tell its incarnations apart. */
export interface MemberRecord {
  nodeId: string;
  /** Changes whenever the node restarts without its data: ISR entries name incarnations, not hosts. */
  replicaId: string;
  /** host:port its peers, routers and workers dial. */
  address: string;
  shard: number;
}

export type LeaderRecord = Omit<MemberRecord, "shard">;

export interface IsrRecord {
  members: string[];
  /** Epoch of the leader that wrote it (for logs; the compare-and-swap checks the leader key itself). */
  epoch: number;
}

export function shardsPrefix(prefix: string): string {
  return `${prefix}/shards/`;
}

export function shardPrefix(prefix: string, shard: number): string {
  return `${prefix}/shards/${shard}/`;
}

export function leaderKey(prefix: string, shard: number): string {
  return `${shardPrefix(prefix, shard)}leader`;
}

export function isrKey(prefix: string, shard: number): string {
  return `${shardPrefix(prefix, shard)}isr`;
}

export function memberKey(prefix: string, shard: number, replicaId: string): string {
  return `${shardPrefix(prefix, shard)}members/${replicaId}`;
}

/** Parses a member key's value; undefined for any other key or a value that is not a member record. */
export function parseMember(key: string, value: string): MemberRecord | undefined {
  if (!/\/shards\/\d+\/members\/[^/]+$/.test(key)) return undefined;
  try {
    const m = JSON.parse(value) as Partial<MemberRecord>;
    if (typeof m.address !== "string" || typeof m.replicaId !== "string" || !Number.isInteger(m.shard)) return undefined;
    return { nodeId: String(m.nodeId ?? ""), replicaId: m.replicaId, address: m.address, shard: m.shard as number };
  } catch {
    return undefined;
  }
}

/** "http://host:port" list from a flag value "host:port,http://host2:port". */
export function parseEtcdEndpoints(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => (/^https?:\/\//.test(s) ? s : `http://${s}`));
}
