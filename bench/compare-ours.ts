// Our two set-ups for bench/compare.ts, from the compiled binaries on free
// loopback ports: the full path (router in front of a primary and a backup
// replica of one shard, one worker -w 2) and one coordinator alone with its
// worker. Each remembers the processes it spawned, so a process that ends
// under the benchmark (a crash, or someone's kill on this shared machine) is
// noticed, said, and the set-up started afresh instead of measuring a corpse.

import type { Subprocess } from "bun";
import { Cluster, waitFor } from "../test/e2e/harness.ts";
import type { SystemName } from "./compare-report.ts";

export interface OursSetup {
  name: Exclude<SystemName, "bullmq">;
  cluster: Cluster;
  /** Where the client connects: the router (full path) or the coordinator. */
  port: number;
  spawned: Array<{ name: string; proc: Subprocess; output: () => string }>;
}

export async function startOurs(name: OursSetup["name"]): Promise<OursSetup> {
  const cluster = new Cluster();
  const spawned: OursSetup["spawned"] = [];
  const spawn = cluster.spawn.bind(cluster);
  cluster.spawn = (binary, args) => {
    const s = spawn(binary, args);
    spawned.push({ name: binary, proc: s.proc, output: s.output });
    return s;
  };
  try {
    if (name === "ours-full") {
      const replicas = await cluster.replicas(2);
      const ports = replicas.map((r) => r.port);
      cluster.worker(ports, ["-w", "2"]);
      const router = await cluster.router(ports);
      await waitFor("a primary with its worker and its backup in sync", async () => {
        const primary = (await cluster.stats(router.port)).coordinators.find((c) => c.stats?.primary)?.stats;
        return primary && primary.workers.length === 1 && primary.replication.backupsInSync === 1 ? true : undefined;
      });
      return { name, cluster, port: router.port, spawned };
    }
    const coordinator = await cluster.coordinator();
    cluster.worker([coordinator.port], ["-w", "2"]);
    await cluster.workersJoined(coordinator.port, 1);
    return { name, cluster, port: coordinator.port, spawned };
  } catch (err) {
    await cluster.stopAll();
    throw err;
  }
}

/** The set-up's processes that have ended, each said with how (signal or exit status) and its last line of output. */
export function endedProcesses(setup: OursSetup): string[] {
  return setup.spawned
    .filter((s) => s.proc.exitCode !== null || s.proc.signalCode !== null)
    .map((s) => {
      const how = s.proc.signalCode !== null ? `signal ${s.proc.signalCode}` : `exit ${s.proc.exitCode}`;
      const last = s.output().trim().split("\n").at(-1) ?? "";
      return `${s.name} pid ${s.proc.pid} ended (${how})${last === "" ? "" : `: ${last.slice(0, 160)}`}`;
    });
}

/** Stops what is left of a set-up and starts the same one again. */
export async function restartOurs(setup: OursSetup): Promise<OursSetup> {
  await setup.cluster.stopAll();
  return startOurs(setup.name);
}
