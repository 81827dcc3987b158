// docs/cli.md is generated from the flag tables: this fails when a flag was
// added or changed without `bun scripts/cli-doc.ts > docs/cli.md`.

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { cliDoc } from "../../src/cli/cli-doc.ts";
import { FLAG_TABLES } from "../../src/cli/flag-registry.ts";

test("docs/cli.md is what scripts/cli-doc.ts prints from the tables", () => {
  const onDisk = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8");
  expect(onDisk === cliDoc()).toBe(true); // if not: bun scripts/cli-doc.ts > docs/cli.md
});

test("every flag of every binary has a row", () => {
  const doc = cliDoc();
  for (const table of Object.values(FLAG_TABLES)) for (const spec of table) expect(doc).toContain(`| \`--${spec.name}\` |`);
});
