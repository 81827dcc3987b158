// The client side of the replica-group fault tests, run inside the hub namespace
// (`bun keyed-load.ts`, config as JSON in JEPSEN_LOAD): a bounded keyed workload
// through the router, retried under the same idempotency key, plus one probe
// client per coordinator that submits to it directly, so an acknowledgement can
// be pinned on the node that gave it. One JSON line per outcome, appended to
// cfg.outFile with synchronous writes: Bun may drop piped stdout a slow reader
// has not taken yet when the process exits, even after a flush callback.

import { openSync, writeSync } from "node:fs";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { isRetryable } from "../../src/protocol/errors.ts";

export interface LoadConfig {
  /** Where the outcomes go, one JSON line each (the test tails it). */
  outFile: string;
  /** host:port of the router. */
  router: string;
  /** Coordinator name -> host:port: each gets a probe client that submits to it alone. */
  probes: Record<string, string>;
  /** Keys are `<prefix>-<i>` (router) and `<prefix>-p-<node>-<i>` (probes). */
  prefix: string;
  /** Most keys the router workload submits. */
  keysMax: number;
  /** New keys (and probes) are started only this long. */
  durationMs: number;
  /** A key not acknowledged this long after the workload's end is given up (reported "unacked"). */
  retryGraceMs: number;
  /** Keys in flight at once through the router. */
  concurrency: number;
  /** Each lane starts a new key at most this often: bounds the rate (and so the audit's size). */
  keyIntervalMs: number;
  /** A request with no answer this long counts as timed out (its answer, if it comes, is still recorded). */
  requestTimeoutMs: number;
  retryDelayMs: number;
  /** One probe submission per coordinator this often. */
  probeIntervalMs: number;
  /** Probe submissions in flight per coordinator at most (a cut-off one answers none). */
  probeInFlightMax: number;
  /** After the workload, answers still in flight are awaited this long. */
  drainMs: number;
  taskType: string;
}

/** One line of output. `via` is "router" or the probed coordinator's name; times are this machine's Date.now(). */
export type LoadEvent =
  | { ev: "ack"; key: string; taskId: number; via: string; attempt: number; sentAt: number; at: number; late: boolean }
  | { ev: "refused"; key: string; code: string; message?: string; via: string; attempt: number; sentAt: number; at: number }
  | { ev: "unacked"; key: string; attempts: number; at: number }
  | { ev: "done"; at: number; keys: number; inFlight: number };

const TIMEOUT = "TIMEOUT";
/** Connect attempts to a probed coordinator: one in flight, each given this long. */
const PROBE_CONNECT_TIMEOUT_MS = 500;
const ROUTER_CONNECT_TIMEOUT_MS = 1_000;

let out = -1;
const emit = (e: LoadEvent): void => void writeSync(out, `${JSON.stringify(e)}\n`);
const codeOf = (err: unknown) => (err instanceof TaskError ? err.code : "E_UNAVAILABLE");
/** The refusal's sentence, shortened: enough to tell two causes of one code apart. */
const messageOf = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 160);

type Settled<T> = { kind: "ok"; value: T } | { kind: "error"; err: unknown } | { kind: "timeout" };

async function within<T>(p: Promise<T>, ms: number): Promise<Settled<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Settled<T>>((resolve) => (timer = setTimeout(() => resolve({ kind: "timeout" }), ms)));
  const settled = p.then((value): Settled<T> => ({ kind: "ok", value }), (err): Settled<T> => ({ kind: "error", err }));
  const outcome = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return outcome;
}

/** Connects with a deadline; a connection that completes after it is closed at once. */
async function connectWithin(address: string, ms: number): Promise<SchedulerClient | undefined> {
  const dialing = SchedulerClient.connect(address, { nodeId: "jepsen-load" });
  const outcome = await within(dialing, ms);
  if (outcome.kind === "ok") return outcome.value;
  if (outcome.kind === "timeout") void dialing.then((c) => c.close(), () => undefined);
  return undefined;
}

class Load {
  private readonly startedAt = Date.now();
  private nextKey = 0;
  private inFlight = 0;
  private router: Promise<SchedulerClient | undefined> | undefined;

  constructor(private readonly cfg: LoadConfig) {}

  async run(): Promise<void> {
    const lanes = Array.from({ length: this.cfg.concurrency }, () => this.lane());
    const probes = Object.entries(this.cfg.probes).map(([node, address]) => this.probe(node, address));
    await Promise.all([...lanes, ...probes]);
    const drainUntil = Date.now() + this.cfg.drainMs;
    while (this.inFlight > 0 && Date.now() < drainUntil) await Bun.sleep(20);
    emit({ ev: "done", at: Date.now(), keys: this.nextKey, inFlight: this.inFlight });
  }

  private running(): boolean {
    return Date.now() - this.startedAt < this.cfg.durationMs;
  }

  private async lane(): Promise<void> {
    while (this.nextKey < this.cfg.keysMax && this.running()) {
      const next = Date.now() + this.cfg.keyIntervalMs;
      await this.submitKey(`${this.cfg.prefix}-${this.nextKey++}`);
      await Bun.sleep(Math.max(0, next - Date.now()));
    }
  }

  /** One key until it is acknowledged, refused for good, or the retry window ends. */
  private async submitKey(key: string): Promise<void> {
    const giveUpAt = this.startedAt + this.cfg.durationMs + this.cfg.retryGraceMs;
    for (let attempt = 1; ; attempt++) {
      const client = await this.routerClient();
      const verdict = client === undefined ? "retry" : await this.submitOnce(client, key, "router", attempt);
      if (verdict !== "retry") return;
      if (Date.now() >= giveUpAt) return emit({ ev: "unacked", key, attempts: attempt, at: Date.now() });
      await Bun.sleep(this.cfg.retryDelayMs);
    }
  }

  /** Submits once and records what the client was told; an answer after the timeout is recorded too. */
  private async submitOnce(client: SchedulerClient, key: string, via: string, attempt: number): Promise<"acked" | "retry" | "final"> {
    const sentAt = Date.now();
    let pending: Promise<number>;
    try {
      pending = client.submit(this.cfg.taskType, undefined, { idempotencyKey: key });
    } catch (err) {
      emit({ ev: "refused", key, code: codeOf(err), message: messageOf(err), via, attempt, sentAt, at: Date.now() });
      return "retry";
    }
    this.inFlight++;
    const outcome = await within(pending, this.cfg.requestTimeoutMs);
    if (outcome.kind === "timeout") {
      emit({ ev: "refused", key, code: TIMEOUT, via, attempt, sentAt, at: Date.now() });
      void pending.then(
        (taskId) => emit({ ev: "ack", key, taskId, via, attempt, sentAt, at: Date.now(), late: true }),
        () => undefined,
      ).finally(() => this.inFlight--);
      return "retry";
    }
    this.inFlight--;
    if (outcome.kind === "ok") {
      emit({ ev: "ack", key, taskId: outcome.value, via, attempt, sentAt, at: Date.now(), late: false });
      return "acked";
    }
    emit({ ev: "refused", key, code: codeOf(outcome.err), message: messageOf(outcome.err), via, attempt, sentAt, at: Date.now() });
    return outcome.err instanceof TaskError && !isRetryable(outcome.err.code) ? "final" : "retry";
  }

  private async routerClient(): Promise<SchedulerClient | undefined> {
    const current = await this.router;
    if (current !== undefined && !current.closed) return current;
    this.router = connectWithin(this.cfg.router, ROUTER_CONNECT_TIMEOUT_MS);
    return this.router;
  }

  /** Submits straight to one coordinator, without waiting for the answers: a backup refuses, a primary acknowledges. */
  private async probe(node: string, address: string): Promise<void> {
    let client: SchedulerClient | undefined;
    let connecting = false;
    let inFlight = 0;
    for (let i = 0; this.running(); await Bun.sleep(this.cfg.probeIntervalMs)) {
      if (client === undefined || client.closed) {
        if (connecting) continue;
        connecting = true;
        void connectWithin(address, PROBE_CONNECT_TIMEOUT_MS).then((c) => ((client = c), (connecting = false)));
        continue;
      }
      if (inFlight >= this.cfg.probeInFlightMax) continue;
      inFlight++;
      void this.submitOnce(client, `${this.cfg.prefix}-p-${node}-${i++}`, node, 1).finally(() => inFlight--);
    }
  }
}

if (import.meta.main) {
  const cfg = JSON.parse(process.env.JEPSEN_LOAD ?? "") as LoadConfig;
  out = openSync(cfg.outFile, "a");
  await new Load(cfg).run();
  process.exit(0);
}
