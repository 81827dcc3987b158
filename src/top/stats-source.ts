// Where top's polls come from: one SDK connection, dialed again (a fresh
// SchedulerClient, to the next of its --servers) on the poll after any failure, every step bounded by a
// timeout so a hung server shows up as an error instead of a frozen screen.

import type { HostPort } from "../net/endpoints.ts";
import type { ClientTls } from "../net/tls.ts";
import type { Role } from "../protocol/messages.ts";
import { SchedulerClient } from "../sdk/client.ts";
import type { Poll } from "./model.ts";

export interface StatsSourceOptions {
  /** Polled one at a time: a failed poll moves on to the next (round robin). */
  targets: readonly HostPort[];
  timeoutMs: number;
  token?: string;
  tls?: ClientTls;
  /** Wall clock; injected so a test can stamp polls. */
  now?: () => number;
}

/** The address the SDK reports when connected straight to a coordinator. */
const DIRECT_ADDRESS = "direct";

export class StatsSource {
  private client: SchedulerClient | undefined;
  /** Remembered across reconnects so the error can say what went away. */
  private role: Role | undefined;
  private readonly now: () => number;
  private current = 0;

  constructor(private readonly options: StatsSourceOptions) {
    if (options.targets.length === 0) throw new Error("StatsSource needs at least one address");
    this.now = options.now ?? Date.now;
  }

  /** The address polled now, host:port. */
  get address(): string {
    const t = this.options.targets[this.current]!;
    return `${t.host}:${t.port}`;
  }

  /** Never rejects: a failure is a Poll with ok: false, and drops the connection for the next try. */
  async poll(): Promise<Poll> {
    try {
      const client = await this.connected();
      const stats = await withTimeout(client.clusterStats(), this.options.timeoutMs, "stats request");
      for (const c of stats.coordinators) if (c.address === DIRECT_ADDRESS) c.address = this.address;
      return { ok: true, atMs: this.now(), target: this.address, serverRole: this.role ?? "coordinator", stats };
    } catch (err) {
      this.drop();
      const what = this.role ?? "server";
      const failed = this.address;
      this.current = (this.current + 1) % this.options.targets.length;
      return { ok: false, atMs: this.now(), target: failed, error: `${what} ${failed} unreachable: ${message(err)}` };
    }
  }

  close(): void {
    this.drop();
  }

  private async connected(): Promise<SchedulerClient> {
    if (this.client !== undefined && !this.client.closed) return this.client;
    this.drop();
    const connecting = SchedulerClient.connect(this.options.targets[this.current]!, { nodeId: `top-${process.pid}`, token: this.options.token, tls: this.options.tls });
    // A dial that completes after we gave up must not leak a connection.
    const client = await withTimeout(connecting, this.options.timeoutMs, "connect", (late) => late.close());
    this.client = client;
    this.role = client.server.role;
    return client;
  }

  private drop(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** Rejects after `ms`; `onLate` disposes of a value that arrives after that. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (timedOut) onLate?.(value);
        else resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        if (!timedOut) reject(err);
      },
    );
  });
}

/** The error's sentence, plus its errno code (ECONNREFUSED, ...) when the sentence lacks it. */
function message(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const text = err.message || err.name;
  return typeof code === "string" && !text.includes(code) ? `${text} (${code})` : text;
}
