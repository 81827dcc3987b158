// The final read of the replica-group fault tests, run inside the hub namespace
// once every fault is healed (`bun keyed-audit.ts FILE`, FILE holding an
// AuditConfig): every acknowledged key is submitted again under its idempotency
// key (the cluster must answer with the task id it gave first; a lost key gets a
// new id, so a lost task whose id was reused by another is still caught), and
// every acknowledged task id is polled until it ends. One JSON line per answer,
// appended to cfg.outFile with synchronous writes (see keyed-load.ts for why not stdout).

import { openSync, readFileSync, writeSync } from "node:fs";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { isRetryable } from "../../src/protocol/errors.ts";

export interface AuditConfig {
  outFile: string;
  router: string;
  taskType: string;
  keys: string[];
  taskIds: number[];
  /** The whole audit ends by then (ms on this machine's clock). */
  deadline: number;
}

export type AuditEvent =
  | { ev: "resubmitted"; key: string; taskId: number; at: number }
  | { ev: "resubmit-failed"; key: string; code: string; at: number }
  | { ev: "state"; taskId: number; state: string; at: number }
  | { ev: "state-failed"; taskId: number; code: string; at: number }
  | { ev: "stats"; coordinators: { address: string; reachable: boolean; nodeId?: string; primary?: boolean; epoch?: number; role?: string }[]; at: number }
  | { ev: "done"; at: number };

/** Requests sent at once: the router and coordinator take them pipelined on one connection. */
const CHUNK = 256;
const RETRY_DELAY_MS = 100;
const REQUEST_TIMEOUT_MS = 2_000;
const FINAL_STATES = new Set(["completed", "failed", "cancelled"]);

let out = -1;
const emit = (e: AuditEvent): void => void writeSync(out, `${JSON.stringify(e)}\n`);

class Audit {
  private client: Promise<SchedulerClient> | undefined;

  constructor(private readonly cfg: AuditConfig) {}

  async run(): Promise<void> {
    await this.forEach(this.cfg.keys, (c, key) => c.submit(this.cfg.taskType, undefined, { idempotencyKey: key }),
      (key, taskId) => emit({ ev: "resubmitted", key, taskId, at: Date.now() }),
      (key, code) => emit({ ev: "resubmit-failed", key, code, at: Date.now() }));
    // Polled until ended: a task acknowledged just before the end may still be queued.
    let open = [...new Set(this.cfg.taskIds)];
    while (open.length > 0) {
      const still: number[] = [];
      const last = Date.now() + RETRY_DELAY_MS * 2 >= this.cfg.deadline;
      await this.forEach(open, (c, id) => c.task(id), (id, info) => {
        if (FINAL_STATES.has(info.state) || last) emit({ ev: "state", taskId: id, state: info.state, at: Date.now() });
        else still.push(id);
      }, (id, code) => emit({ ev: "state-failed", taskId: id, code, at: Date.now() }));
      open = still;
      if (open.length > 0) await Bun.sleep(RETRY_DELAY_MS);
    }
    await this.stats();
    emit({ ev: "done", at: Date.now() });
  }

  /** Each coordinator's role and epoch as the router's stats fan-out reports them. */
  private async stats(): Promise<void> {
    try {
      const client = await this.connected();
      const stats = await Promise.race([client.clusterStats(), Bun.sleep(REQUEST_TIMEOUT_MS).then(() => Promise.reject(new Error("timeout")))]);
      const coordinators = stats.coordinators.map((c) => ({
        address: c.address, reachable: c.reachable, nodeId: c.stats?.nodeId, primary: c.stats?.primary, epoch: c.stats?.epoch, role: c.stats?.replication.role,
      }));
      emit({ ev: "stats", coordinators, at: Date.now() });
    } catch {
      emit({ ev: "stats", coordinators: [], at: Date.now() });
    }
  }

  /** `request` for every item, retrying retryable refusals until the deadline; each item ends in `ok` or `failed`. */
  private async forEach<I, T>(items: I[], request: (c: SchedulerClient, item: I) => Promise<T>, ok: (item: I, value: T) => void, failed: (item: I, code: string) => void): Promise<void> {
    for (let at = 0; at < items.length; at += CHUNK) {
      await Promise.all(items.slice(at, at + CHUNK).map(async (item) => {
        for (;;) {
          let code: string;
          try {
            const client = await this.connected();
            const value = await Promise.race([request(client, item), Bun.sleep(REQUEST_TIMEOUT_MS).then(() => Promise.reject(new Error("timeout")))]);
            return ok(item, value);
          } catch (err) {
            code = err instanceof TaskError ? err.code : "E_UNAVAILABLE";
            if (err instanceof TaskError && !isRetryable(err.code)) return failed(item, code);
          }
          if (Date.now() + RETRY_DELAY_MS >= this.cfg.deadline) return failed(item, code);
          await Bun.sleep(RETRY_DELAY_MS);
        }
      }));
    }
  }

  /** One connection shared by every request; a new one once it is lost (or could not be made). */
  private async connected(): Promise<SchedulerClient> {
    const pending = this.client;
    const current = await pending?.catch(() => undefined);
    if (current !== undefined && !current.closed) return current;
    if (this.client === pending) this.client = SchedulerClient.connect(this.cfg.router, { nodeId: "jepsen-audit" });
    return this.client!;
  }
}

if (import.meta.main) {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as AuditConfig;
  out = openSync(cfg.outFile, "a");
  await new Audit(cfg).run();
  process.exit(0);
}
