// Spawns the compiled binaries (dist/) on free loopback ports for end-to-end
// tests, waits for them by their output (never by sleeping), and kills every
// process it started when the test ends, pass or fail.

import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { SchedulerClient, type ClientOptions } from "../../src/sdk/client.ts";
import type { ClusterStats } from "../../src/protocol/messages.ts";

export const DIST = resolve(import.meta.dir, "../../dist");

export function binary(name: string): string {
  const path = resolve(DIST, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`bun run build\` first (the test command does)`);
  return path;
}

export interface Started {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  output: () => string;
}

export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A port free right now on loopback (the OS picks it; it stays free long enough for a test to bind it). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Polls `check` until it returns a value other than undefined, or throws at the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await Bun.sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

/**
 * The opposite of waitFor: checks that `check` stays true for `durationMs`, polling, and
 * throws as soon as it does not. Only for tests that must show something does NOT happen
 * for a while (a node that must not lead); waiting for an event is waitFor's job.
 */
export async function holdsFor(what: string, check: () => Promise<boolean> | boolean, durationMs: number): Promise<void> {
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline) {
    if (!(await check())) throw new Error(`${what} stopped holding after ${durationMs - (deadline - Date.now())} ms of ${durationMs} ms`);
    await Bun.sleep(25);
  }
}

/** Flags every process of a cluster gets (tokens, TLS), and what the harness's own SDK connections present. */
export interface ClusterSecurity {
  /** Coordinators and routers. */
  serverArgs: string[];
  workerArgs: string[];
  /** The client binary. */
  clientArgs: string[];
  sdk: ClientOptions;
}

export class Cluster {
  private readonly procs: Subprocess[] = [];

  constructor(private readonly security: ClusterSecurity = { serverArgs: [], workerArgs: [], clientArgs: [], sdk: {} }) {}

  /** Starts a server binary with `-p 0` and resolves with the port it printed. */
  async server(name: "coordinator" | "router", args: string[]): Promise<Started> {
    const started = this.spawn(name, ["-p", "0", ...this.security.serverArgs, ...args]);
    const port = await waitFor(`${name} to listen`, () => {
      const m = /listening on [^\s]*:(\d+)/.exec(started.output());
      return m ? Number(m[1]) : undefined;
    });
    return { ...started, port };
  }

  /** A replica pair (or more) of one shard on fixed ports, each naming the others with --peer. */
  async replicas(count: number, args: string[] = []): Promise<Started[]> {
    const ports = Array.from({ length: count }, () => freePort());
    return Promise.all(ports.map((port) => this.replica(port, ports, args)));
  }

  /** One replica on `port` whose peers are the other `ports`. */
  replica(port: number, ports: number[], args: string[] = []): Promise<Started> {
    const peers = ports.filter((p) => p !== port).map((p) => `127.0.0.1:${p}`).join(",");
    return this.server("coordinator", ["--log-level", "warn", "--peer", peers, ...args, "-p", String(port)]);
  }

  coordinator(args: string[] = []): Promise<Started> {
    return this.server("coordinator", ["--log-level", "warn", ...args]);
  }

  router(coordinatorPorts: number[], args: string[] = []): Promise<Started> {
    return this.server("router", ["-s", coordinatorPorts.map((p) => `127.0.0.1:${p}`).join(","), "--log-level", "warn", ...args]);
  }

  worker(coordinatorPorts: number[], args: string[] = []): Started {
    const s = this.spawn("worker", ["--servers", coordinatorPorts.map((p) => `127.0.0.1:${p}`).join(","), "--log-level", "warn", ...this.security.workerArgs, ...args]);
    return { ...s, port: 0 };
  }

  /**
   * Shards 0 and 1 (one coordinator each), a worker serving both (`workerArgs`,
   * `-w 2` unless given) and `routers` routers in front (one unless given, each
   * with `routerArgs`), the worker joined on every router. `router` is the first.
   */
  async twoShardsBehindRouter(options: { workerArgs?: string[]; routerArgs?: string[]; routers?: number } = {}): Promise<{ shard0: Started; shard1: Started; router: Started; routers: Started[] }> {
    const shard0 = await this.coordinator(["--shard", "0"]);
    const shard1 = await this.coordinator(["--shard", "1"]);
    this.worker([shard0.port, shard1.port], options.workerArgs ?? ["-w", "2"]);
    const routers: Started[] = [];
    for (let i = 0; i < (options.routers ?? 1); i++) routers.push(await this.router([shard0.port, shard1.port], options.routerArgs));
    for (const router of routers) await this.workersJoined(router.port, 2);
    return { shard0, shard1, router: routers[0]!, routers };
  }

  /** Waits until `port` (coordinator or router) reports at least `count` workers in total. */
  async workersJoined(port: number, count: number): Promise<void> {
    await waitFor(`${count} workers on port ${port}`, async () => {
      const stats = await this.stats(port);
      const n = stats.coordinators.reduce((sum, c) => sum + (c.stats?.workers.length ?? 0), 0);
      return n >= count ? true : undefined;
    });
  }

  /** The replication role a coordinator reports. */
  async roleOf(port: number): Promise<string | undefined> {
    return (await this.stats(port)).coordinators[0]?.stats?.replication.role;
  }

  /** Of two replicas, the primary and the backup once the backup is in sync. */
  async pairInSync(nodes: readonly Started[]): Promise<{ primary: Started; backup: Started }> {
    const primary = await waitFor("a primary", async () => {
      for (const n of nodes) if ((await this.roleOf(n.port)) === "primary") return n;
      return undefined;
    });
    const backup = nodes.find((n) => n !== primary)!;
    await waitFor("the backup in sync", async () => ((await this.stats(primary.port)).coordinators[0]?.stats?.replication.backupsInSync === 1 ? true : undefined));
    return { primary, backup };
  }

  async stats(port: number): Promise<ClusterStats> {
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port }, this.security.sdk);
    try {
      return await client.clusterStats();
    } finally {
      client.close();
    }
  }

  /** Runs the client binary to completion (bounded by timeoutMs). */
  async client(args: string[], timeoutMs = 120_000): Promise<ClientRun> {
    const proc = Bun.spawn([binary("client"), ...this.security.clientArgs, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    this.procs.push(proc);
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  spawn(name: string, args: string[]): Omit<Started, "port"> {
    // process.env as it is now (a test may set a TASK_SCHEDULER_* variable), not as it was at start-up.
    const proc = Bun.spawn([binary(name), ...args], { env: { ...process.env }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    this.procs.push(proc);
    let text = "";
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
    };
    void collect(proc.stdout);
    void collect(proc.stderr);
    return { proc, output: () => text };
  }

  async stopAll(): Promise<void> {
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.all(this.procs.map((p) => p.exited));
    this.procs.length = 0;
  }
}

/** The client's --json line. */
export function parseReport(run: ClientRun): Record<string, any> {
  const line = run.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`client printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
}
