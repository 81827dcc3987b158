// The process's etcd-led replica group (--etcd): EtcdControl and IsrReplicaSet
// over the real clock, timers, etcd client, TCP leader links and backup
// connections. The simulation builds the same two classes over its own world.

import type { Logger } from "../cli/log.ts";
import type { Connection } from "../net/connection.ts";
import { EtcdClient } from "../net/etcd-client.ts";
import type { CoordinatorConfig } from "./config.ts";
import { processClock, processTimers } from "./control-ports.ts";
import { EtcdControl, etcdRequestTimeoutMs, type EtcdSettings } from "./etcd-control.ts";
import { IsrReplicaSet } from "./isr-replica-set.ts";
import { tcpLeaderLinks, type FrameEncoder, type LeaderFrame } from "./leader-link.ts";
import { sendToEach } from "./replica-set.ts";
import type { RoleEvents } from "./role-control.ts";

export type ProcessEtcdControl = EtcdControl<LeaderFrame, FrameEncoder>;
export type ProcessIsrReplicaSet = IsrReplicaSet<Connection, FrameEncoder>;

export function processEtcdControl(config: CoordinatorConfig, settings: EtcdSettings, log: Logger, events: RoleEvents): ProcessEtcdControl {
  const etcd = new EtcdClient(settings.endpoints, { requestTimeoutMs: etcdRequestTimeoutMs(settings.leaseTtlMs) });
  // Read through: with -p 0 the advertised address is known only once the listener is up.
  const identity = {
    shard: config.scheduler.shard, nodeId: config.nodeId, maxClockOffsetMs: config.maxClockOffsetMs,
    get advertise() {
      return config.advertise;
    },
  };
  const control: ProcessEtcdControl = new EtcdControl(identity, settings, {
    etcd, clock: processClock, timers: processTimers, dialLeader: tcpLeaderLinks(config, () => control.epoch, log),
  }, log, {
    promote: (epoch) => events.promote(epoch),
    follow: () => events.follow(),
    stepDown: (reason) => events.stepDown(reason),
    onReplication: (frame) => events.onReplication(frame.kind, frame.r),
    onReplicationReadEnd: () => events.onReplicationReadEnd(),
  });
  return control;
}

/** A new leader's replicas: commits wait for the ISR `control` read from etcd when it won. */
export function processIsrReplicaSet(control: ProcessEtcdControl, config: CoordinatorConfig, lastIndex: number, log: Logger, onChange: () => void): ProcessIsrReplicaSet {
  return new IsrReplicaSet<Connection, FrameEncoder>(
    control.replicaId, control.isrMembers, control.deposedReplicaId, lastIndex, processClock.now(),
    config.backupTimeoutMs, config.maxClockOffsetMs, control, { clock: processClock, timers: processTimers, broadcast: sendToEach }, log, onChange,
  );
}
