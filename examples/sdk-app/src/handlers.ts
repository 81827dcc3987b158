// The handlers, loaded by a worker:  worker -p 5000 --handlers src/handlers.ts

import type { Handlers } from "bun-task-scheduler/handlers";
import type { Tasks } from "./tasks.ts";

export default {
  add: ({ a, b }) => a + b,
  explode: ({ why }) => {
    throw new Error(why);
  },
} satisfies Handlers<Tasks>;
