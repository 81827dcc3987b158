// Submits typed tasks, waits for their results, handles a failure by its code,
// and listens to the tasks' events as they happen.
//   bun src/main.ts 127.0.0.1:6000[,127.0.0.1:6001]

import { connect, TaskFailedError, type SchedulerEvent } from "bun-task-scheduler";
import type { Tasks } from "./tasks.ts";

const servers = (process.argv[2] ?? "127.0.0.1:6000").split(",");
const scheduler = await connect<Tasks>({ servers, retry: { giveUpAfterMs: 10_000 } });

// Events of these task types (BullMQ's QueueEvents), opened before submitting so none is missed.
const events = scheduler.events({ types: ["add", "explode"] });
const counts = { completed: 0, failed: 0 };
events.on("completed", () => counts.completed++);
events.on("failed", () => counts.failed++); // an attempt failed; a retry follows
const dead = new Promise<SchedulerEvent>((resolve) => events.on("dead", resolve)); // failed for good

// run(): submit and wait; the result is typed (number) and decoded.
const sum: number = await scheduler.run("add", { a: 2, b: 3 });
console.log(`add: ${sum}`);

// submit(): a handle now, the result later; the key makes a re-submission return the same task.
const handle = await scheduler.submit("add", { a: 40, b: 2 }, { idempotencyKey: `answer-${Date.now()}` });
console.log(`submitted task ${handle.id}: ${await handle.result()}`);

// A failure rejects with a TaskFailedError: its code and every attempt's error.
try {
  await scheduler.run("explode", { why: "on purpose" }, { maxAttempts: 2 });
} catch (err) {
  if (!(err instanceof TaskFailedError)) throw err;
  // A handler's error text carries its stack; the first line is the message.
  console.log(`explode: ${err.code} after ${err.attempts} attempts: ${err.errors.map((e) => e.message.split("\n")[0]).join(" | ")}`);
}
const last = await dead;
console.log(`events: ${counts.completed} completed, ${counts.failed} failed, then dead with ${last.code} (task ${last.taskId})`);
events.close();
await scheduler.close();
