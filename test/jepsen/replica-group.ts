// A replica group under fault: three coordinators of shard 0 (hosts c1..c3, one namespace each)
// led through a 3-member etcd (etcd1..3), a router and a worker in the hub. Every process's log
// is kept whole and parsed, on one timeline with the signals the test sends, so a test can wait
// for role changes and, afterwards, derive who acted as primary when (primary-intervals.ts).

import type { Subprocess } from "bun";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startEtcdCluster, ETCD_MEMBERS, type EtcdCluster } from "./etcd-cluster.ts";
import { HUB, Net } from "./netns.ts";
import { waitFor } from "./process.ts";
import type { NodeFault, NodeLine } from "./primary-intervals.ts";

export const DIST = resolve(import.meta.dir, "../../dist");
export const COORDINATORS = ["c1", "c2", "c3"] as const;
export type CoordinatorName = (typeof COORDINATORS)[number];
const COORDINATOR_PORT = 7000;
export const ROUTER_PORT = 6000;
/** The shortest lease etcd grants with the harness's timings; failover can be no faster. */
export const LEASE_TTL_MS = 1_000;
/** How long a primary waits for a lagging ISR member before removing it. */
export const BACKUP_TIMEOUT_MS = 500;
/** The coordinators' default --max-clock-offset-ms: a replica further off stays out of the ISR. */
export const MAX_CLOCK_OFFSET_MS = 500;
/** Redials of a lost peer, router link or worker link back off to at most this: a healed link is found again fast. */
const RECONNECT_MAX_MS = 200;
/** Bounds waiting for a process to start, and for the group to form. */
export const START_TIMEOUT_MS = 15_000;
/** Lines kept per process: coordinators log role changes, not tasks (at debug only etcd keep-alive failures are added). */
const LINES_MAX = 100_000;
const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/** A parsed log line of one life of a node; `at` is on this machine's clock (a faked clock's offset taken out). */
export interface LogLine extends NodeLine {
  level: string;
  fields: Record<string, unknown>;
}

interface Life {
  node: string;
  life: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  lines: LogLine[];
  /** Lines that were not JSON (the "listening on" line, crashes). */
  text: string[];
  /** The offset this life's clock was started with (libfaketime), taken out of its timestamps. */
  skewMs: number;
}

export function distMissing(): string | undefined {
  const missing = ["coordinator", "router", "worker"].filter((b) => !existsSync(join(DIST, b)));
  return missing.length > 0 ? `${missing.map((b) => `dist/${b}`).join(", ")} missing: run \`bun run build\`` : undefined;
}

export function faketimeMissing(): string | undefined {
  return existsSync(LIBFAKETIME) ? undefined : `${LIBFAKETIME} is missing (Debian's libfaketime)`;
}

export class ReplicaGroup {
  readonly faults: NodeFault[] = [];
  /** Network faults and other steps, for the report. */
  readonly steps: { at: number; what: string }[] = [];
  readonly runDir: string;
  private readonly lives = new Map<string, Life[]>();
  private keepRunDir = false;

  private constructor(
    readonly net: Net,
    readonly etcd: EtcdCluster,
    private readonly dataDirs: boolean,
  ) {
    this.runDir = mkdtempSync(join(tmpdir(), "jepsen-replica-group-"));
  }

  static async start(options: { dataDirs?: boolean } = {}): Promise<ReplicaGroup> {
    const net = await Net.create([...ETCD_MEMBERS, ...COORDINATORS]);
    try {
      return new ReplicaGroup(net, await startEtcdCluster(net), options.dataDirs ?? false);
    } catch (err) {
      await net.destroy();
      throw err;
    }
  }

  ip(host: string): string {
    return this.net.ip(host);
  }

  address(node: CoordinatorName): string {
    return `${this.ip(node)}:${COORDINATOR_PORT}`;
  }

  get routerAddress(): string {
    return `${this.ip(HUB)}:${ROUTER_PORT}`;
  }

  /** Starts (or restarts) a coordinator; `skewMs` runs it under libfaketime that far off. */
  startCoordinator(node: CoordinatorName, options: { skewMs?: number | undefined } = {}): void {
    const argv = [
      join(DIST, "coordinator"), "-p", String(COORDINATOR_PORT), "--host", this.ip(node), "--node-id", node,
      "--etcd", this.etcd.endpoints.join(","), "--etcd-lease-ttl-ms", String(LEASE_TTL_MS),
      "--backup-timeout-ms", String(BACKUP_TIMEOUT_MS), "--reconnect-max-ms", String(RECONNECT_MAX_MS), "--log-level", "debug",
      ...(this.dataDirs ? ["--data-dir", join(this.runDir, `${node}-data`)] : []),
    ];
    const skewMs = options.skewMs ?? 0;
    // LD_PRELOAD rather than the faketime wrapper: the wrapper forks, and signals must reach the coordinator itself.
    const env: Record<string, string> = skewMs === 0 ? {} : { LD_PRELOAD: LIBFAKETIME, FAKETIME: `${skewMs >= 0 ? "+" : ""}${skewMs / 1000}s` };
    this.spawn(node, node, argv, env, skewMs);
    this.step(`start ${node}${skewMs ? ` (clock ${skewMs > 0 ? "+" : ""}${skewMs} ms)` : ""}`);
  }

  /** c1 first (so it leads), then c2 and c3 into its ISR, then the router and a worker; returns when the group is whole. */
  async startAll(skewMs: Partial<Record<CoordinatorName, number>> = {}): Promise<void> {
    const t0 = Date.now();
    this.startCoordinator("c1", { skewMs: skewMs.c1 });
    await this.waitLine("c1", "c1 to lead", (l) => l.event === "promoted to primary", t0);
    this.startCoordinator("c2", { skewMs: skewMs.c2 });
    this.startCoordinator("c3", { skewMs: skewMs.c3 });
    // A node whose clock is off by more than --max-clock-offset-ms is kept out of the ISR.
    await this.waitIsr("c1", 3 - Object.values(skewMs).filter((ms) => Math.abs(ms ?? 0) > MAX_CLOCK_OFFSET_MS).length, t0);
    const etcd = ["--etcd", this.etcd.endpoints.join(","), "--reconnect-max-ms", String(RECONNECT_MAX_MS)];
    this.spawn("router", HUB, [join(DIST, "router"), "-p", String(ROUTER_PORT), "--host", this.ip(HUB), ...etcd], {}, 0);
    // debug: the worker logs the assignments it refuses from a deposed primary.
    this.spawn("worker", HUB, [join(DIST, "worker"), "-w", "2", "--node-id", "w1", "--log-level", "debug", ...etcd], {}, 0);
    await this.waitLine("router", "the router to listen", (l) => l.event === "listening", t0);
    await this.waitLine("c1", "the worker to join c1", (l) => l.event === "worker joined", t0);
  }

  // ------------------------------------------------------------ faults

  kill(node: CoordinatorName): void {
    this.signal(node, "SIGKILL", "kill");
  }

  pause(node: CoordinatorName): void {
    this.signal(node, "SIGSTOP", "stop");
  }

  resume(node: CoordinatorName): void {
    this.signal(node, "SIGCONT", "cont");
  }

  async cut(a: string, b: string): Promise<void> {
    await this.timed(`cut ${a} | ${b}`, () => this.net.cut(a, b));
  }

  async isolate(host: string): Promise<void> {
    await this.timed(`isolate ${host}`, () => this.net.isolate(host));
  }

  async healAll(): Promise<void> {
    await this.timed("heal all", () => this.net.healAll());
  }

  step(what: string, at = Date.now()): void {
    this.steps.push({ at, what });
  }

  /** iptables rules go in one at a time: a step is logged at its start, with how long it took. */
  private async timed(what: string, act: () => Promise<void>): Promise<void> {
    const at = Date.now();
    await act();
    this.step(`${what} (${Date.now() - at} ms)`, at);
  }

  private signal(node: CoordinatorName, signal: "SIGKILL" | "SIGSTOP" | "SIGCONT", kind: NodeFault["kind"]): void {
    const life = this.current(node);
    if (life === undefined) throw new Error(`${node} was never started`);
    // The time is taken before the signal: a SIGKILL ends the term at the latest here.
    this.faults.push({ node, life: life.life, at: Date.now(), kind });
    process.kill(life.proc.pid, signal);
    this.step(`${kind} ${node}`);
  }

  // ------------------------------------------------------------ logs

  lines(node?: string): LogLine[] {
    const lives = node === undefined ? [...this.lives.values()].flat() : (this.lives.get(node) ?? []);
    return lives.flatMap((l) => l.lines).sort((a, b) => a.at - b.at);
  }

  coordinatorLines(): LogLine[] {
    return COORDINATORS.flatMap((n) => this.lines(n)).sort((a, b) => a.at - b.at);
  }

  current(node: string): Life | undefined {
    return this.lives.get(node)?.at(-1);
  }

  /** Waits for a line of `node` (any life) at or after `since`. */
  async waitLine(node: string, what: string, match: (l: LogLine) => boolean, since: number, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return waitFor(what, () => this.lines(node).find((l) => l.at >= since && match(l)), timeoutMs);
  }

  /** The first promotion of any coordinator (but `except`) at or after `since`. */
  async waitPromotion(since: number, what: string, except?: string, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return waitFor(what, () => this.coordinatorLines().find((l) => l.at >= since && l.event === "promoted to primary" && l.node !== except), timeoutMs);
  }

  /** Waits until `primary` has written an ISR of `size` members (since `since`). */
  async waitIsr(primary: string, size: number, since: number, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return this.waitLine(primary, `${primary} to write an ISR of ${size}`, (l) => l.event === "in-sync replicas changed" && (l.fields.members as unknown[]).length === size, since, timeoutMs);
  }

  /** The coordinator whose latest role line says it leads now (by its log; undefined when none does). */
  primaryByLog(): string | undefined {
    let leader: string | undefined;
    let at = -Infinity;
    for (const node of COORDINATORS) {
      const life = this.current(node);
      if (life === undefined || life.proc.exitCode !== null || life.proc.signalCode !== null) continue;
      const last = life.lines.findLast((l) => l.event === "promoted to primary" || l.event === "following primary" || l.event.startsWith("fenced") || l.event === "stepping down");
      if (last?.event === "promoted to primary" && last.at > at) [leader, at] = [node, last.at];
    }
    return leader;
  }

  /** The shard's leader and ISR keys as etcd holds them now (read from the hub), for failure messages. */
  async etcdShardState(): Promise<string> {
    const read = async (key: string): Promise<string> => {
      for (const endpoint of this.etcd.endpoints) {
        try {
          const r = await this.net.fetch(HUB, `${endpoint}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from(key).toString("base64") }) }, 1_000);
          const kv = JSON.parse(r.body).kvs?.[0];
          if (kv === undefined) return "none";
          return `${Buffer.from(kv.value, "base64").toString()} (create revision ${kv.create_revision}, lease ${kv.lease ?? 0})`;
        } catch {
          // Try the next member.
        }
      }
      return "no etcd member answered";
    };
    return `etcd's leader key: ${await read("/task-scheduler/shards/0/leader")}; ISR key: ${await read("/task-scheduler/shards/0/isr")}`;
  }

  /** Writes every process's output into the run directory and keeps it; returns the directory. */
  keepLogs(): string {
    this.keepRunDir = true;
    mkdirSync(this.runDir, { recursive: true });
    for (const [node, lives] of this.lives) {
      for (const l of lives) {
        const body = [...l.text, ...l.lines.map((x) => JSON.stringify({ at: new Date(x.at).toISOString(), event: x.event, level: x.level, ...x.fields }))].join("\n");
        writeFileSync(join(this.runDir, `${node}.${l.life}.log`), `${body}\n`);
      }
    }
    for (const member of this.etcd.members) writeFileSync(join(this.runDir, `${member}.log`), this.etcd.output(member));
    writeFileSync(join(this.runDir, "faults.json"), JSON.stringify({ faults: this.faults, steps: this.steps }, null, 1));
    return this.runDir;
  }

  async destroy(): Promise<void> {
    await this.etcd.stop();
    await this.net.destroy();
    if (!this.keepRunDir) rmSync(this.runDir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------ processes

  /** Spawns `argv` in `host`'s namespace as a new life of `node`, parsing its output as it comes. */
  private spawn(node: string, host: string, argv: string[], env: Record<string, string>, skewMs: number): Life {
    const lives = this.lives.get(node) ?? [];
    const life: Life = { node, life: lives.length + 1, proc: this.net.exec(host, argv, { env }), lines: [], text: [], skewMs };
    lives.push(life);
    this.lives.set(node, lives);
    const onLine = (line: string) => {
      if (life.lines.length + life.text.length >= LINES_MAX) return;
      const parsed = parseLogLine(line);
      if (parsed === undefined) return void (line.trim() !== "" && life.text.push(line));
      const { ts, level, event, component: _component, ...fields } = parsed;
      const epoch = typeof fields.epoch === "number" ? fields.epoch : undefined;
      life.lines.push({ node, life: life.life, at: Date.parse(String(ts)) - skewMs, event: String(event), level: String(level), fields, ...(epoch !== undefined && { epoch }) });
    };
    void readLines(life.proc.stdout, onLine);
    void readLines(life.proc.stderr, onLine);
    return life;
  }
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    return typeof v.ts === "string" && typeof v.event === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Calls onLine for each complete line of `stream` until it ends. */
export async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  try {
    for await (const chunk of stream) {
      const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
      rest = parts.pop()!;
      for (const p of parts) onLine(p);
    }
  } catch {
    // The process was killed mid-write: what arrived is kept.
  }
  if (rest !== "") onLine(rest);
}
