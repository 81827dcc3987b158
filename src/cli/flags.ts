// Declarative command-line flags shared by every binary: one table per binary
// gives the parser, the --help text (every flag with its default), the
// environment variables and the config file keys. docs/cli.md is generated
// from the tables (scripts/cli-doc.ts); the vocabulary rules (one meaning per
// long name, one long name per short letter) are checked by a unit test.
//
// Precedence: command line > environment > config file (--config) > default.
// Environment: TASK_SCHEDULER_<BINARY>_<NAME> for any flag of that binary;
// TASK_SCHEDULER_<NAME> too for flags that are not `perBinary` (their meaning
// and usual value are the same in every binary that has them).
// Invalid values stop start-up with a message that names the flag and where it came from.
//
// The command line is split into tokens by node:util parseArgs (short-flag
// groups, -p5000, --name=value, "--"); everything else (types, ranges,
// environment, config file, old names) is ours.

import { parseArgs } from "node:util";
import packageJson from "../../package.json" with { type: "json" };
import { readFileSync } from "node:fs";

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
  /**
   * The value differs from binary to binary (its own port, its own name): no
   * shared TASK_SCHEDULER_<NAME>, only TASK_SCHEDULER_<BINARY>_<NAME>.
   */
  perBinary?: boolean;
  /**
   * What the flag means in every binary that has it, when the help texts are
   * worded for each (docs/cli.md shows it; the vocabulary test compares it).
   */
  meaning?: string;
  /**
   * Former names still accepted, with a warning on stderr: long names, or one
   * letter for a former short form.
   */
  deprecated?: readonly string[];
}

export type FlagValues = Record<string, number | string | boolean>;

export class UsageError extends Error {}

export const ENV_PREFIX = "TASK_SCHEDULER_";

/** The five binaries; a config file may hold a section named after each. */
export const BINARIES = ["coordinator", "worker", "router", "client", "top"] as const;
export type Binary = (typeof BINARIES)[number];

/** Every binary takes --config: a JSON object whose keys are flag names. */
export const CONFIG_FLAG: FlagSpec = {
  name: "config", type: "string", default: "",
  help: "JSON file of settings, keys as the long flag names (e.g. {\"max-queue\": 1000}); may hold settings of every binary, and sections {\"worker\": {...}} for one (docs/cli.md); flags and environment override it",
};

export function envName(flag: string, binary?: string): string {
  return ENV_PREFIX + (binary === undefined ? "" : `${binary.toUpperCase()}_`) + flag.toUpperCase().replaceAll("-", "_");
}

/** The environment variables a flag is read from, the preferred first. */
export function envNames(spec: FlagSpec, binary?: string): string[] {
  if (binary === undefined) return [envName(spec.name)];
  return spec.perBinary ? [envName(spec.name, binary)] : [envName(spec.name, binary), envName(spec.name)];
}

export function helpText(binary: string, summary: string, specs: readonly FlagSpec[], examples: readonly string[] = [], scopedEnv = false): string {
  const rows = specs.map((s) => {
    const names = (s.short ? `-${s.short}, ` : "    ") + `--${s.name}` + (s.type === "bool" ? "" : ` <${s.type === "string" ? "value" : s.type}>`);
    const range = s.min !== undefined || s.max !== undefined ? ` [${s.min ?? ""}..${s.max ?? ""}]` : "";
    const choices = s.choices ? ` (${s.choices.join("|")})` : "";
    const def = s.default === "" ? "" : ` (default: ${s.default})`;
    const old = s.deprecated?.length ? ` (formerly ${s.deprecated.map((d) => (d.length === 1 ? `-${d}` : `--${d}`)).join(", ")})` : "";
    const env = envNames(s, scopedEnv ? binary : undefined).join(" or ");
    return `  ${names.padEnd(34)} ${s.help}${choices}${range}${def}${old}\n  ${"".padEnd(34)} env ${env}`;
  });
  const help = "  -h, --help                         print this help and exit\n  --version                          print the version and exit";
  const ex = examples.length ? `\nExamples:\n${examples.map((e) => `  ${e}`).join("\n")}\n` : "";
  return `${binary}: ${summary}\n\nUsage: ${binary} [flags]\n\nFlags:\n${rows.join("\n")}\n${help}\n${ex}`;
}

export interface ParseContext {
  /** Whose flags these are: enables TASK_SCHEDULER_<BINARY>_* and config sections. */
  binary?: Binary;
  /** Words that are not flags (commands and their arguments); an error when absent. */
  positionals?: string[];
  /**
   * Every flag name of every binary (current and former): config file keys
   * among them that this binary lacks are left to the others, not refused.
   */
  knownNames?: ReadonlySet<string>;
  /** Current names only: a former name of ours that is now another flag's is left to that flag. */
  currentNames?: ReadonlySet<string>;
  /** Short letter -> the long name it stands for in the binaries that have it: named in a former letter's warning. */
  currentShorts?: ReadonlyMap<string, string>;
  /** Where deprecation warnings go (stderr in the binaries). */
  warn?: (message: string) => void;
}

/**
 * Parses argv (without the executable) into values for every spec. Throws
 * UsageError. Words that are not flags go into `positionals` when it is given
 * (commands and their arguments), and are an error otherwise.
 */
export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[], env: Record<string, string | undefined>, ctx: ParseContext = {}): FlagValues & { help: boolean; version: boolean } {
  const warn = ctx.warn ?? (() => {});
  const byName = new Map<string, FlagSpec>();
  const oldNames = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    // A short letter only with one dash: "--p" is no flag.
    if (s.short) byName.set(`-${s.short}`, s);
    for (const old of s.deprecated ?? []) oldNames.set(old.length === 1 ? `-${old}` : old, s);
  }
  const fromFile = specs.some((s) => s.name === "config")
    ? readConfigFile(configPath(argv, env, ctx.binary), { binary: ctx.binary, byName, oldNames, knownNames: ctx.knownNames, currentNames: ctx.currentNames, warn })
    : {};
  const values: FlagValues = {};
  for (const s of specs) {
    const fromEnv = readEnv(s, env, ctx, warn);
    if (fromEnv !== undefined) values[s.name] = convert(s, fromEnv.raw, `environment variable ${fromEnv.name}`);
    else if (s.name in fromFile) values[s.name] = fromFile[s.name]!;
    else values[s.name] = s.default;
  }
  let help = false;
  let version = false;
  const given = new Set<string>();
  for (const token of tokenize(specs, argv)) {
    if (token.kind === "positional") {
      if (ctx.positionals === undefined) throw new UsageError(`unexpected argument "${token.value}" (see --help)`);
      ctx.positionals.push(token.value);
      continue;
    }
    if (token.rawName === "-h" || token.rawName === "--help") {
      help = true;
      continue;
    }
    if (token.rawName === "--version") {
      version = true;
      continue;
    }
    const name = token.rawName.startsWith("--") ? token.rawName.slice(2) : token.rawName;
    let spec = byName.get(name);
    if (spec === undefined) {
      spec = oldNames.get(name);
      if (spec === undefined) throw new UsageError(`unknown flag "${token.rawName}" (see --help)`);
      // A former name that is now another binary's flag: say so, it is what a user may have meant.
      const letterNow = name.startsWith("-") ? ctx.currentShorts?.get(name.slice(1)) : undefined;
      const elsewhere = letterNow !== undefined ? ` (${token.rawName} is --${letterNow} in other binaries)` : ctx.currentNames?.has(name) ? ` (other binaries' ${token.rawName} is a different flag)` : "";
      warn(`${token.rawName} is deprecated: use --${spec.name}${spec.short ? ` (-${spec.short})` : ""}${elsewhere}`);
    }
    let raw = token.value;
    if (raw === undefined) {
      if (spec.type !== "bool") throw new UsageError(`flag --${spec.name} needs a value`);
      raw = "true";
    }
    const value = convert(spec, raw, `flag --${spec.name}`);
    values[spec.name] = spec.repeatable && given.has(spec.name) ? `${values[spec.name]},${value}` : value;
    given.add(spec.name);
  }
  return Object.assign(values, { help, version });
}

type Token = { kind: "positional"; value: string } | { kind: "option"; rawName: string; value: string | undefined };

/**
 * parseArgs in its lenient mode, for tokens only: told which flags take a
 * value (so `-p 5000`, `-p5000` and `--port=5000` agree, and a value may start
 * with '-'), it leaves unknown flags and type checks to us. Tokens keep the
 * flag as written ("-p", "--port", a former name), which parseFlags looks up.
 */
function tokenize(specs: readonly FlagSpec[], argv: readonly string[]): Token[] {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" }, version: { type: "boolean" } };
  for (const s of specs) {
    const type = s.type === "bool" ? "boolean" : "string";
    options[s.name] = s.short ? { type, short: s.short } : { type };
    for (const old of s.deprecated ?? []) {
      // A former short letter is registered under a name nobody types.
      if (old.length === 1) options[`former-short-${old}`] = { type, short: old };
      else options[old] = { type };
    }
  }
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const out: Token[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") out.push({ kind: "positional", value: t.value });
    else if (t.kind === "option") out.push({ kind: "option", rawName: t.rawName, value: t.value });
  }
  return out;
}

/**
 * The environment value of a flag, and the variable it came from: the
 * binary's own variable first, then the shared one. A former name's variable
 * still counts (with a warning), unless that name now belongs to another flag.
 */
function readEnv(spec: FlagSpec, env: Record<string, string | undefined>, ctx: ParseContext, warn: (message: string) => void): { name: string; raw: string } | undefined {
  const set = (name: string) => (env[name] !== undefined && env[name] !== "" ? { name, raw: env[name]! } : undefined);
  const own = ctx.binary === undefined ? undefined : set(envName(spec.name, ctx.binary));
  if (own !== undefined) return own;
  const shared = set(envName(spec.name));
  if (shared !== undefined) {
    if (spec.perBinary && ctx.binary !== undefined) warn(`${shared.name} is read by every binary and is deprecated for --${spec.name}: use ${envName(spec.name, ctx.binary)}`);
    return shared;
  }
  for (const old of spec.deprecated ?? []) {
    if (old.length === 1) continue;
    const former = set(envName(old));
    if (former === undefined) continue;
    if (ctx.currentNames?.has(old)) {
      warn(`ignoring ${former.name}: it is now another binary's --${old}; this one's is ${envName(spec.name, ctx.binary)}`);
      continue;
    }
    warn(`${former.name} is deprecated: use ${envNames(spec, ctx.binary)[0]}`);
    return former;
  }
  return undefined;
}

/** --config from the command line, else TASK_SCHEDULER_<BINARY>_CONFIG or TASK_SCHEDULER_CONFIG; "" for none. */
function configPath(argv: readonly string[], env: Record<string, string | undefined>, binary: Binary | undefined): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config") return argv[i + 1] ?? "";
    if (argv[i]!.startsWith("--config=")) return argv[i]!.slice("--config=".length);
  }
  return (binary === undefined ? undefined : env[envName("config", binary)]) || env[envName("config")] || "";
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

// --config files. One file may serve every binary: flat keys are flag names
// (each binary takes the ones it has and leaves the others' alone), and a
// section named after a binary ({"worker": {...}}) holds settings for that
// binary only, over the flat ones. A key no binary knows is refused, so a typo
// never passes silently. A file without sections may be one written for this
// binary alone before the flag renames, so there a former name of ours is ours
// even when it is now another binary's flag (dropping it would lose a setting).

interface ConfigContext {
  binary: Binary | undefined;
  /** This binary's flags by long name (and "-x" short forms, unused here). */
  byName: ReadonlyMap<string, FlagSpec>;
  /** This binary's former flag names. */
  oldNames: ReadonlyMap<string, FlagSpec>;
  /** Every binary's names, current and former; undefined: this binary's alone. */
  knownNames: ReadonlySet<string> | undefined;
  /** Every binary's current names. */
  currentNames: ReadonlySet<string> | undefined;
  warn: (message: string) => void;
}

type Json = Record<string, unknown>;

function readConfigFile(path: string, ctx: ConfigContext): FlagValues {
  if (path === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`config file ${path}: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new UsageError(`config file ${path}: must hold a JSON object`);
  const values: FlagValues = {};
  const isSection = (key: string) => (BINARIES as readonly string[]).includes(key) && !ctx.byName.has(key);
  const sections: Array<[Binary, Json]> = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (!isSection(key)) continue;
    if (!isObject(value)) throw new UsageError(`config file ${path}: section "${key}" must be a JSON object of ${key} settings`);
    sections.push([key as Binary, value]);
  }
  const shared = sections.length > 0;
  for (const [key, value] of Object.entries(parsed)) {
    if (!isSection(key)) take(values, key, key, value, shared ? "shared" : "flat", path, ctx);
  }
  for (const [binary, section] of sections) {
    for (const [key, value] of Object.entries(section)) {
      if (binary !== ctx.binary) {
        // Another binary's section: checked only for keys nobody knows.
        if (ctx.knownNames !== undefined && !ctx.knownNames.has(key)) throw unknown(path, `${binary}.${key}`);
        continue;
      }
      take(values, `${binary}.${key}`, key, value, "own-section", path, ctx);
    }
  }
  return values;
}

/**
 * Where a key sits: in this binary's section; flat in a file with sections (shared
 * by several binaries); or flat in a file without any (maybe this binary's alone).
 */
type KeyPlace = "own-section" | "shared" | "flat";

/**
 * One key: this binary's flag (or former name) sets it; another binary's flag
 * is left alone, among a shared file's flat keys (the sections say whose is whose).
 */
function take(values: FlagValues, label: string, key: string, value: unknown, place: KeyPlace, path: string, ctx: ConfigContext): void {
  const ownSection = place === "own-section";
  const where = `config file ${path}: setting "${label}"`;
  let spec = key === "config" ? undefined : ctx.byName.get(key);
  const othersNow = ctx.currentNames?.has(key) === true;
  if (spec === undefined && (!othersNow || place !== "shared")) {
    spec = ctx.oldNames.get(key);
    const alsoOthers = othersNow && place === "flat" ? ` (other binaries read "${key}" as their own flag: in a file for several, put it in a "${ctx.binary}" section)` : "";
    if (spec !== undefined) ctx.warn(`${where} uses a former name: taken as "${spec.name}", rename it${alsoOthers}`);
  }
  if (spec === undefined) {
    if (ownSection) throw new UsageError(`${where}: not a ${ctx.binary} setting (see ${ctx.binary} --help)`);
    if (key === "config" || ctx.knownNames === undefined || !ctx.knownNames.has(key)) throw unknown(path, label);
    return;
  }
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
    throw new UsageError(`${where} must be a string, number or boolean`);
  }
  values[spec.name] = convert(spec, String(value), where);
}

function unknown(path: string, key: string): UsageError {
  return new UsageError(`config file ${path}: unknown setting "${key}" (no binary has such a flag; keys are the long flag names, see --help and docs/cli.md)`);
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
