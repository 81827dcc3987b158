// Compiles the five binaries into dist/ with `bun build --compile`.
// The worker's executor thread is a Worker module: it must be an extra
// entrypoint of the worker binary or it fails only at run time (ModuleNotFound).
//
//   bun scripts/build.ts            all binaries
//   bun scripts/build.ts worker     just one

import { mkdirSync } from "node:fs";
import { terminalKitPlugin } from "./terminal-kit-plugin.ts";

interface Target {
  name: string;
  entrypoints: string[];
  plugins?: Bun.BunPlugin[];
}

const TARGETS: Target[] = [
  { name: "coordinator", entrypoints: ["bin/coordinator.ts"] },
  { name: "worker", entrypoints: ["bin/worker.ts", "src/worker/executor-thread.ts"] },
  { name: "router", entrypoints: ["bin/router.ts"] },
  { name: "client", entrypoints: ["bin/client.ts"] },
  { name: "top", entrypoints: ["bin/top.ts"], plugins: [terminalKitPlugin] },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !TARGETS.some((t) => t.name === w));
if (unknown.length > 0) {
  console.error(`build: unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.name).join(", ")}`);
  process.exit(2);
}
mkdirSync("dist", { recursive: true });
let failed = false;
for (const target of TARGETS.filter((t) => wanted.length === 0 || wanted.includes(t.name))) {
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: target.entrypoints,
    compile: { outfile: `dist/${target.name}` },
    // Not minified: stack traces in logs stay readable, and it saves only ~50 KB of a ~100 MiB binary.
    sourcemap: "inline",
    plugins: target.plugins ?? [],
  });
  if (!result.success) {
    failed = true;
    console.error(`build: ${target.name} failed`);
    for (const log of result.logs) console.error(log);
    continue;
  }
  console.log(`built dist/${target.name} in ${Math.round(performance.now() - started)} ms`);
}
process.exit(failed ? 1 : 0);
