// Builds the SDK package into lib/: ESM JavaScript bundled by Bun (the
// @msgpack/msgpack dependency left external) and .d.ts files from tsc.
// Why built files and not the .ts sources: our sources import each other with
// ".ts" extensions and are checked under our own strict flags, so a user's
// plain tsconfig would reject them; declarations check under any settings.
//
//   bun scripts/build-sdk.ts        (also run by `bun pm pack` through prepack)

import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const OUT = "lib";
/** The package's entry points: what package.json "exports" names. */
const ENTRYPOINTS = ["src/sdk/index.ts", "src/sdk/handlers.ts"];

rmSync(OUT, { recursive: true, force: true });
const started = performance.now();
const result = await Bun.build({
  entrypoints: ENTRYPOINTS,
  outdir: OUT,
  target: "bun",
  format: "esm",
  splitting: true,
  external: ["@msgpack/msgpack"],
  sourcemap: "linked",
});
// The executor thread is a Worker module, loaded by URL beside the bundle (src/sdk/worker.ts):
// its own build, so it lands as lib/executor-thread.js whatever the chunks are named.
const thread = await Bun.build({
  entrypoints: ["src/worker/executor-thread.ts"],
  outdir: OUT,
  target: "bun",
  format: "esm",
  external: ["@msgpack/msgpack"],
  sourcemap: "linked",
});
for (const built of [result, thread]) {
  if (built.success) continue;
  for (const log of built.logs) console.error(log);
  process.exit(1);
}

const tsc = Bun.spawnSync(["bunx", "tsc", "-p", "tsconfig.sdk.json"], { stdout: "inherit", stderr: "inherit" });
if (tsc.exitCode !== 0) process.exit(tsc.exitCode ?? 1);

// tsc keeps "./x.ts" specifiers in declarations; "./x.js" resolves to x.d.ts under every moduleResolution.
const RELATIVE_TS = /((?:from |import\()\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g;
function rewrite(dir: string): number {
  let files = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files += rewrite(path);
    else if (name.endsWith(".d.ts")) {
      writeFileSync(path, readFileSync(path, "utf8").replace(RELATIVE_TS, "$1$2.js$3"));
      files++;
    }
  }
  return files;
}
const declarations = rewrite(join(OUT, "types"));
console.log(`built ${OUT}/ (${result.outputs.length + thread.outputs.length} JS files, ${declarations} declarations) in ${Math.round(performance.now() - started)} ms`);
