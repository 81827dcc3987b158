// Dependencies across shards, the router's part: a task whose parents live on
// other shards is created only once they are confirmed to exist there, and a
// parent's end is carried to the shard whose tasks wait on it. Apart from the
// routing because here the router asks coordinators on its own behalf, on a
// timer, with no client connection in the loop; it holds no state of its own
// beyond whether a round is running, so any router (or several) can do it.

import { shardOfTask } from "../core/task.ts";
import { isErrorCode, type ErrorCode } from "../protocol/errors.ts";
import { Kind } from "../protocol/messages.ts";
import type { ShardAnswer } from "./task-by-key.ts";
import type { Upstream } from "./upstream-ask.ts";

/** What the settling needs of its router. */
export interface CrossShardPort {
  primaryOf(shard: number): Upstream | undefined;
  /** Every shard's primary now. */
  primaries(): Upstream[];
  ask(upstream: Upstream, kind: number, body: Record<string, unknown>): Promise<ShardAnswer>;
}

export interface CrossShardTiming {
  statsTimeoutMs: number;
  /** How often dependencies across shards are settled. */
  crossShardPollMs: number;
}

export class CrossShardDependencies {
  private timer: ReturnType<typeof setInterval> | undefined;
  private settling = false;

  constructor(
    private readonly port: CrossShardPort,
    private readonly timing: CrossShardTiming,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.settleRound(), this.timing.crossShardPollMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * The first of these tasks (on other shards than their dependant's) that
   * cannot be confirmed to exist: E_UNKNOWN_TASK, or E_UNAVAILABLE while its
   * shard has no primary (retry). Undefined when all exist.
   */
  async missingParent(parents: readonly number[]): Promise<{ code: ErrorCode; message: string } | undefined> {
    const answers = await Promise.all([...new Set(parents)].map(async (taskId) => {
      const home = this.port.primaryOf(shardOfTask(taskId));
      if (home === undefined) return { code: "E_UNAVAILABLE" as ErrorCode, message: `shard ${shardOfTask(taskId)} of dependency ${taskId} has no reachable primary now; retry` };
      const answer = await this.port.ask(home, Kind.TASK_QUERY, { taskId });
      if (answer.kind === Kind.TASK_INFO) return undefined;
      const code = isErrorCode(answer.body.code) ? answer.body.code : "E_UNAVAILABLE";
      return { code, message: code === "E_UNKNOWN_TASK" ? `dependency ${taskId} is not a task of shard ${shardOfTask(taskId)}` : String(answer.body.message) };
    }));
    return answers.find((a) => a !== undefined);
  }

  /**
   * One round of settling dependencies across shards: ask every primary which
   * parents on other shards its tasks wait on, look each up on its own shard,
   * and report those that ended. Stateless, so any router (or several, or a
   * restarted one) can do it; a report the waiting shard already had is a no-op.
   */
  private settleRound(): void {
    if (this.settling) return;
    this.settling = true;
    // A round that hangs on a silent coordinator ends anyway; late answers are harmless.
    const bound = new Promise<void>((resolve) => setTimeout(resolve, Math.max(this.timing.statsTimeoutMs, this.timing.crossShardPollMs)));
    void Promise.race([this.settleForeignParents(), bound]).finally(() => (this.settling = false));
  }

  private async settleForeignParents(): Promise<void> {
    for (const waiting of this.port.primaries()) {
      const answer = await this.port.ask(waiting, Kind.FOREIGN_WAITS, {});
      const parentIds = answer.kind === Kind.REPLY && Array.isArray(answer.body.parentIds) ? answer.body.parentIds : [];
      await Promise.all(parentIds.filter((p): p is number => Number.isSafeInteger(p)).map((p) => this.reportParentEnd(waiting, p)));
    }
  }

  private async reportParentEnd(waiting: Upstream, parentId: number): Promise<void> {
    const home = this.port.primaryOf(shardOfTask(parentId));
    if (home === undefined) return;
    const info = await this.port.ask(home, Kind.TASK_QUERY, { taskId: parentId });
    let state: unknown;
    let output: unknown;
    if (info.kind === Kind.TASK_INFO) {
      state = info.body.state;
      output = info.body.output;
    } else if (info.kind === Kind.ERROR && info.body.code === "E_UNKNOWN_TASK") {
      state = "failed"; // evicted or purged there: whether it completed is unknown
    }
    if (state !== "completed" && state !== "failed" && state !== "cancelled") return;
    await this.port.ask(waiting, Kind.PARENT_ENDED, { taskId: parentId, state, output: output instanceof Uint8Array ? output : new Uint8Array(0) });
  }
}
