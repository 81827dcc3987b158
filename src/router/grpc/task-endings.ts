// Where the gRPC Watch stream's events come from. Today the router observes a
// task's end by waiting on it (a WATCH through its own port, as the SDK's
// wait() and REST clients do); a feed of task events can take its place
// behind the same interface without touching the stream.

import type { TaskInfo } from "../../protocol/messages.ts";
import type { SchedulerClient } from "../../sdk/client.ts";

export interface TaskEndings {
  /**
   * Calls onEnd once per task as it ends (at once for one that has), and
   * resolves when every task has; rejects with the first task that cannot be
   * watched (unknown, its shard unreachable). After `signal` aborts nothing
   * more is reported.
   */
  watch(taskIds: readonly number[], onEnd: (info: TaskInfo) => void, signal: AbortSignal): Promise<void>;
}

/** Waits on each task through the router, then reads its final state. */
export class WaitedTaskEndings implements TaskEndings {
  constructor(private readonly client: () => Promise<SchedulerClient>) {}

  async watch(taskIds: readonly number[], onEnd: (info: TaskInfo) => void, signal: AbortSignal): Promise<void> {
    const client = await this.client();
    await Promise.all(taskIds.map(async (id) => {
      await client.wait(id);
      if (signal.aborted) return;
      const info = await client.task(id);
      if (!signal.aborted) onEnd(info);
    }));
  }
}
