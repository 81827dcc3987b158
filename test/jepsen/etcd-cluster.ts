// A real 3-member etcd cluster for fault tests, one member per host namespace of a Net, with
// timings short enough that a 1 s lease holds (etcd raises shorter-than-election TTLs).
// Members can be killed and restarted on their own data dir; stop() removes everything.

import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HUB, type Net } from "./netns.ts";
import { collectOutput, waitFor } from "./process.ts";

export const ETCD_BINARY = "/usr/bin/etcd";
export const ETCD_MEMBERS = ["etcd1", "etcd2", "etcd3"];
/** With these, etcd grants a 1 s lease as asked (with its defaults it raises TTL 1 to 2 s). */
const HEARTBEAT_INTERVAL_MS = 25;
const ELECTION_TIMEOUT_MS = 250;
const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
/** Bounds a fresh cluster's election, or a restarted member's catch-up, until /health says true. */
export const ETCD_HEALTHY_TIMEOUT_MS = 20_000;
const HEALTH_PROBE_TIMEOUT_MS = 1_000;
/** How long kill() waits for the member to be reaped. */
const KILL_TIMEOUT_MS = 5_000;

export interface EtcdCluster {
  /** "http://10.213.0.x:2379", one per member, in member order. */
  endpoints: string[];
  members: string[];
  endpoint(member: string): string;
  /** The kept tail of a member's log, for failure messages. */
  output(member: string): string;
  /** SIGKILL one member (its data dir stays, for restart). */
  kill(member: string): Promise<void>;
  /** Starts a killed member again on its data dir and waits until it reports healthy. */
  restart(member: string): Promise<void>;
  /** Kills every member and removes the data dirs; safe to call twice. */
  stop(): Promise<void>;
}

export function etcdAvailable(): { ok: boolean; why: string } {
  return existsSync(ETCD_BINARY) ? { ok: true, why: "" } : { ok: false, why: `${ETCD_BINARY} is missing (Debian's etcd-server)` };
}

/** Data dirs of clusters not stopped yet, removed at process exit if a test never got to stop(). */
const liveDataDirs = new Set<string>();
process.on("exit", () => {
  for (const dir of liveDataDirs) rmSync(dir, { recursive: true, force: true });
});

interface Member {
  name: string;
  dataDir: string;
  proc?: Subprocess<"ignore", "pipe", "pipe">;
  output: () => string;
}

/** Starts one etcd member on each of `members` (hosts of `net`) and waits until all are healthy. */
export async function startEtcdCluster(net: Net, members: string[] = ETCD_MEMBERS): Promise<EtcdCluster> {
  const byName = new Map<string, Member>();
  for (const name of members) {
    const dataDir = mkdtempSync(join(tmpdir(), `jepsen-${name}-`));
    liveDataDirs.add(dataDir);
    byName.set(name, { name, dataDir, output: () => "" });
  }
  const cluster = etcdClusterHandle(net, byName);
  try {
    // One at a time: a new member asks its peers whether it was bootstrapped already, and a peer
    // that has bound its port but does not serve yet makes it wait etcd's 1 s bootstrap timeout.
    for (const m of byName.values()) {
      spawnMember(net, m, "new", [...byName.keys()]);
      await waitPeerServing(net, m);
    }
    await Promise.all(members.map((name) => waitHealthy(net, byName.get(name)!)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

function etcdClusterHandle(net: Net, byName: Map<string, Member>): EtcdCluster {
  const member = (name: string) => {
    const m = byName.get(name);
    if (!m) throw new Error(`unknown etcd member ${name} (members: ${[...byName.keys()].join(", ")})`);
    return m;
  };
  const names = [...byName.keys()];
  return {
    endpoints: names.map((name) => clientUrl(net, name)),
    members: names,
    endpoint: (name) => clientUrl(net, member(name).name),
    output: (name) => member(name).output(),
    kill: (name) => killMember(member(name)),
    restart: async (name) => {
      const m = member(name);
      await killMember(m);
      spawnMember(net, m, "existing", names);
      await waitHealthy(net, m);
    },
    stop: async () => {
      await Promise.all([...byName.values()].map(killMember));
      for (const m of byName.values()) {
        rmSync(m.dataDir, { recursive: true, force: true });
        liveDataDirs.delete(m.dataDir);
      }
    },
  };
}

function spawnMember(net: Net, m: Member, state: "new" | "existing", names: string[]): void {
  m.proc = net.exec(m.name, [ETCD_BINARY, ...memberArgs(net, m, state, names)]);
  m.output = collectOutput(m.proc);
}

function memberArgs(net: Net, m: Member, state: "new" | "existing", names: string[]): string[] {
  const peers = names.map((name) => `${name}=${peerUrl(net, name)}`).join(",");
  return [
    "--name", m.name,
    "--data-dir", m.dataDir,
    "--listen-client-urls", clientUrl(net, m.name),
    "--advertise-client-urls", clientUrl(net, m.name),
    "--listen-peer-urls", peerUrl(net, m.name),
    "--initial-advertise-peer-urls", peerUrl(net, m.name),
    "--initial-cluster", peers,
    // Unique per run, so a member never joins a cluster left over from another run.
    "--initial-cluster-token", `${net.prefix}etcd`,
    "--initial-cluster-state", state,
    "--heartbeat-interval", String(HEARTBEAT_INTERVAL_MS),
    "--election-timeout", String(ELECTION_TIMEOUT_MS),
    // A member returning from a partition with a higher term would otherwise force an election
    // that stalls every keep-alive for longer than a 1 s lease: healthy primaries fence for nothing.
    "--pre-vote",
    "--logger", "zap",
    "--log-outputs", "stderr",
  ];
}

async function killMember(m: Member): Promise<void> {
  const proc = m.proc;
  m.proc = undefined;
  if (!proc) return;
  proc.kill("SIGKILL");
  await Promise.race([proc.exited, Bun.sleep(KILL_TIMEOUT_MS)]);
}

async function waitPeerServing(net: Net, m: Member): Promise<void> {
  await waitMember(m, "to serve its peers", async () => (await net.fetch(HUB, `${peerUrl(net, m.name)}/members`, {}, HEALTH_PROBE_TIMEOUT_MS)).status === 200);
}

/** /health is true once the member has a leader and a quorum read went through. Probed from the hub. */
async function waitHealthy(net: Net, m: Member): Promise<void> {
  await waitMember(m, "to report healthy", async () => {
    const res = await net.fetch(HUB, `${clientUrl(net, m.name)}/health`, {}, HEALTH_PROBE_TIMEOUT_MS);
    return res.status === 200 && JSON.parse(res.body).health === "true";
  });
}

/** Polls `ready` until true; fails at once if the member exits, and with its log at the deadline. */
async function waitMember(m: Member, what: string, ready: () => Promise<boolean>): Promise<void> {
  try {
    const outcome = await waitFor(`etcd member ${m.name} ${what}`, async () => {
      if (m.proc?.exitCode != null) return `exited with ${m.proc.exitCode}`;
      return (await ready()) ? "ready" : undefined;
    }, ETCD_HEALTHY_TIMEOUT_MS);
    if (outcome !== "ready") throw new Error(`etcd member ${m.name} ${outcome}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- last output of ${m.name} ---\n${m.output().slice(-4_000)}`);
  }
}

function clientUrl(net: Net, member: string): string {
  return `http://${net.ip(member)}:${CLIENT_PORT}`;
}

function peerUrl(net: Net, member: string): string {
  return `http://${net.ip(member)}:${PEER_PORT}`;
}
