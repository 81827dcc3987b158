// Distributed word frequencies as a map/reduce DAG: the corpus is split into
// chunks, one map task per chunk counts its words on the workers, and one
// reduce task that depends on every map sums their results (a task's handler
// receives its parents' results as ctx.inputs). The final counts are checked
// against a count done here in one process.
//
//   dist/worker -p 5000 --handlers examples/handlers.ts &
//   bun examples/wordfreq-mapreduce.ts [host:port] [--repeat N] [--chunk-lines N]

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { connect } from "../src/sdk/client.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { repeat: { type: "string", default: "20" }, "chunk-lines": { type: "string", default: "8" } },
});
const address = positionals[0] ?? "127.0.0.1:6000";
const text = readFileSync(new URL("./corpus.txt", import.meta.url), "utf8").repeat(Number(values.repeat));
const lines = text.split("\n");
const chunkLines = Number(values["chunk-lines"]);
const chunks: string[] = [];
for (let i = 0; i < lines.length; i += chunkLines) chunks.push(lines.slice(i, i + chunkLines).join("\n"));

const client = await connect(address);
const maps = chunks.map((chunk) => ({ type: "wordfreq-map", payload: chunk }));
const reduce = { type: "wordfreq-reduce", dependsOn: maps.map((_, node) => ({ node })) };
const started = performance.now();
const ids = await client.workflow([...maps, reduce]);
const outcome = await client.wait(ids.at(-1)!);
const elapsedMs = performance.now() - started;
if (!outcome.ok) throw new Error(`reduce failed: ${outcome.error}`);
const distributed = (await client.result(outcome.taskId)) as Record<string, number>;
client.close();

// The same count in one process.
const local: Record<string, number> = {};
for (const word of text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) local[word] = (local[word] ?? 0) + 1;

const words = Object.keys(local);
const mismatched = words.filter((w) => distributed[w] !== local[w]);
const extra = Object.keys(distributed).filter((w) => !(w in local));
const total = Object.values(distributed).reduce((a, b) => a + b, 0);
const top = Object.entries(distributed).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([w, n]) => `${w}=${n}`).join(" ");
console.log(`map tasks ${maps.length}, reduce task ${outcome.taskId}, ${Math.round(elapsedMs)} ms`);
console.log(`words ${total}, distinct ${words.length}, top ${top}`);
if (mismatched.length > 0 || extra.length > 0) {
  console.error(`MISMATCH: ${mismatched.length} words differ, ${extra.length} unexpected`);
  process.exit(1);
}
console.log("distributed counts match the single-process count");
