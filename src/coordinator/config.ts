// What a coordinator is told at start-up (flags -> main.ts -> here). Its own
// module so the role controllers (peers.ts, etcd-control.ts) need not import the
// coordinator they serve.

import type { SchedulerOptions } from "../core/scheduler.ts";
import type { TokenTable } from "../net/auth.ts";
import type { NetLimits } from "../net/connection.ts";
import type { HostPort } from "../net/endpoints.ts";
import type { TlsSettings } from "../net/tls.ts";
import type { EtcdSettings } from "./etcd-control.ts";

export interface CoordinatorConfig {
  host: string;
  port: number;
  nodeId: string;
  scheduler: SchedulerOptions;
  limits: NetLimits;
  /** Who may connect and do what; its cluster token is what this node presents to its peers. */
  tokens: TokenTable;
  /** Serve TLS (server) and dial peers over TLS (client), or neither. */
  tls: TlsSettings;
  /** Largest task payload accepted (E_TOO_LARGE past it). */
  payloadBytesMax: number;
  /** How often leases, worker liveness and the election are checked. */
  tickMs: number;
  /** Largest worker credit accepted in a HELLO. */
  workerSlotsMax: number;
  /** The other coordinators of this shard. Empty: a single node, primary at once. */
  peers: HostPort[];
  /** This node's own address as peers name it ("host:port"): ranks the start-up election. */
  advertise: string;
  /** A backup promotes itself when it has had no primary this long (times its rank). */
  failoverTimeoutMs: number;
  /** The primary holds acknowledgements this long for a lost backup, then goes on alone. */
  backupTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Largest snapshot sent to or accepted from a peer. */
  snapshotBytesMax: number;
  /** Log entries a loading backup keeps for after its snapshot, in bytes at most: past it the load starts over. */
  loadingAppendsBytesMax: number;
  /** Where the write-ahead log and snapshots live; "" keeps everything in memory. */
  dataDir: string;
  /** 0: fsync every group commit before acknowledging it; N: fsync the log every N ms (acknowledged once written on every in-sync replica). */
  fsyncIntervalMs: number;
  /** Log bytes after which a snapshot replaces the log. */
  walBytesMax: number;
  /** Set the data directory's log and snapshot aside and rebuild from the primary; never lead before holding its snapshot. */
  recoverFromPeer: boolean;
  /** An etcd-led replica group (--etcd) instead of static --peer election. */
  etcd?: EtcdSettings;
  /** etcd mode: a replica whose clock is further than this from the primary's neither joins the ISR nor leads. */
  maxClockOffsetMs: number;
}
