// The load generators' sending side, on the client's callback path
// (SchedulerClient.sendTasks): tasks are numbers, their ends come back through
// one method, and nothing is allocated per task on the way but its key. Tasks
// go as single SUBMITs or, with --batch, as SUBMIT_BATCH messages. A task
// refused as retryable (or lost with its connection) is sent again alone after
// a backoff, under the same idempotency key, up to submitAttemptsMax times.

import { backoffDelayMs } from "../net/backoff.ts";
import { isRetryable, isErrorCode } from "../protocol/errors.ts";
import type { SubmitFields } from "../protocol/messages.ts";
import type { SchedulerClient, TaskEnds } from "../sdk/client.ts";
import type { AttemptCounters, ConnectionPool, RetryRule } from "./connection-pool.ts";
import { taskKey } from "./run-tally.ts";
import type { Workload } from "./workloads.ts";

/** Backoff between a task's attempts at the client: from this, doubling, jittered, up to RETRY_DELAY_MS_MAX. */
const RETRY_DELAY_MS_MIN = 10;
const RETRY_DELAY_MS_MAX = 1000;

export interface TaskSenderOptions {
  pool: ConnectionPool;
  connections: number;
  /** Tasks 0 .. tasks-1 of `workload`. */
  tasks: number;
  workload: Workload;
  idempotencyPrefix: string;
  /** Send every group of tasks as one SUBMIT_BATCH (else one SUBMIT each). */
  asBatch: boolean;
  /** A task ends at its TASK_DONE (it ran); false: at its acknowledgement (ingest only). */
  waitForEnd: boolean;
  rule: RetryRule;
  counters: AttemptCounters;
  /** Task i ended for good: `ran` false when refused or lost every time; else `ok` and its output (a view). */
  ended(i: number, ok: boolean, ran: boolean, output: Uint8Array): void;
}

export class TaskSender implements TaskEnds {
  /** Attempts so far per task: two bytes each, so a run of 10 million tasks holds 20 MB here. */
  private readonly attempts: Uint16Array;
  private readonly clients: Array<SchedulerClient | undefined>;
  private next = 0;
  private groupIndex = 0;
  /** The group being sent: fill() reads it (one closure for the life of the sender, not one per task). */
  private group: ArrayLike<number> = [];
  private groupFirst = 0;
  private readonly fill = (k: number, f: SubmitFields): number => {
    const i = this.groupFirst >= 0 ? this.groupFirst + k : this.group[k]!;
    const spec = this.o.workload.task(i);
    f.type = spec.type;
    f.payload = spec.payload;
    f.idempotencyKey = taskKey(this.o.idempotencyPrefix, i);
    return i;
  };

  constructor(private readonly o: TaskSenderOptions) {
    this.attempts = new Uint16Array(o.tasks);
    this.clients = new Array(o.connections);
  }

  /** Dials every connection (before the clock starts: a handshake is no task's latency). */
  async connect(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.connections }, (_, slot) => this.dial(slot).catch(() => undefined)));
  }

  /** Tasks not sent yet. */
  get remaining(): number {
    return this.o.tasks - this.next;
  }

  /** Sends the next `count` tasks (fewer if the run has fewer left) as one group; returns how many. */
  sendNext(count: number): number {
    const n = Math.min(count, this.o.tasks - this.next);
    if (n <= 0) return 0;
    const first = this.next;
    this.next += n;
    this.sendGroup(first, undefined, n);
    return n;
  }

  taskEnded(i: number, ok: boolean, output: Uint8Array, code: string | undefined): void {
    if (code === undefined) return this.o.ended(i, ok, true, output);
    const counters = this.o.counters;
    counters.errors[code] = (counters.errors[code] ?? 0) + 1;
    const attempt = this.attempts[i]!;
    const retryable = !isErrorCode(code) || isRetryable(code);
    if (!retryable || attempt + 1 >= this.o.rule.submitAttemptsMax || performance.now() > this.o.rule.deadline) return this.o.ended(i, false, false, output);
    counters.retried++;
    this.attempts[i] = Math.min(0xffff, attempt + 1);
    setTimeout(() => this.sendGroup(-1, [i], 1), backoffDelayMs(attempt, RETRY_DELAY_MS_MIN, RETRY_DELAY_MS_MAX, Math.random()));
  }

  close(): void {
    this.o.pool.close();
  }

  /** Tasks first..first+count-1 (first >= 0) or the tasks listed, on the next connection in turn. */
  private sendGroup(first: number, listed: number[] | undefined, count: number): void {
    const slot = this.groupIndex++ % this.o.connections;
    const client = this.clients[slot];
    if (client === undefined || client.closed) {
      // Redial (shared per slot by the pool), then send; a failed dial counts against each task.
      const tasks = listed ?? Array.from({ length: count }, (_, k) => first + k);
      void this.dial(slot).then(
        () => this.sendGroup(-1, tasks, tasks.length),
        () => { for (const i of tasks) this.taskEnded(i, false, EMPTY, "E_UNAVAILABLE"); },
      );
      return;
    }
    this.groupFirst = first;
    this.group = listed ?? [];
    try {
      client.sendTasks(count, this.fill, this.o.waitForEnd, this.o.asBatch);
    } catch {
      for (let k = 0; k < count; k++) this.taskEnded(first >= 0 ? first + k : listed![k]!, false, EMPTY, "E_UNAVAILABLE");
    }
  }

  private async dial(slot: number): Promise<SchedulerClient> {
    const client = await this.o.pool.get(slot);
    client.taskEnds = this;
    this.clients[slot] = client;
    return client;
  }
}

const EMPTY = new Uint8Array(0);
