#!/usr/bin/env bun
import { main } from "../src/worker/main.ts";

// The executor thread's module: a separate entrypoint of the compiled binary (see scripts/build.ts).
main(new URL("../src/worker/executor-thread.ts", import.meta.url));
