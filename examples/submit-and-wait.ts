// Submitting work from an application with the SDK and waiting for results.
// (examples/sdk-app is the same as a separate project using the package by name.)
//
//   dist/worker -p 5000 --handlers examples/handlers.ts &
//   bun examples/submit-and-wait.ts [host:port[,host:port...]]

import { connect, SchedulerError, TaskFailedError } from "../src/sdk/index.ts";

interface Image {
  width: number;
  height: number;
  pixels: Uint8Array;
}
type Tasks = {
  resize: { payload: Image; result: Image };
  flaky: { payload: { succeedOnAttempt: number }; result: string };
  "wordfreq-map": { payload: string; result: Record<string, number> };
};

const scheduler = await connect<Tasks>({ servers: (process.argv[2] ?? "127.0.0.1:6000").split(",") });

// An image-like transform: a 64x64 gradient halved to 32x32. run() resolves to the decoded result.
const pixels = new Uint8Array(64 * 64).map((_, i) => i % 256);
const image = await scheduler.run("resize", { width: 64, height: 64, pixels });
console.log(`resize: ok, ${image.width}x${image.height}`);

// Retries with backoff: fails twice, then succeeds.
const flaky = await scheduler.submit("flaky", { succeedOnAttempt: 3 }, { maxAttempts: 5, backoff: { type: "exponential", delayMs: 20, maxDelayMs: 200 } });
await flaky.result();
console.log(`flaky: ok after ${(await flaky.status()).attempt} attempts`);

// A batch, submitted at once and awaited together.
const handles = await scheduler.submitMany(Array.from({ length: 100 }, (_, i) => ({ type: "wordfreq-map" as const, payload: `task ${i} of a batch` })));
const counts = await Promise.all(handles.map((h) => h.result()));
console.log(`batch: ${counts.length}/100 ok`);

// Typed errors: a failure that used up its attempts, and an unknown task.
try {
  await scheduler.run("flaky", { succeedOnAttempt: 9 }, { maxAttempts: 2 });
} catch (err) {
  if (err instanceof TaskFailedError) console.log(`flaky: ${err.code} after ${err.attempts} attempts`);
}
try {
  await scheduler.status(123456789);
} catch (err) {
  if (err instanceof SchedulerError) console.log(`unknown task: ${err.code}`);
}
await scheduler.close();
