// Flag parsing: short and long forms, --name=value, env TASK_SCHEDULER_*,
// precedence flag > env > default, errors that name the flag, and the help text.

import { describe, expect, test } from "bun:test";
import { ENV_PREFIX, envName, helpText, parseFlags, UsageError, type FlagSpec } from "../../src/cli/flags.ts";
import { parseBinaryFlags } from "../../src/cli/flag-registry.ts";

const SPECS: readonly FlagSpec[] = [
  { name: "port", short: "p", type: "int", default: 5000, min: 0, max: 65535, help: "TCP port" },
  { name: "workers", short: "w", type: "int", default: 4, min: 1, help: "executor threads" },
  { name: "ratio", type: "number", default: 0.5, min: 0, max: 1, help: "a fraction" },
  { name: "node-id", type: "string", default: "", help: "name in logs" },
  { name: "log-level", type: "string", default: "info", choices: ["debug", "info", "warn"], help: "least severe level" },
  { name: "json", type: "bool", default: false, help: "print JSON" },
  { name: "peer", type: "string", default: "", repeatable: true, help: "another coordinator" },
];

const NO_ENV: Record<string, string | undefined> = {};

function parse(argv: string[], env = NO_ENV) {
  return parseFlags(SPECS, argv, env);
}

function usageError(argv: string[], env = NO_ENV): string {
  try {
    parse(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

describe("parseFlags", () => {
  test("defaults when nothing is given", () => {
    expect(parse([])).toEqual({ port: 5000, workers: 4, ratio: 0.5, "node-id": "", "log-level": "info", json: false, peer: "", help: false, version: false });
  });

  test("--version is seen wherever it stands, like --help", () => {
    expect(parse(["-p", "6000", "--version"])).toMatchObject({ port: 6000, version: true, help: false });
  });

  test("short, long and --name=value forms", () => {
    expect(parse(["-p", "6000", "--workers", "8", "--ratio=0.25", "--node-id=a=b"])).toMatchObject({ port: 6000, workers: 8, ratio: 0.25, "node-id": "a=b" });
  });

  test("the seed's command lines parse", () => {
    expect(parse(["-p", "5000", "-w", "4"])).toMatchObject({ port: 5000, workers: 4 });
    expect(parse(["-p", "5001", "--peer", "127.0.0.1:5000"])).toMatchObject({ port: 5001, peer: "127.0.0.1:5000" });
  });

  test("a bool flag alone is true; --flag=value takes the usual spellings", () => {
    expect(parse(["--json"]).json).toBe(true);
    for (const [raw, value] of [["true", true], ["1", true], ["yes", true], ["on", true], ["false", false], ["0", false], ["no", false], ["off", false]] as const) {
      expect(parse([`--json=${raw}`]).json).toBe(value);
    }
    expect(usageError(["--json=maybe"])).toContain("--json");
  });

  test("a short flag may hold its value: -p5000", () => {
    expect(parse(["-p5000"]).port).toBe(5000);
  });

  test("a bool flag does not swallow the next argument", () => {
    expect(parse(["--json", "-p", "1"])).toMatchObject({ json: true, port: 1 });
  });

  test("-h and --help set help and do not stop parsing", () => {
    expect(parse(["-h"]).help).toBe(true);
    expect(parse(["--port", "7", "--help"])).toMatchObject({ help: true, port: 7 });
  });

  test("the last value wins, except for repeatable flags whose values are joined with ','", () => {
    expect(parse(["-p", "1", "-p", "2"]).port).toBe(2);
    expect(parse(["--peer", "a:1", "--peer", "b:2", "--peer=c:3"]).peer).toBe("a:1,b:2,c:3");
  });

  test("values that look like flags are taken as values", () => {
    expect(parse(["--node-id", "-x"])["node-id"]).toBe("-x");
  });

  test("string choices are enforced", () => {
    expect(parse(["--log-level", "debug"])["log-level"]).toBe("debug");
    const msg = usageError(["--log-level", "loud"]);
    expect(msg).toContain("--log-level");
    expect(msg).toContain("debug, info, warn");
  });

  test("bad numbers name the flag and the problem", () => {
    expect(usageError(["-p", "abc"])).toContain("--port");
    expect(usageError(["-p", "1.5"])).toContain("not an integer");
    expect(usageError(["-p", ""])).toContain("not an integer");
    expect(usageError(["-p", "70000"])).toContain("above the maximum 65535");
    expect(usageError(["-p", "-1"])).toContain("below the minimum 0");
    expect(usageError(["--workers", "0"])).toContain("below the minimum 1");
    expect(usageError(["--ratio", "NaN"])).toContain("not a number");
    expect(usageError(["--ratio", "Infinity"])).toContain("not a number");
    expect(usageError(["--ratio", "1.01"])).toContain("above the maximum 1");
    expect(parse(["--ratio", "1"]).ratio).toBe(1);
  });

  test("unknown flags, positional arguments and missing values are errors", () => {
    expect(usageError(["--nope"])).toContain('"--nope"');
    expect(usageError(["extra"])).toContain('"extra"');
    expect(usageError(["-p=5000"])).toContain('"=5000" is not an integer'); // = only with long names
    expect(usageError(["--port"])).toContain("--port needs a value");
    expect(usageError(["-p", "1", "-w"])).toContain("--workers needs a value");
  });
});

describe("environment variables", () => {
  test("names are TASK_SCHEDULER_ + upper snake case", () => {
    expect(ENV_PREFIX).toBe("TASK_SCHEDULER_");
    expect(envName("port")).toBe("TASK_SCHEDULER_PORT");
    expect(envName("worker-timeout-ms")).toBe("TASK_SCHEDULER_WORKER_TIMEOUT_MS");
  });

  test("env overrides the default; a flag overrides env", () => {
    const env = { TASK_SCHEDULER_PORT: "7000", TASK_SCHEDULER_JSON: "yes", TASK_SCHEDULER_NODE_ID: "from-env" };
    expect(parse([], env)).toMatchObject({ port: 7000, json: true, "node-id": "from-env" });
    expect(parse(["-p", "8000", "--json=false"], env)).toMatchObject({ port: 8000, json: false, "node-id": "from-env" });
  });

  test("an empty env value counts as unset", () => {
    expect(parse([], { TASK_SCHEDULER_PORT: "" }).port).toBe(5000);
  });

  test("an invalid env value names the variable", () => {
    const msg = usageError([], { TASK_SCHEDULER_WORKERS: "many" });
    expect(msg).toContain("environment variable TASK_SCHEDULER_WORKERS");
    expect(usageError([], { TASK_SCHEDULER_LOG_LEVEL: "loud" })).toContain("TASK_SCHEDULER_LOG_LEVEL");
  });

  test("a repeatable flag given on the command line replaces the env value, not appends to it", () => {
    expect(parse(["--peer", "b:2"], { TASK_SCHEDULER_PEER: "a:1" }).peer).toBe("b:2");
    expect(parse([], { TASK_SCHEDULER_PEER: "a:1,c:3" }).peer).toBe("a:1,c:3");
  });

  test("unrelated env variables are ignored", () => {
    expect(parse([], { PORT: "1", TASK_SCHEDULER_UNKNOWN: "x" }).port).toBe(5000);
  });
});

describe("helpText", () => {
  const text = helpText("worker", "runs tasks", SPECS, ["worker -p 5000 -w 4"]);

  test("names the binary, its summary and usage", () => {
    expect(text.startsWith("worker: runs tasks\n")).toBe(true);
    expect(text).toContain("Usage: worker [flags]");
  });

  test("every flag appears with its short form, help, default and env variable", () => {
    for (const spec of SPECS) {
      expect(text).toContain(`--${spec.name}`);
      expect(text).toContain(spec.help);
      expect(text).toContain(`env ${envName(spec.name)}`);
      if (spec.short) expect(text).toContain(`-${spec.short}, --${spec.name}`);
      if (spec.default !== "") expect(text).toContain(`(default: ${spec.default})`);
    }
    expect(text).toContain("-h, --help");
  });

  test("ranges, choices, value placeholders and examples are shown", () => {
    expect(text).toContain("[0..65535]");
    expect(text).toContain("[1..]");
    expect(text).toContain("(debug|info|warn)");
    expect(text).toContain("--port <int>");
    expect(text).toContain("--ratio <number>");
    expect(text).toContain("--node-id <value>");
    expect(text).not.toContain("--json <");
    expect(text).toContain("Examples:\n  worker -p 5000 -w 4");
  });

  test("no Examples section without examples", () => {
    expect(helpText("x", "y", SPECS)).not.toContain("Examples:");
  });
});

test("client --submit-attempts stops at 65535: the client counts attempts in 16 bits, so more would never run out", () => {
  expect(parseBinaryFlags("client", ["--submit-attempts", "65535"], NO_ENV)["submit-attempts"]).toBe(65535);
  expect(() => parseBinaryFlags("client", ["--submit-attempts", "65536"], NO_ENV)).toThrow(UsageError);
});
