// Throwaway nats-server processes for one benchmark, on free loopback ports:
// one node (its JetStream store in a temp dir; the stream decides memory or
// file storage), or a three-node cluster for a stream with three replicas.
// Stopped, and their store dirs removed, when the benchmark ends.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { freePort } from "../shared/peer-support.mjs";

/** How long the servers may take to accept a stream (a cluster must elect its meta leader first). */
const START_TIMEOUT_MS = 20_000;

function startOne(name, clientPort, clusterPort, routes, storeDir) {
  const args = ["-a", "127.0.0.1", "-p", String(clientPort), "-js", "-sd", storeDir, "-n", name];
  if (clusterPort !== undefined) {
    args.push("--cluster_name", "bench", "--cluster", `nats://127.0.0.1:${clusterPort}`, "--routes", routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
  }
  const proc = spawn("nats-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  const exited = new Promise((_, reject) => {
    proc.once("error", (err) => reject(new Error(`nats-server could not start (${err.message}); install it with: apt-get install -y nats-server`)));
    proc.once("exit", (code) => reject(new Error(`nats-server ${name} exited with ${code}: ${output.trim().split("\n").slice(-3).join(" | ")}`)));
  });
  exited.catch(() => {});
  return { proc, exited, output: () => output };
}

/**
 * Starts `nodes` servers (1 or 3). Resolves once a connection to them can
 * create a stream of `replicas` replicas, with their client URLs, the server
 * version and stop().
 */
export async function startNats(nodes) {
  const storeRoot = mkdtempSync(join(tmpdir(), "bench-jetstream-"));
  const clientPorts = await Promise.all(Array.from({ length: nodes }, freePort));
  const clusterPorts = nodes > 1 ? await Promise.all(Array.from({ length: nodes }, freePort)) : [];
  const servers = clientPorts.map((port, i) =>
    startOne(`n${i}`, port, clusterPorts[i], clusterPorts.filter((_, j) => j !== i), join(storeRoot, `n${i}`)));
  const urls = clientPorts.map((p) => `127.0.0.1:${p}`);
  const stop = async () => {
    for (const s of servers) if (s.proc.exitCode === null) s.proc.kill("SIGTERM");
    await Promise.all(servers.map((s) => (s.proc.exitCode === null ? new Promise((r) => s.proc.once("exit", r)) : undefined)));
    rmSync(storeRoot, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = "";
  for (;;) {
    try {
      const nc = await Promise.race([connect({ servers: urls, maxReconnectAttempts: 0 }), ...servers.map((s) => s.exited)]);
      try {
        const jsm = await nc.jetstreamManager();
        // A probe stream with every replica proves the cluster has a meta leader and its peers.
        await jsm.streams.add({ name: "READY_PROBE", subjects: ["ready.probe"], storage: "memory", num_replicas: nodes });
        await jsm.streams.delete("READY_PROBE");
        return { urls, version: nc.info?.version ?? "?", stop };
      } finally {
        await nc.close();
      }
    } catch (err) {
      lastError = err.message;
      if (servers.some((s) => s.proc.exitCode !== null) || Date.now() > deadline) {
        await stop();
        throw new Error(`nats-server (${nodes} node(s)) not ready within ${START_TIMEOUT_MS} ms: ${lastError}; ${servers.map((s) => s.output().trim().split("\n").at(-1)).join(" | ")}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
