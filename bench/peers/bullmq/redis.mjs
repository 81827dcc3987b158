// A throwaway redis-server for one benchmark: a free loopback port, no
// persistence (no RDB snapshots, no AOF: our coordinator runs in memory too
// unless --data-dir is given), stopped when the benchmark ends.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { Redis } from "ioredis";
import { freePort } from "../shared/peer-support.mjs";

/** How long redis-server may take to answer its first PING. */
const START_TIMEOUT_MS = 10_000;

async function answersPing(port) {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: null, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Starts redis-server; resolves with its port, its version and stop(). */
export async function startRedis() {
  const port = await freePort();
  const proc = spawn("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--protected-mode", "no", "--loglevel", "warning",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  const failed = new Promise((_, reject) => {
    proc.once("error", (err) => reject(new Error(`redis-server could not start (${err.message}); install it with: apt-get install -y redis-server`)));
    proc.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${output.trim()}`)));
  });
  failed.catch(() => {});
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await Promise.race([answersPing(port), failed])) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const info = new Redis({ host: "127.0.0.1", port });
  const version = /redis_version:(\S+)/.exec(await info.info("server"))?.[1] ?? "?";
  info.disconnect();
  return {
    port,
    version,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      await once(proc, "exit");
    },
  };
}
