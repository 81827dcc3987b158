// Which server the SDK dials next and when, and which failed requests it sends
// again: pure rules (randomness handed in) so they are tested without sockets.

import { backoffDelayMs } from "../net/backoff.ts";
import type { ErrorCode } from "../protocol/errors.ts";

export interface RetryOptions {
  /** First pause after every server of the list failed once; doubles per round. Default 50. */
  minDelayMs?: number;
  /** Longest pause between rounds (before jitter). Default 2000. */
  maxDelayMs?: number;
  /** A request (or the first connection) keeps trying across servers for this long, then rejects. Default 30000. */
  giveUpAfterMs?: number;
  /** One dial plus handshake; past it the server counts as failed. Default 3000. */
  connectTimeoutMs?: number;
  /**
   * A request answered at once (submit, status, cancel, stats; not run or result,
   * which wait for the task) left unanswered this long drops the connection and is
   * sent again elsewhere: a stopped or half-open server sends no close. Default 10000.
   */
  answerTimeoutMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = {
  minDelayMs: 50,
  maxDelayMs: 2_000,
  giveUpAfterMs: 30_000,
  connectTimeoutMs: 3_000,
  answerTimeoutMs: 10_000,
};

/** Upper bound on re-sends of one request, whatever the time budget: a bug cannot loop forever. */
export const RESENDS_MAX = 1_000;

/**
 * The order in which a client tries its servers. Clients start at a random one
 * so many of them spread over the list; a failure moves to the next; only after
 * a whole round failed does it pause, with doubling backoff and jitter, so one
 * dead server costs no waiting while another is up.
 */
export class ServerRotation {
  private cursor: number;
  /** Failures since the last successful connection. */
  private failures = 0;

  constructor(
    readonly count: number,
    random: number,
    private readonly retry: Required<RetryOptions>,
  ) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`a client needs at least one server, not ${count}`);
    this.cursor = Math.min(count - 1, Math.floor(random * count));
  }

  /** Index of the server to dial now. */
  get current(): number {
    return this.cursor;
  }

  /** The current server failed (dial refused, connection lost, no longer primary): move on; ms to wait first. */
  failed(random: number): number {
    this.failures++;
    this.cursor = (this.cursor + 1) % this.count;
    if (this.failures % this.count !== 0) return 0;
    const rounds = this.failures / this.count;
    return backoffDelayMs(rounds - 1, this.retry.minDelayMs, this.retry.maxDelayMs, random);
  }

  /** A connection came up: the next failure starts a fresh round from there. */
  connected(): void {
    this.failures = 0;
  }
}

/** What a request that failed with `code` does next. */
export type NextStep =
  /** Reject to the caller: the request was refused for a reason another try would not change. */
  | "reject"
  /** Drop this connection, go to the next server and send again (its idempotency key makes it safe). */
  | "failover"
  /** Keep the connection; send again after a pause (the router or coordinator is between leaders). */
  | "pause";

/**
 * The re-send rule. A lost connection, a coordinator that is no longer primary
 * and a connection dropped for a passing reason mean another server may
 * answer; E_UNAVAILABLE or E_SHUTTING_DOWN on a live connection (a router with
 * no primary for the shard yet) mean wait. E_QUEUE_FULL is the cluster pushing
 * back and goes to the caller, as do user errors (E_BAD_REQUEST,
 * E_UNKNOWN_TASK) and a server that closed on us for cause (E_UNAUTHORIZED,
 * E_BAD_FRAME): another server would say the same.
 */
export function nextStep(code: ErrorCode, connectionLost: boolean): NextStep {
  switch (code) {
    case "E_NOT_PRIMARY":
    case "E_SLOW_READER":
    case "E_IDLE_TIMEOUT":
    case "E_TOO_MANY_CONNECTIONS":
    case "E_HANDSHAKE_TIMEOUT":
      return "failover";
    case "E_UNAVAILABLE":
    case "E_SHUTTING_DOWN":
      return connectionLost ? "failover" : "pause";
    default:
      return "reject";
  }
}

/** The key a submission is sent under: the caller's, or a fresh one so a re-send after a lost reply cannot run it twice. */
export function idempotencyKeyOf(given: string | undefined, fresh: () => string): string {
  return given !== undefined && given !== "" ? given : `sdk-${fresh()}`;
}
