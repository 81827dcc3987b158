// Every binary's flag table in one place: a config file shared by several
// binaries is checked against all of them (a key no binary knows is refused),
// docs/cli.md is generated from them, and the vocabulary test reads them.
// The tables are data modules, so loading them all costs a binary little.

import { CLIENT_FLAGS, COMMAND_FLAGS } from "../client/flag-table.ts";
import { COORDINATOR_FLAGS } from "../coordinator/flag-table.ts";
import { ROUTER_FLAGS } from "../router/flag-table.ts";
import { TOP_FLAGS } from "../top/config.ts";
import { WORKER_FLAGS } from "../worker/flag-table.ts";
import { CONFIG_FLAG, helpText, parseFlags, UsageError, VERSION, type Binary, type FlagSpec, type FlagValues } from "./flags.ts";

/** Each binary's flags as it parses them (--config included). */
export const FLAG_TABLES: Readonly<Record<Binary, readonly FlagSpec[]>> = {
  coordinator: [...COORDINATOR_FLAGS, CONFIG_FLAG],
  worker: [...WORKER_FLAGS, CONFIG_FLAG],
  router: [...ROUTER_FLAGS, CONFIG_FLAG],
  client: [...CLIENT_FLAGS, ...COMMAND_FLAGS, CONFIG_FLAG],
  top: [...TOP_FLAGS, CONFIG_FLAG],
};

const ALL_SPECS = Object.values(FLAG_TABLES).flat();
/** Long names any binary has now. */
export const CURRENT_NAMES: ReadonlySet<string> = new Set(ALL_SPECS.map((s) => s.name));
/** Long names any binary has now or had (config keys and environment variables that mean something). */
export const KNOWN_NAMES: ReadonlySet<string> = new Set([...CURRENT_NAMES, ...ALL_SPECS.flatMap((s) => (s.deprecated ?? []).filter((d) => d.length > 1))]);

/** Short letter -> its long name (one per letter: the vocabulary test sees to it). */
export const CURRENT_SHORTS: ReadonlyMap<string, string> = new Map(ALL_SPECS.flatMap((s) => (s.short ? [[s.short, s.name] as const] : [])));

/** Deprecation warnings: one line each on stderr, never fatal. */
function warnOnStderr(binary: Binary): (message: string) => void {
  return (message) => process.stderr.write(`${binary}: warning: ${message}\n`);
}

/** parseFlags with everything a binary needs: its table, its environment names, the other binaries' config keys. */
export function parseBinaryFlags(binary: Binary, argv: readonly string[], env: Record<string, string | undefined>, positionals?: string[]): FlagValues & { help: boolean; version: boolean } {
  return parseFlags(FLAG_TABLES[binary], argv, env, { binary, positionals, knownNames: KNOWN_NAMES, currentNames: CURRENT_NAMES, currentShorts: CURRENT_SHORTS, warn: warnOnStderr(binary) });
}

export function binaryHelp(binary: Binary, summary: string, examples: readonly string[] = []): string {
  return helpText(binary, summary, FLAG_TABLES[binary], examples, true);
}

/**
 * The whole start-up of a binary's arguments: prints help and exits 0 on
 * --help, the version on --version, prints the error and exits 2 on bad
 * input; returns the values otherwise.
 */
export function parseOrExit(binary: Binary, summary: string, examples: readonly string[] = []): FlagValues {
  try {
    const values = parseBinaryFlags(binary, process.argv.slice(2), process.env);
    if (values.help) {
      process.stdout.write(binaryHelp(binary, summary, examples));
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
