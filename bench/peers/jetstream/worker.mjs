// The JetStream side's worker process: a durable pull consumer with explicit
// acks, read through consume() in batches, in a process of its own like our
// worker. Each job's data is "<completion subject> <job id>": the worker
// publishes the id to that subject (the submitter's completion), then acks
// the job. Prints "ready" once consuming; stops cleanly on SIGTERM.
//
//   bun worker.mjs --servers 127.0.0.1:4222[,...] --stream JOBS --consumer workers --batch 1000

import { parseArgs } from "node:util";
import { connect } from "nats";

const { values } = parseArgs({
  options: {
    servers: { type: "string" },
    stream: { type: "string", default: "JOBS" },
    consumer: { type: "string", default: "workers" },
    batch: { type: "string", default: "1000" },
  },
});

const nc = await connect({ servers: values.servers.split(",") });
const js = nc.jetstream();
const consumer = await js.consumers.get(values.stream, values.consumer);
const messages = await consumer.consume({ max_messages: Number(values.batch) });
process.stdout.write("ready\n");

process.on("SIGTERM", async () => {
  messages.stop();
  await nc.drain().catch(() => {});
  process.exit(0);
});

const decoder = new TextDecoder();
for await (const m of messages) {
  const data = decoder.decode(m.data);
  const space = data.indexOf(" ");
  nc.publish(data.slice(0, space), data.slice(space + 1));
  m.ack();
}
