// The test's side of the keyed workload: starts keyed-load.ts in the hub namespace
// against a ReplicaGroup, collects its outcomes as they come (so a test can wait for
// acknowledgements to resume), and runs the final audit (keyed-audit.ts) once healed.

import { closeSync, existsSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditConfig, AuditEvent } from "./keyed-audit.ts";
import type { LoadConfig, LoadEvent } from "./keyed-load.ts";
import { HUB } from "./netns.ts";
import { waitFor } from "./process.ts";
import { COORDINATORS, readLines, type ReplicaGroup } from "./replica-group.ts";

const LOAD_SCRIPT = join(import.meta.dir, "keyed-load.ts");
const AUDIT_SCRIPT = join(import.meta.dir, "keyed-audit.ts");
export const TASK_TYPE = "noop";
/** The audit re-asks every key and polls every task; it is over by then. */
export const AUDIT_TIMEOUT_MS = 15_000;

export const LOAD_DEFAULTS: Omit<LoadConfig, "outFile" | "router" | "probes" | "prefix" | "durationMs"> = {
  keysMax: 10_000,
  retryGraceMs: 3_000,
  concurrency: 4,
  keyIntervalMs: 10,
  requestTimeoutMs: 1_000,
  retryDelayMs: 50,
  probeIntervalMs: 25,
  probeInFlightMax: 64,
  drainMs: 3_000,
  taskType: TASK_TYPE,
};

/** Reads the JSON lines appended to a file since the last call. */
class LineTail {
  private offset = 0;
  private rest = "";
  private readonly buffer = Buffer.alloc(1 << 20);

  constructor(private readonly path: string) {}

  read(): string[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, "r");
    try {
      for (let n; (n = readSync(fd, this.buffer, 0, this.buffer.length, this.offset)) > 0; this.offset += n) this.rest += this.buffer.toString("utf8", 0, n);
    } finally {
      closeSync(fd);
    }
    const lines = this.rest.split("\n");
    this.rest = lines.pop()!;
    return lines.filter((l) => l.startsWith("{"));
  }
}

export class Workload {
  private readonly seen: LoadEvent[] = [];
  private readonly tail: LineTail;
  private readonly stderr: string[] = [];
  private readonly exited: Promise<number>;

  constructor(private readonly group: ReplicaGroup, readonly config: LoadConfig) {
    this.tail = new LineTail(config.outFile);
    const proc = group.net.exec(HUB, [process.execPath, LOAD_SCRIPT], { env: { JEPSEN_LOAD: JSON.stringify(config) } });
    void readLines(proc.stderr, (line) => this.stderr.push(line));
    this.exited = proc.exited;
  }

  /** Every outcome so far (read from the workload's file on each call). */
  get events(): readonly LoadEvent[] {
    for (const line of this.tail.read()) this.seen.push(JSON.parse(line) as LoadEvent);
    return this.seen;
  }

  /** Starts the workload with a probe client on every coordinator; it runs for `durationMs`, then drains. */
  static start(group: ReplicaGroup, prefix: string, durationMs: number): Workload {
    const probes = Object.fromEntries(COORDINATORS.map((c) => [c, group.address(c)]));
    return new Workload(group, { ...LOAD_DEFAULTS, outFile: join(group.runDir, "load-out.jsonl"), router: group.routerAddress, probes, prefix, durationMs });
  }

  acks(since = -Infinity, via?: string): Extract<LoadEvent, { ev: "ack" }>[] {
    return this.events.filter((e): e is Extract<LoadEvent, { ev: "ack" }> => e.ev === "ack" && e.at >= since && (via === undefined || e.via === via));
  }

  /** Waits for `count` acknowledgements through the router answered at or after `since`. */
  async waitAcks(count: number, since: number, what: string, timeoutMs: number): Promise<number> {
    return waitFor(what, () => {
      const acks = this.acks(since, "router");
      return acks.length >= count ? acks[count - 1]!.at : undefined;
    }, timeoutMs);
  }

  /** Waits for the workload to end (its duration, the retry grace and the drain bound it). */
  async finished(): Promise<void> {
    const c = this.config;
    const boundMs = c.durationMs + c.retryGraceMs + c.requestTimeoutMs + c.drainMs + 10_000;
    const code = await Promise.race([this.exited, Bun.sleep(boundMs).then(() => "timeout" as const)]);
    if (code !== 0) throw new Error(`the workload ${code === "timeout" ? `ran past ${boundMs} ms` : `exited with ${code}`}:\n${this.stderr.slice(-40).join("\n")}`);
    if (this.events.at(-1)?.ev !== "done") throw new Error(`the workload's output ends early (${this.events.length} lines): ${this.stderr.slice(-40).join("\n")}`);
  }

  /** Once everything is healed: every acknowledged key asked again, every acknowledged task polled until it ends. */
  async audit(): Promise<AuditEvent[]> {
    const acks = this.acks();
    const config: AuditConfig = {
      outFile: join(this.group.runDir, "audit-out.jsonl"), router: this.config.router, taskType: this.config.taskType,
      keys: [...new Set(acks.map((a) => a.key))], taskIds: [...new Set(acks.map((a) => a.taskId))],
      deadline: Date.now() + AUDIT_TIMEOUT_MS,
    };
    const file = join(this.group.runDir, "audit-in.json");
    writeFileSync(file, JSON.stringify(config));
    const r = await this.group.net.run(HUB, [process.execPath, AUDIT_SCRIPT, file], AUDIT_TIMEOUT_MS + 10_000);
    if (r.code !== 0) throw new Error(`the audit failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.slice(-4_000)}`);
    const events = new LineTail(config.outFile).read().map((l) => JSON.parse(l) as AuditEvent);
    if (events.at(-1)?.ev !== "done") throw new Error(`the audit's output ends early (${events.length} lines): ${r.stderr.slice(-4_000)}`);
    return events;
  }
}
