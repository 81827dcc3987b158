// Our set-ups for bench/compare.ts, from the compiled binaries on free
// loopback ports: the full path (router in front of a primary and a backup
// replica of one shard, one worker -w 2), the same with both replicas on
// --data-dir (every acknowledged task fsynced on both), the same with the log
// fsynced every DURABLE_FSYNC_INTERVAL_MS instead, and one coordinator
// alone with its worker. Each remembers the processes it spawned, so a process that ends
// under the benchmark (a crash, or someone's kill on this shared machine) is
// noticed, said, and the set-up started afresh instead of measuring a corpse.

import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, freePort, waitFor } from "../test/e2e/harness.ts";
import { DURABLE_FSYNC_INTERVAL_MS, type OursName } from "./compare-report.ts";

export interface OursSetup {
  name: OursName;
  cluster: Cluster;
  /** Where the client connects: the router (full path) or the coordinator. */
  port: number;
  spawned: Array<{ name: string; proc: Subprocess; output: () => string }>;
  /** The durable set-up's --data-dir directories, removed by stopOurs. */
  dataDirs: string[];
}

/** In the order they are measured. */
export const OURS: readonly OursName[] = ["ours-full", "ours-durable", "ours-durable-interval", "ours-single"];

export async function startOurs(name: OursSetup["name"]): Promise<OursSetup> {
  const cluster = new Cluster();
  const spawned: OursSetup["spawned"] = [];
  const dataDirs: string[] = [];
  const spawn = cluster.spawn.bind(cluster);
  cluster.spawn = (binary, args) => {
    const s = spawn(binary, args);
    spawned.push({ name: binary, proc: s.proc, output: s.output });
    return s;
  };
  try {
    if (name !== "ours-single") {
      const ports = [freePort(), freePort()];
      const dataDir = (i: number): string[] => {
        if (name === "ours-full") return [];
        const dir = mkdtempSync(join(tmpdir(), `bench-ours-${i}-`));
        dataDirs.push(dir);
        return ["--data-dir", dir, ...(name === "ours-durable-interval" ? ["--fsync-interval-ms", String(DURABLE_FSYNC_INTERVAL_MS)] : [])];
      };
      await Promise.all(ports.map((port, i) => cluster.replica(port, ports, dataDir(i))));
      cluster.worker(ports, ["-w", "2"]);
      const router = await cluster.router(ports);
      await waitFor("a primary with its worker and its backup in sync", async () => {
        const primary = (await cluster.stats(router.port)).coordinators.find((c) => c.stats?.primary)?.stats;
        return primary && primary.workers.length === 1 && primary.replication.backupsInSync === 1 ? true : undefined;
      });
      return { name, cluster, port: router.port, spawned, dataDirs };
    }
    const coordinator = await cluster.coordinator();
    cluster.worker([coordinator.port], ["-w", "2"]);
    await cluster.workersJoined(coordinator.port, 1);
    return { name, cluster, port: coordinator.port, spawned, dataDirs };
  } catch (err) {
    await stopOurs({ name, cluster, port: 0, spawned, dataDirs });
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

/** Stops a set-up's processes and removes its data directories. */
export async function stopOurs(setup: OursSetup): Promise<void> {
  await setup.cluster.stopAll();
  for (const dir of setup.dataDirs) rmSync(dir, { recursive: true, force: true });
}

/** Stops what is left of a set-up and starts the same one again. */
export async function restartOurs(setup: OursSetup): Promise<OursSetup> {
  await stopOurs(setup);
  return startOurs(setup.name);
}
