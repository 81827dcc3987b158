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

// The binaries' real tables: one file for several binaries.
import { CURRENT_NAMES, CURRENT_SHORTS, FLAG_TABLES, KNOWN_NAMES } from "../../src/cli/flag-registry.ts";
import type { Binary } from "../../src/cli/flags.ts";

function parseAs(binary: Binary, argv: string[], env: Record<string, string> = {}) {
  const warnings: string[] = [];
  const values = parseFlags(FLAG_TABLES[binary], argv, env, { binary, positionals: binary === "client" ? [] : undefined, knownNames: KNOWN_NAMES, currentNames: CURRENT_NAMES, currentShorts: CURRENT_SHORTS, warn: (m) => warnings.push(m) });
  return { values, warnings };
}

test("one config file serves every binary: each takes its own keys, sections override flat keys", () => {
  const path = file("shared.json", JSON.stringify({
    "max-queue": 777, concurrency: 9, threads: 3, "frame-bytes-max": 2_000_000, "tls-ca": "",
    coordinator: { port: 5100 }, worker: { servers: "127.0.0.1:5100" }, router: { port: 6100, servers: "127.0.0.1:5100" }, client: { port: 6100 }, top: { port: 6100 },
  }));
  expect(parseAs("coordinator", ["--config", path]).values).toMatchObject({ port: 5100, "max-queue": 777, "frame-bytes-max": 2_000_000 });
  expect(parseAs("worker", ["--config", path]).values).toMatchObject({ servers: "127.0.0.1:5100", threads: 3, "thread-concurrency": 128, "frame-bytes-max": 2_000_000 });
  expect(parseAs("router", ["--config", path]).values).toMatchObject({ port: 6100, servers: "127.0.0.1:5100" });
  expect(parseAs("client", ["--config", path]).values).toMatchObject({ port: 6100, concurrency: 9 });
  expect(parseAs("top", ["--config", path]).values).toMatchObject({ port: 6100 });
  for (const b of ["coordinator", "worker", "router", "client", "top"] as const) expect(parseAs(b, ["--config", path]).warnings).toEqual([]);
});

test("a key no binary knows is refused by every binary; a key of another binary inside a section is refused by its binary", () => {
  const typo = file("typo.json", JSON.stringify({ "max-queu": 5 }));
  const typoInSection = file("typo-section.json", JSON.stringify({ router: { "stats-timeout": 5 } }));
  const wrongSection = file("wrong-section.json", JSON.stringify({ worker: { "max-queue": 5 } }));
  for (const b of ["coordinator", "worker", "router", "client", "top"] as const) {
    expect(() => parseAs(b, ["--config", typo])).toThrow('unknown setting "max-queu"');
    expect(() => parseAs(b, ["--config", typoInSection])).toThrow('"router.stats-timeout"');
  }
  expect(() => parseAs("worker", ["--config", wrongSection])).toThrow('"worker.max-queue": not a worker setting');
  expect(parseAs("coordinator", ["--config", wrongSection]).values["max-queue"]).toBe(FLAG_TABLES.coordinator.find((s) => s.name === "max-queue")!.default);
});

test("former names still work, with a warning, on the command line, in the environment and in config files", () => {
  const worker = parseAs("worker", ["--coordinators", "127.0.0.1:1", "--concurrency", "7", "--batch-max", "9"]);
  expect(worker.values).toMatchObject({ servers: "127.0.0.1:1", "thread-concurrency": 7, "executor-batch-max": 9 });
  expect(worker.warnings).toEqual(["--coordinators is deprecated: use --servers (-s)", "--concurrency is deprecated: use --thread-concurrency (other binaries' --concurrency is a different flag)", "--batch-max is deprecated: use --executor-batch-max"]);
  const c = parseAs("worker", ["-c", "127.0.0.1:2"]);
  expect(c.values.servers).toBe("127.0.0.1:2");
  expect(c.warnings).toEqual(["-c is deprecated: use --servers (-s) (-c is --concurrency in other binaries)"]);
  expect(parseAs("coordinator", ["--batch-max", "70000", "--max-attempts", "4"]).values).toMatchObject({ "frame-batch-max": 70000, "default-max-attempts": 4 });
  expect(parseAs("top", ["--server", "127.0.0.1:7", "--timeout-ms", "300"]).values).toMatchObject({ servers: "127.0.0.1:7", "poll-timeout-ms": 300 });
  const env = parseAs("coordinator", [], { TASK_SCHEDULER_BATCH_MAX: "70001" });
  expect(env.values["frame-batch-max"]).toBe(70001);
  expect(env.warnings).toEqual(["TASK_SCHEDULER_BATCH_MAX is deprecated: use TASK_SCHEDULER_COORDINATOR_FRAME_BATCH_MAX"]);
  const ownSection = file("former.json", JSON.stringify({ worker: { coordinators: "127.0.0.1:3" } }));
  expect(parseAs("worker", ["--config", ownSection]).values.servers).toBe("127.0.0.1:3");
});

test("a former name that is now another binary's flag belongs to that flag in shared settings", () => {
  // TASK_SCHEDULER_CONCURRENCY is the client's now; the worker says it ignores it.
  const worker = parseAs("worker", [], { TASK_SCHEDULER_CONCURRENCY: "3" });
  expect(worker.values["thread-concurrency"]).toBe(128);
  expect(worker.warnings[0]).toContain("ignoring TASK_SCHEDULER_CONCURRENCY");
  expect(parseAs("client", [], { TASK_SCHEDULER_CONCURRENCY: "3" }).values.concurrency).toBe(3);
  // A file with sections is shared: its flat "concurrency" is the client's.
  const shared = file("shared-concurrency.json", JSON.stringify({ concurrency: 5, worker: { threads: 2 } }));
  const sharedWorker = parseAs("worker", ["--config", shared]);
  expect(sharedWorker.values).toMatchObject({ "thread-concurrency": 128, threads: 2 });
  expect(sharedWorker.warnings).toEqual([]);
  expect(parseAs("client", ["--config", shared]).values.concurrency).toBe(5);
});

test("an old single-binary config file (no sections) keeps its settings under former names that are now other binaries' flags", () => {
  const cases: Array<[Binary, string, number, string]> = [
    ["coordinator", "max-attempts", 10, "default-max-attempts"],
    ["worker", "concurrency", 512, "thread-concurrency"],
    ["top", "timeout-ms", 5000, "poll-timeout-ms"],
  ];
  for (const [binary, former, value, now] of cases) {
    const old = file(`old-${binary}.json`, JSON.stringify({ [former]: value }));
    const parsed = parseAs(binary, ["--config", old]);
    expect(parsed.values[now]).toBe(value);
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.warnings[0]).toContain(`"${former}" uses a former name: taken as "${now}", rename it`);
    expect(parsed.warnings[0]).toContain(`put it in a "${binary}" section`);
    // The client reads the same flat key as its own flag, as before.
    expect(parseAs("client", ["--config", old]).values[former]).toBe(value);
  }
  // With sections the file is shared, and the flat key is the client's alone.
  const shared = file("old-shared.json", JSON.stringify({ "max-attempts": 10, client: { tasks: 3 } }));
  expect(parseAs("coordinator", ["--config", shared]).values["default-max-attempts"]).toBe(FLAG_TABLES.coordinator.find((s) => s.name === "default-max-attempts")!.default);
  const inSection = file("old-section.json", JSON.stringify({ coordinator: { "max-attempts": 10 }, client: { tasks: 3 } }));
  expect(parseAs("coordinator", ["--config", inSection]).values["default-max-attempts"]).toBe(10);
});

test("environment: TASK_SCHEDULER_<BINARY>_<NAME> for every flag, the shared name for shared flags; a shared per-binary variable warns", () => {
  const env = { TASK_SCHEDULER_WORKER_THREADS: "5", TASK_SCHEDULER_THREADS: "6", TASK_SCHEDULER_FRAME_BYTES_MAX: "2000000", TASK_SCHEDULER_ROUTER_PORT: "6200" };
  expect(parseAs("worker", [], env).values).toMatchObject({ threads: 5, "frame-bytes-max": 2_000_000 });
  expect(parseAs("router", [], env).values).toMatchObject({ port: 6200, "frame-bytes-max": 2_000_000 });
  expect(parseAs("coordinator", [], env).values.port).toBe(5000);
  const shared = parseAs("coordinator", [], { TASK_SCHEDULER_PORT: "5300" });
  expect(shared.values.port).toBe(5300);
  expect(shared.warnings).toEqual(["TASK_SCHEDULER_PORT is read by every binary and is deprecated for --port: use TASK_SCHEDULER_COORDINATOR_PORT"]);
  expect(parseAs("client", [], { TASK_SCHEDULER_CLIENT_CONFIG: file("c.json", '{"client": {"tasks": 12}}') }).values.tasks).toBe(12);
});
