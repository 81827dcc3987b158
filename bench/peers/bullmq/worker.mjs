// The BullMQ side's worker process: a BullMQ Worker with a no-op processor,
// in a process of its own like our worker. Prints "ready" once it is
// connected and consuming, and closes cleanly on SIGTERM.
//
//   node worker.mjs --port 6379 --queue NAME --concurrency 256

import { parseArgs } from "node:util";
import { Worker } from "bullmq";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    queue: { type: "string" },
    concurrency: { type: "string", default: "256" },
  },
});

const worker = new Worker(values.queue, async () => undefined, {
  connection: { host: "127.0.0.1", port: Number(values.port), maxRetriesPerRequest: null },
  concurrency: Number(values.concurrency),
});
worker.on("error", (err) => process.stderr.write(`worker error: ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write("ready\n");

const stop = async () => {
  await worker.close(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
