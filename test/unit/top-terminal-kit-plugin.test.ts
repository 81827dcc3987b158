// The terminal-kit build plugin: every run-time require is made static, and a
// bundle of terminal-kit made with it runs with no node_modules in reach (which
// is the situation inside a compiled `top`). The compiled binary itself is
// exercised by test/e2e/top.test.ts.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Glob } from "bun";
import { leftoverDynamicRequires, rewriteTerminalKitSource, terminalKitPlugin } from "../../scripts/terminal-kit-plugin.ts";

const LIB = resolve(import.meta.dir, "../../node_modules/terminal-kit/lib");
const libFiles = [...new Glob("**/*.js").scanSync(LIB)].sort();
const scratch = mkdtempSync(join(tmpdir(), "top-tk-plugin-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("rewriteTerminalKitSource", () => {
  test("the check sees the trap in terminal-kit as shipped", async () => {
    const terminal = await Bun.file(join(LIB, "Terminal.js")).text();
    expect(leftoverDynamicRequires(terminal).some((r) => r.includes("'./termconfig/' +"))).toBe(true);
    const termkit = await Bun.file(join(LIB, "termkit.js")).text();
    expect(leftoverDynamicRequires(termkit).some((r) => r.startsWith("lazy.requireProperties"))).toBe(true);
  });

  test("leaves no run-time require in any terminal-kit file", async () => {
    expect(libFiles.length).toBeGreaterThan(30);
    for (const file of libFiles) {
      const out = rewriteTerminalKitSource(file, await Bun.file(join(LIB, file)).text(), LIB);
      expect({ file, left: leftoverDynamicRequires(out) }).toEqual({ file, left: [] });
    }
  });

  test("names every termconfig and colorScheme file statically", async () => {
    const out = rewriteTerminalKitSource("Terminal.js", await Bun.file(join(LIB, "Terminal.js")).text(), LIB);
    for (const f of readdirSync(join(LIB, "termconfig")).filter((f) => f.endsWith(".js"))) expect(out).toContain(`require("./termconfig/${f}")`);
    for (const f of readdirSync(join(LIB, "colorScheme"))) expect(out).toContain(`require("./colorScheme/${f}")`);
  });

  test("fails the build on a computed require it does not know", () => {
    expect(() => rewriteTerminalKitSource("x.js", "const m = require( './plugins/' + name ) ;", LIB)).toThrow(/x\.js still has run-time requires/);
  });
});

describe("terminalKitPlugin", () => {
  test("a bundle of terminal-kit loads its terminal configs and lazy parts with no node_modules around", async () => {
    const built = await Bun.build({ entrypoints: [join(LIB, "termkit.js")], target: "bun", format: "esm", plugins: [terminalKitPlugin] });
    expect(built.success).toBe(true);
    const bundle = join(scratch, "termkit.mjs");
    await Bun.write(bundle, await built.outputs[0]!.text());
    // "screen" has no config of its own: it exercises the fall-through to xterm.generic.js.
    const probe = `
      const tk = (await import(${JSON.stringify(bundle)})).default;
      const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
      const files = ["xterm-256color", "screen", "linux", "xterm-truecolor"].map((generic) => tk.createTerminal({ ...io, generic }).termconfigFile);
      const lazy = [tk.tty, tk.Rect, tk.Palette, tk.ScreenBuffer, tk.TextBuffer, tk.spChars, tk.terminal].map((m) => typeof m);
      tk.createTerminal({ ...io, generic: "xterm" }).setPalette("solarized");
      process.stderr.write(JSON.stringify({ files, lazy }));
    `;
    const run = Bun.spawnSync([process.execPath, "-e", probe], { cwd: scratch, stdout: "ignore", stderr: "pipe", env: { ...process.env, TERM: "xterm-256color" } });
    const stderr = run.stderr.toString();
    expect({ exitCode: run.exitCode, stderr }).toMatchObject({ exitCode: 0 });
    expect(JSON.parse(stderr)).toEqual({
      files: ["xterm-256color.generic.js", "xterm.generic.js", "linux.js", "xterm-truecolor.generic.js"],
      lazy: ["object", "function", "function", "function", "function", "object", "function"],
    });
  });
});
