// Declarative command-line flags shared by every binary: one table gives the
// parser, the --help text (every flag with its default), the environment
// variable (TASK_SCHEDULER_<NAME>) and the config file key (<name>).
// Precedence: command line > environment > config file (--config) > default.
// Invalid values stop start-up with a message that names the flag and where it came from.

import { readFileSync } from "node:fs";
import packageJson from "../../package.json" with { type: "json" };

/** The version every binary prints with --version: the package's, compiled in. */
export const VERSION: string = packageJson.version;

export type FlagType = "int" | "number" | "string" | "bool";

export interface FlagSpec {
  /** Long name without dashes, kebab-case. */
  name: string;
  short?: string;
  type: FlagType;
  default: number | string | boolean;
  help: string;
  min?: number;
  max?: number;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** May be given more than once (string flags): values joined with ','. */
  repeatable?: boolean;
}

export type FlagValues = Record<string, number | string | boolean>;

export class UsageError extends Error {}

export const ENV_PREFIX = "TASK_SCHEDULER_";

/** Every binary takes --config: a JSON object whose keys are flag names. */
export const CONFIG_FLAG: FlagSpec = {
  name: "config", type: "string", default: "",
  help: "JSON file of settings, keys as the long flag names (e.g. {\"max-queue\": 1000}); flags and environment override it",
};

export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replaceAll("-", "_");
}

export function helpText(binary: string, summary: string, specs: readonly FlagSpec[], examples: readonly string[] = []): string {
  const rows = specs.map((s) => {
    const names = (s.short ? `-${s.short}, ` : "    ") + `--${s.name}` + (s.type === "bool" ? "" : ` <${s.type === "string" ? "value" : s.type}>`);
    const range = s.min !== undefined || s.max !== undefined ? ` [${s.min ?? ""}..${s.max ?? ""}]` : "";
    const choices = s.choices ? ` (${s.choices.join("|")})` : "";
    const def = s.default === "" ? "" : ` (default: ${s.default})`;
    return `  ${names.padEnd(34)} ${s.help}${choices}${range}${def}\n  ${"".padEnd(34)} env ${envName(s.name)}`;
  });
  const help = "  -h, --help                         print this help and exit\n  --version                          print the version and exit";
  const ex = examples.length ? `\nExamples:\n${examples.map((e) => `  ${e}`).join("\n")}\n` : "";
  return `${binary}: ${summary}\n\nUsage: ${binary} [flags]\n\nFlags:\n${rows.join("\n")}\n${help}\n${ex}`;
}

/**
 * Parses argv (without the executable) into values for every spec. Throws
 * UsageError. Words that are not flags go into `positionals` when it is given
 * (commands and their arguments), and are an error otherwise.
 */
export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[], env: Record<string, string | undefined>, positionals?: string[]): FlagValues & { help: boolean; version: boolean } {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    if (s.short) byName.set(`-${s.short}`, s);
  }
  const values: FlagValues = {};
  const given = new Set<string>();
  const fromFile = specs.some((s) => s.name === "config") ? readConfigFile(configPath(argv, env), byName) : {};
  for (const s of specs) {
    const fromEnv = env[envName(s.name)];
    if (fromEnv !== undefined && fromEnv !== "") values[s.name] = convert(s, fromEnv, `environment variable ${envName(s.name)}`);
    else if (s.name in fromFile) values[s.name] = fromFile[s.name]!;
    else values[s.name] = s.default;
  }
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (arg === "--version") {
      version = true;
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(key);
    if (spec === undefined && positionals !== undefined && !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    if (spec === undefined) throw new UsageError(`unknown flag "${arg}" (see --help)`);
    let raw: string;
    if (eq > 0) raw = arg.slice(eq + 1);
    else if (spec.type === "bool") raw = "true";
    else {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`flag --${spec.name} needs a value`);
      raw = next;
    }
    const value = convert(spec, raw, `flag --${spec.name}`);
    values[spec.name] = spec.repeatable && given.has(spec.name) ? `${values[spec.name]},${value}` : value;
    given.add(spec.name);
  }
  return Object.assign(values, { help, version });
}

/** --config from the command line, else TASK_SCHEDULER_CONFIG; "" for none. */
function configPath(argv: readonly string[], env: Record<string, string | undefined>): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config") return argv[i + 1] ?? "";
    if (argv[i]!.startsWith("--config=")) return argv[i]!.slice("--config=".length);
  }
  return env[envName("config")] ?? "";
}

function readConfigFile(path: string, byName: Map<string, FlagSpec>): FlagValues {
  if (path === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`config file ${path}: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError(`config file ${path}: must hold a JSON object`);
  const values: FlagValues = {};
  for (const [key, value] of Object.entries(parsed)) {
    const spec = byName.get(`--${key}`);
    if (spec === undefined || key === "config") throw new UsageError(`config file ${path}: unknown setting "${key}" (keys are the long flag names, see --help)`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new UsageError(`config file ${path}: setting "${key}" must be a string, number or boolean`);
    }
    values[key] = convert(spec, String(value), `config file ${path}: setting "${key}"`);
  }
  return values;
}

function convert(spec: FlagSpec, raw: string, where: string): number | string | boolean {
  switch (spec.type) {
    case "bool":
      if (["true", "1", "yes", "on"].includes(raw)) return true;
      if (["false", "0", "no", "off"].includes(raw)) return false;
      throw new UsageError(`${where}: "${raw}" is not true or false`);
    case "int":
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n) || (spec.type === "int" && !Number.isInteger(n))) {
        throw new UsageError(`${where}: "${raw}" is not ${spec.type === "int" ? "an integer" : "a number"}`);
      }
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`${where}: ${n} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new UsageError(`${where}: ${n} is above the maximum ${spec.max}`);
      return n;
    }
    case "string":
      if (spec.choices && !spec.choices.includes(raw)) throw new UsageError(`${where}: "${raw}" is not one of ${spec.choices.join(", ")}`);
      return raw;
  }
}

/**
 * The whole start-up of a binary's arguments: prints help and exits 0 on
 * --help, prints the error and exits 2 on bad input; returns the values otherwise.
 */
export function parseOrExit(binary: string, summary: string, flagTable: readonly FlagSpec[], examples: readonly string[] = []): FlagValues {
  const specs = [...flagTable, CONFIG_FLAG];
  try {
    const values = parseFlags(specs, process.argv.slice(2), process.env);
    if (values.help) {
      process.stdout.write(helpText(binary, summary, specs, examples));
      process.exit(0);
    }
    if (values.version) {
      process.stdout.write(`${binary} ${VERSION}\n`);
      process.exit(0);
    }
    return values;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${binary}: ${err.message}\n`);
    process.exit(2);
  }
}
