// --config files: keys are flag names; precedence command line > environment > file > default.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_FLAG, parseFlags, UsageError, type FlagSpec } from "../../src/cli/flags.ts";

const SPECS: FlagSpec[] = [
  { name: "port", short: "p", type: "int", default: 5000, min: 1, max: 65535, help: "" },
  { name: "max-queue", type: "int", default: 100, min: 1, help: "" },
  { name: "host", type: "string", default: "127.0.0.1", help: "" },
  { name: "json", type: "bool", default: false, help: "" },
  CONFIG_FLAG,
];
const dir = mkdtempSync(join(tmpdir(), "flags-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

test("a config file sets flags; environment and command line override it", () => {
  const path = file("a.json", JSON.stringify({ port: 7000, "max-queue": 9, host: "::1", json: true }));
  expect(parseFlags(SPECS, ["--config", path], {})).toMatchObject({ port: 7000, "max-queue": 9, host: "::1", json: true });
  expect(parseFlags(SPECS, ["--config", path], { TASK_SCHEDULER_PORT: "7100" })).toMatchObject({ port: 7100, "max-queue": 9 });
  expect(parseFlags(SPECS, ["--config", path, "-p", "7200"], { TASK_SCHEDULER_PORT: "7100" })).toMatchObject({ port: 7200 });
  expect(parseFlags(SPECS, [], { TASK_SCHEDULER_CONFIG: path })).toMatchObject({ port: 7000 });
  expect(parseFlags(SPECS, [`--config=${path}`], {})).toMatchObject({ "max-queue": 9 });
});

test("bad config files are refused with a message naming the file and the setting", () => {
  const cases: Array<[string, string]> = [
    [file("unknown.json", '{"max-queu": 5}'), 'unknown setting "max-queu"'],
    [file("range.json", '{"port": 70000}'), 'setting "port"'],
    [file("type.json", '{"port": "x"}'), 'setting "port"'],
    [file("nested.json", '{"port": {"a": 1}}'), "must be a string, number or boolean"],
    [file("array.json", "[1, 2]"), "must hold a JSON object"],
    [file("broken.json", "{port: 1"), "broken.json"],
    [join(dir, "missing.json"), "missing.json"],
  ];
  for (const [path, message] of cases) {
    expect(() => parseFlags(SPECS, ["--config", path], {})).toThrow(UsageError);
    expect(() => parseFlags(SPECS, ["--config", path], {})).toThrow(message);
  }
});
