// src/core must stay pure (STYLE.md rule 1): no runtime imports, nothing from
// outside src/core, no clock, no global randomness, no timers. Comments may
// mention these names; code may not.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const CORE_DIR = resolve(import.meta.dir, "../../src/core");

const FORBIDDEN_CALLS = ["Date.now(", "Math.random(", "performance.now(", "setTimeout(", "setInterval(", "setImmediate(", "queueMicrotask(", "new Date("];
const FORBIDDEN_GLOBALS = /\b(Bun|process|require|Deno)\s*[.(]/;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|tsx|js|mjs|cjs)$/.test(name)) out.push(path);
  }
  return out;
}

/** Blanks out comments (keeping string literals, which hold the import specifiers). */
function stripComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module specifier: static imports/exports, side-effect imports, dynamic import(). */
function importSpecifiers(code: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*(['"])([^'"]+)\1/g,
    /\bimport\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"`])([^'"`]+)\1\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[2]!);
  return specs;
}

const files = sourceFiles(CORE_DIR);

describe("src/core purity", () => {
  test("the checker itself finds what it must", () => {
    const code = stripComments(`// import x from "bun"; Date.now()
      import { a } from "./a.ts";
      import type { B } from '../net/b.ts';
      export * from "node:fs";
      import "side-effect";
      const m = await import("bun");
      const s = "// not a comment";`);
    expect(importSpecifiers(code).sort()).toEqual(["../net/b.ts", "./a.ts", "bun", "node:fs", "side-effect"]);
    expect(code).not.toContain("Date.now(");
    expect(code).toContain('"// not a comment"');
  });

  test("there are core files to check", () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(files.some((f) => f.endsWith("scheduler.ts"))).toBe(true);
  });

  for (const file of files) {
    const name = relative(CORE_DIR, file);
    const code = stripComments(readFileSync(file, "utf8"));

    test(`${name} imports only from src/core`, () => {
      for (const spec of importSpecifiers(code)) {
        if (spec === "bun" || spec.startsWith("bun:") || spec.startsWith("node:")) throw new Error(`${name} imports the runtime module "${spec}"`);
        if (!spec.startsWith(".")) throw new Error(`${name} imports the package "${spec}": core imports nothing outside src/core`);
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(CORE_DIR + "/")) throw new Error(`${name} imports "${spec}", outside src/core`);
      }
    });

    test(`${name} reads no clock, no global randomness, sets no timers`, () => {
      for (const call of FORBIDDEN_CALLS) if (code.includes(call)) throw new Error(`${name} calls ${call}...)`);
      const global = FORBIDDEN_GLOBALS.exec(code);
      if (global) throw new Error(`${name} uses the runtime global "${global[0]}"`);
      expect(true).toBe(true);
    });
  }
});
