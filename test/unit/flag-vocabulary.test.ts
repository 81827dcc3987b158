// The rules of one flag vocabulary across the five binaries (docs/cli.md):
// one long name, one meaning; one short letter, one flag; no environment
// variable read with two meanings; former names never shadow a current one.

import { describe, expect, test } from "bun:test";
import { FLAG_TABLES } from "../../src/cli/flag-registry.ts";
import { BINARIES, envNames, type Binary, type FlagSpec } from "../../src/cli/flags.ts";
import { flagRows, rowMeaning } from "../../src/cli/cli-doc.ts";

const entries: Array<[Binary, FlagSpec]> = BINARIES.flatMap((b) => FLAG_TABLES[b].map((s): [Binary, FlagSpec] => [b, s]));

describe("one flag vocabulary", () => {
  test("a long name has one type, short letter, choices and scope everywhere", () => {
    for (const row of flagRows()) {
      const [first, ...rest] = row.specs.map(([, s]) => s);
      for (const s of rest) {
        expect({ name: s.name, type: s.type, short: s.short, perBinary: s.perBinary, choices: s.choices }).toEqual({
          name: first!.name, type: first!.type, short: first!.short, perBinary: first!.perBinary, choices: first!.choices,
        });
      }
    }
  });

  test("a long name shared by binaries has one meaning: the same help, or one `meaning` (per-binary flags excepted)", () => {
    for (const row of flagRows()) {
      if (row.specs[0]![1].perBinary) continue;
      expect({ flag: row.name, meaning: rowMeaning(row).includes("<br>") ? "differs between binaries" : "one" }).toEqual({ flag: row.name, meaning: "one" });
    }
  });

  test("a short letter is the same long flag in every binary", () => {
    const byShort = new Map<string, string>();
    for (const [binary, s] of entries) {
      if (s.short === undefined) continue;
      const seen = byShort.get(s.short) ?? s.name;
      expect(`${binary} -${s.short} is --${s.name}`).toBe(`${binary} -${s.short} is --${seen}`);
      byShort.set(s.short, s.name);
    }
  });

  test("within a binary, no name or letter (current or former) is used twice, and -h stays help", () => {
    for (const binary of BINARIES) {
      const names = FLAG_TABLES[binary].flatMap((s) => [s.name, ...(s.short ? [`-${s.short}`] : []), ...(s.deprecated ?? []).map((d) => (d.length === 1 ? `-${d}` : d))]);
      expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
      expect(names).not.toContain("-h");
      expect(names).not.toContain("help");
      expect(names).not.toContain("version");
    }
  });

  test("no environment variable is read for two different flags", () => {
    const meaningOf = new Map<string, string>();
    for (const [binary, s] of entries) {
      for (const env of envNames(s, binary)) {
        const seen = meaningOf.get(env) ?? s.name;
        expect(`${env} -> --${s.name} (${binary})`).toBe(`${env} -> --${seen} (${binary})`);
        meaningOf.set(env, s.name);
      }
    }
  });

  test("the renamed flags are in place", () => {
    const has = (b: Binary, name: string) => FLAG_TABLES[b].some((s) => s.name === name);
    for (const b of ["worker", "router", "client", "top"] as const) expect(has(b, "servers")).toBe(true);
    for (const b of BINARIES) expect(FLAG_TABLES[b].find((s) => s.name === "host")?.short).toBe("H");
    expect(entries.filter(([, s]) => s.name === "batch-max" || s.name === "timeout-ms" && s.type !== "int")).toEqual([]);
  });
});
