// For fault tests that count acknowledged tasks: retry what a role change
// refused, and find the acknowledged ids the cluster no longer knows.

import { type SchedulerClient, TaskError } from "../../src/sdk/client.ts";

/** Errors a client retries (a request in flight when roles changed); keyed submissions return the original id. */
export const RETRYABLE = new Set(["E_UNAVAILABLE", "E_NOT_PRIMARY", "E_SHUTTING_DOWN"]);

/** `request()`, again while it fails with a retryable error, for at most `deadlineMs`. */
export async function retried<T>(request: () => Promise<T>, deadlineMs = 10_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof TaskError) || !RETRYABLE.has(err.code) || Date.now() > deadline) throw err;
      await Bun.sleep(25);
    }
  }
}

/** The ids whose status the cluster cannot say (E_UNKNOWN_TASK): acknowledged tasks it lost. */
export async function unknownTasks(client: SchedulerClient, ids: number[]): Promise<number[]> {
  const lost: number[] = [];
  for (const id of ids) {
    try {
      await retried(() => client.task(id));
    } catch (err) {
      if (!(err instanceof TaskError) || err.code !== "E_UNKNOWN_TASK") throw err;
      lost.push(id);
    }
  }
  return lost;
}
