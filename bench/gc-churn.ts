// How the layout of a big, constantly changing task table shows up as event-loop
// stalls (garbage-collector pauses), the reason for src/core/task-table.ts.
//
//   bun bench/gc-churn.ts [--held 200000] [--rate 40000] [--seconds 5]
//
// Each layout holds --held task-like objects with idempotency keys, and every
// millisecond adds rate/1000 new ones and forgets as many of the oldest (what a
// coordinator retaining finished tasks does). A 1 ms timer counts how often it
// fires more than 4 ms late. Layouts, each in a fresh process:
//   one-map    Map<id, task> and Map<key, id>: what the scheduler had before
//   table      TaskTable: blocks of 8,192 ids, keys by a 53-bit hash

import { parseArgs } from "node:util";
import { TaskTable } from "../src/core/task-table.ts";
import type { Task } from "../src/core/task.ts";

const { values } = parseArgs({
  options: {
    held: { type: "string", default: "200000" },
    rate: { type: "string", default: "40000" },
    seconds: { type: "string", default: "5" },
    layout: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("usage: bun bench/gc-churn.ts [--held N] [--rate N] [--seconds S]   (prints stalls per layout)");
  process.exit(0);
}
const held = Number(values.held);
const perMs = Math.max(1, Math.round(Number(values.rate) / 1000));
const seconds = Number(values.seconds);

interface Layout {
  add(task: Task): void;
  forget(task: Task): void;
  byKey(key: string): Task | undefined;
}

function oneMap(): Layout {
  const tasks = new Map<number, Task>();
  const keys = new Map<string, number>();
  return {
    add: (t) => void (tasks.set(t.id, t), keys.set(t.idempotencyKey, t.id)),
    forget: (t) => void (tasks.delete(t.id), keys.delete(t.idempotencyKey)),
    byKey: (k) => tasks.get(keys.get(k) ?? -1),
  };
}

function table(): Layout {
  const t = new TaskTable();
  return { add: (task) => t.add(task), forget: (task) => t.delete(task), byKey: (k) => t.withKey(k) };
}

function makeTask(id: number): Task {
  // The fields that make a task costly to trace: a key string, a payload, lists.
  return { id, idempotencyKey: `run-${id}`, payload: new Uint8Array(16), errors: [], watchers: [], state: "completed" } as unknown as Task;
}

async function measure(name: string): Promise<void> {
  const layout = name === "one-map" ? oneMap() : table();
  const order: Task[] = [];
  let next = 1;
  for (; next <= held; next++) {
    const t = makeTask(next);
    layout.add(t);
    order.push(t);
  }
  let oldest = 0;
  const stalls: number[] = [];
  let last = performance.now();
  const end = last + seconds * 1000;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (now - last > 4) stalls.push(Math.round(now - last));
      for (let i = 0; i < perMs; i++, next++) {
        const t = makeTask(next);
        if (layout.byKey(t.idempotencyKey) !== undefined) throw new Error("duplicate key");
        layout.add(t);
        order.push(t);
        layout.forget(order[oldest]!);
        order[oldest++] = undefined as unknown as Task;
      }
      last = performance.now();
      if (last > end) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  stalls.sort((a, b) => b - a);
  const total = stalls.reduce((a, b) => a + b, 0);
  console.log(`${name.padEnd(8)} ${held} held, ${perMs * 1000}/s for ${seconds} s: ${stalls.length} stalls over 4 ms, ${total} ms in all; worst ${stalls.slice(0, 8).join(", ") || "none"}`);
}

if (values.layout !== undefined) {
  await measure(values.layout);
} else {
  // A fresh process per layout: one layout's heap must not slow the other's collections.
  for (const layout of ["one-map", "table"]) {
    const args = ["--held", String(held), "--rate", String(values.rate), "--seconds", String(seconds), "--layout", layout];
    const child = Bun.spawnSync([process.execPath, import.meta.path, ...args], { stdout: "inherit", stderr: "inherit" });
    if (child.exitCode !== 0) process.exit(child.exitCode ?? 1);
  }
}
