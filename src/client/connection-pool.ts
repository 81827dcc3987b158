// The load generators' connections and their retry rule, shared by the closed
// loop (load.ts) and the open loop (open-loop.ts) through task-sender.ts: one
// live connection per slot, redialed after a loss; each task is retried under
// its idempotency key (so a retry never duplicates it) while its refusal is retryable.

import type { ClientSecurity } from "../net/net-flags.ts";
import type { HostPort } from "../net/endpoints.ts";
import { SchedulerClient } from "../sdk/client.ts";


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
