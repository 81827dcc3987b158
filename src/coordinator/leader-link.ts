// The process's LeaderLink (control-ports.ts): a CoordinatorLink to the leader
// etcd names, saying HELLO as a backup coordinator. Only snapshots and appends
// go up as replication messages; WELCOME and ROLE update the link's fields.

import type { Logger } from "../cli/log.ts";
import { CoordinatorLink } from "../net/coordinator-link.ts";
import { parseHostPort } from "../net/endpoints.ts";
import type { FrameWriter, Reader } from "../protocol/codec.ts";
import { Kind, PROTOCOL_VERSION, type Hello } from "../protocol/messages.ts";
import type { CoordinatorConfig } from "./config.ts";
import type { DialLeader, LeaderLink } from "./control-ports.ts";
import { isReplicationKind } from "./replication-codec.ts";

/** REPL_SNAPSHOT or REPL_APPEND; `r` is valid during the call only. */
export interface LeaderFrame {
  kind: number;
  r: Reader;
}

export type FrameEncoder = (w: FrameWriter) => void;

/** `epoch()`: the epoch this node says in its HELLO (the one it follows). */
export function tcpLeaderLinks(config: CoordinatorConfig, epoch: () => number, log: Logger): DialLeader<LeaderFrame, FrameEncoder> {
  return (address, events) => {
    const target = parseHostPort(address);
    const hello = (): Hello => ({
      role: "coordinator", version: PROTOCOL_VERSION, nodeId: config.nodeId,
      shard: config.scheduler.shard, epoch: epoch(), primary: false, token: config.tokens.clusterToken,
    });
    // A snapshot part (or an old-style whole snapshot) may be larger than client frames are allowed to be.
    const limits = { ...config.limits, frameBytesMax: Math.max(config.limits.frameBytesMax, config.snapshotBytesMax) };
    let link: LeaderLink<FrameEncoder>;
    const tcp = new CoordinatorLink(target, {
      hello, limits, tls: config.tls.client, reconnectMinMs: config.reconnectMinMs, reconnectMaxMs: config.reconnectMaxMs,
    }, log, {
      onMessage: (_l, kind, r) => {
        if (isReplicationKind(kind)) events.onReplication(link, { kind, r });
      },
      onReadEnd: () => events.onReadEnd(link),
      onUp: () => events.onUp(link),
      onRole: () => events.onRole(link),
      onDown: () => events.onDown(link),
    });
    link = {
      label: address,
      get up() {
        return tcp.up;
      },
      get primary() {
        return tcp.primary;
      },
      get epoch() {
        return tcp.epoch;
      },
      connect: () => tcp.connect(),
      close: () => tcp.close(),
      requestSync: (syncEpoch, replicaId) => void tcp.sendControl(Kind.REPL_SYNC, { epoch: syncEpoch, replicaId }),
      send: (encode) => {
        const conn = tcp.writableConnection();
        if (conn === undefined) return;
        encode(conn.writer);
        conn.queueFlush();
      },
    };
    return link;
  };
}
