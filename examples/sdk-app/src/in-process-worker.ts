// The same handlers run inside this process (no worker binary): createWorker
// serves the coordinator, connect submits through the router, close() drains.
// Then from their module path, on executor threads (for CPU-bound handlers).
//   bun src/in-process-worker.ts 127.0.0.1:5000 127.0.0.1:6000   (coordinator, router)

import { connect, createWorker } from "bun-task-scheduler";
import handlers from "./handlers"; // plain tsconfig: value imports without ".ts"
import type { Tasks } from "./tasks.ts";

const [coordinator = "127.0.0.1:5000", router = coordinator] = process.argv.slice(2);
const worker = await createWorker<Tasks>({ servers: [coordinator], handlers, concurrency: 32 });
const scheduler = await connect<Tasks>({ servers: [router], retry: { giveUpAfterMs: 10_000 } });

const sums = await Promise.all(Array.from({ length: 100 }, (_, i) => scheduler.run("add", { a: i, b: i })));
console.log(`in-process add x100: total ${sums.reduce((total, s) => total + s, 0)}, ${worker.counters.done} run here`);

await worker.close(); // no new tasks; running ones finish; then it disconnects

const threaded = await createWorker<Tasks>({ servers: [coordinator], handlers: `${import.meta.dir}/handlers.ts`, threads: 2 });
const more = await Promise.all(Array.from({ length: 10 }, (_, i) => scheduler.run("add", { a: i, b: 1 })));
console.log(`on threads add x10: total ${more.reduce((total, s) => total + s, 0)}, ${threaded.counters.done} run here`);
await threaded.close();
await scheduler.close();
