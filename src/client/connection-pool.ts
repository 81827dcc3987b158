// The load generators' connections and their retry rule, shared by the closed
// loop (load.ts) and the open loop (open-loop.ts): one live connection per
// slot, redialed after a loss, and each task retried under its idempotency key
// (so a retry never duplicates it) while its refusal is retryable.

import type { ClientSecurity } from "../net/net-flags.ts";
import { backoffDelayMs } from "../net/backoff.ts";
import type { HostPort } from "../net/endpoints.ts";
import { isRetryable } from "../protocol/errors.ts";
import { SchedulerClient, TaskError, type TaskOutcome } from "../sdk/client.ts";
import type { TaskSpec } from "./workloads.ts";

/** Backoff between a task's attempts at the client: from this, doubling, jittered... */
const RETRY_DELAY_MS_MIN = 10;
/** ... up to this. */
const RETRY_DELAY_MS_MAX = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps one live connection per slot, redialing (once, shared) after a loss. */
export class ConnectionPool {
  private readonly clients: (Promise<SchedulerClient> | undefined)[];
  private readonly addressOf: string[];
  private addressIndex = 0;
  /** Connections already reported lost (one slot's loss is seen by each of its tasks). */
  private readonly reported = new WeakSet<SchedulerClient>();

  constructor(
    private readonly addresses: HostPort[],
    size: number,
    private readonly security: ClientSecurity,
    /** Told once per connection that was up and is lost. */
    private readonly onLost?: (address: string, reason: string) => void,
  ) {
    this.clients = new Array(size);
    this.addressOf = new Array(size);
  }

  get(slot: number): Promise<SchedulerClient> {
    const i = slot % this.clients.length;
    const existing = this.clients[i];
    if (existing !== undefined) {
      return existing.then((c) => {
        if (!c.closed) return c;
        if (!this.reported.has(c)) {
          this.reported.add(c);
          this.onLost?.(this.addressOf[i]!, c.closeReason ?? "closed");
        }
        return this.redial(i, existing);
      });
    }
    return this.redial(i, undefined);
  }

  private redial(i: number, stale: Promise<SchedulerClient> | undefined): Promise<SchedulerClient> {
    if (this.clients[i] !== stale) return this.get(i);
    const address = this.addresses[this.addressIndex++ % this.addresses.length]!;
    this.addressOf[i] = `${address.host}:${address.port}`;
    const dialing = SchedulerClient.connect(address, this.security);
    this.clients[i] = dialing;
    dialing.catch(() => {
      if (this.clients[i] === dialing) this.clients[i] = undefined;
    });
    return dialing;
  }

  close(): void {
    for (const c of this.clients) void c?.then((client) => client.close(), () => {});
  }
}

/** What a run counts across its tasks' attempts. */
export interface AttemptCounters {
  retried: number;
  errors: Record<string, number>;
}

export interface RetryRule {
  submitAttemptsMax: number;
  /** performance.now() past which no task is retried. */
  deadline: number;
}

/** Runs one task to its end; undefined when every attempt was refused or lost. */
export async function runWithRetries(
  pool: ConnectionPool, slot: number, spec: TaskSpec, idempotencyKey: string, rule: RetryRule, counters: AttemptCounters,
): Promise<TaskOutcome | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      const client = await pool.get(slot);
      return await client.run(spec.type, spec.payload, { idempotencyKey });
    } catch (err) {
      const code = err instanceof TaskError ? err.code : "E_UNAVAILABLE";
      counters.errors[code] = (counters.errors[code] ?? 0) + 1;
      const retryable = !(err instanceof TaskError) || isRetryable(code);
      if (!retryable || attempt + 1 >= rule.submitAttemptsMax || performance.now() > rule.deadline) return undefined;
      counters.retried++;
      await sleep(backoffDelayMs(attempt, RETRY_DELAY_MS_MIN, RETRY_DELAY_MS_MAX, Math.random()));
    }
  }
}
