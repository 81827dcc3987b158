// Submitting work from an application with the SDK and waiting for results.
//
//   dist/worker -p 5000 --handlers examples/handlers.ts &
//   bun examples/submit-and-wait.ts [host:port]

import { connect, TaskError } from "../src/sdk/client.ts";

const client = await connect(process.argv[2] ?? "127.0.0.1:6000");

// An image-like transform: a 64x64 gradient halved to 32x32.
const pixels = new Uint8Array(64 * 64).map((_, i) => i % 256);
const resized = await client.run("resize", { width: 64, height: 64, pixels });
const image = (await client.result(resized.taskId)) as { width: number; height: number };
console.log(`resize: ${resized.ok ? `ok, ${image.width}x${image.height}` : resized.error}`);

// Retries with backoff: fails twice, then succeeds.
const flaky = await client.run("flaky", { succeedOnAttempt: 3 }, { maxAttempts: 5, backoff: { type: "exponential", delayMs: 20, maxDelayMs: 200 } });
console.log(`flaky: ok=${flaky.ok} after ${flaky.attempts} attempts`);

// A batch, submitted at once and awaited together.
const ids = await client.submitMany(Array.from({ length: 100 }, (_, i) => ({ type: "wordfreq-map", payload: `task ${i} of a batch` })));
const outcomes = await Promise.all(ids.map((id) => client.wait(id)));
console.log(`batch: ${outcomes.filter((o) => o.ok).length}/100 ok`);

// Typed errors.
try {
  await client.task(123456789);
} catch (err) {
  if (err instanceof TaskError) console.log(`unknown task: ${err.code}`);
}
client.close();
