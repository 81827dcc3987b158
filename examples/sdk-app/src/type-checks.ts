// Compile-time checks of the SDK's typing, run by `tsc --noEmit`: every line
// marked as an expected error must be one, or tsc fails (the types would be too loose).

import { connect, createWorker, SchedulerError, type ErrorCode, type Scheduler } from "bun-task-scheduler";
import type { Tasks } from "./tasks.ts";

export async function checks(s: Scheduler<Tasks>): Promise<void> {
  const sum: number = await s.run("add", { a: 1, b: 2 });
  const handle = await s.submit("add", { a: 1, b: 2 });
  const later: number = await handle.result();
  const status = await handle.status();
  // @ts-expect-error: states are a closed union, so a typo does not compile
  if (status.state === "runing") return;
  // @ts-expect-error: b must be a number
  await s.run("add", { a: 1, b: "2" });
  // @ts-expect-error: no such task type
  await s.run("subtract", { a: 1, b: 2 });
  // @ts-expect-error: the result of add is a number, not a string
  const wrong: string = await s.run("add", { a: 1, b: 2 });
  try {
    await s.status(handle.id);
  } catch (err) {
    // @ts-expect-error: codes are a closed union, so a typo does not compile
    if (err instanceof SchedulerError && err.code === "E_UNKNOWN_TAKS") return;
    const code: ErrorCode | undefined = err instanceof SchedulerError ? err.code : undefined;
    void code;
  }
  // In-process handlers are typed by the same map: add gets {a, b} and returns a number.
  const worker = await createWorker<Tasks>({ servers: ["127.0.0.1:5000"], handlers: { add: ({ a, b }) => a + b } });
  // @ts-expect-error: add's result is a number, not a string
  await createWorker<Tasks>({ servers: ["127.0.0.1:5000"], handlers: { add: ({ a }) => `${a}` } });
  // @ts-expect-error: add's payload has no c
  await createWorker<Tasks>({ servers: ["127.0.0.1:5000"], handlers: { add: ({ c }) => c } });
  await worker.close();
  void [sum, later, wrong, connect];
}
