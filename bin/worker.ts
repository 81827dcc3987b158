#!/usr/bin/env bun
import { main } from "../src/worker/main.ts";

// The executor thread is a second entrypoint of the compiled binary (scripts/build.ts).
// Compiled, entrypoints sit under /$bunfs/root/ by their path from the project root
// and this file is /$bunfs/root/worker; under `bun run` this file is bin/worker.ts.
const compiled = import.meta.url.includes("/$bunfs/");
await main(new URL(compiled ? "./src/worker/executor-thread.ts" : "../src/worker/executor-thread.ts", import.meta.url));
