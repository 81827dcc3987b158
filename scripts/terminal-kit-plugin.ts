// A Bun.build plugin that makes terminal-kit work inside a `bun build --compile`
// binary. terminal-kit loads parts of itself with requires the bundler cannot
// follow (computed paths, and `lazyness` helpers that call `require(moduleId)`
// at run time), so those files never reach the binary and fail with
// "Cannot find module './termconfig/xterm.generic.js'". Adding them as
// entrypoints does not help: the runtime require still resolves against the
// virtual filesystem under a different name. We rewrite each such require into
// a static `require("./literal.js")` (kept lazy inside a function) so the
// bundler sees and embeds every file, and we fail the build if a computed
// require we do not understand remains, so a terminal-kit upgrade cannot
// silently bring the run-time failure back.

import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** terminal-kit's own sources; the dependencies it uses only require string literals. */
const LIB_FILTER = /[\\/]node_modules[\\/]terminal-kit[\\/]lib[\\/].*\.js$/;

/** A helper appended to a rewritten file: function declarations hoist, and "use strict" stays first. */
function lookupHelper(name: string, folder: string, files: readonly string[], suffix: string): string {
  const entries = files.map((f) => `${JSON.stringify(f.slice(0, f.length - suffix.length))}: () => require(${JSON.stringify(`./${folder}/${f}`)})`);
  // Throws like a missing module would: Terminal.js tries the app's config, then
  // the generic one, then xterm.generic.js, and relies on the throw to fall through.
  return `
function ${name}(key) {
  const table = { ${entries.join(", ")} };
  if (!Object.prototype.hasOwnProperty.call(table, key)) throw new Error("Cannot find module './${folder}/" + key + "${suffix}'");
  return table[key]();
}
`;
}

function listFiles(dir: string, suffix: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(suffix)).sort();
}

/** `lazy.requireProperty( obj , 'name' , './x.js' )` -> a lazy property whose getter requires a literal. */
function rewriteLazyRequires(source: string): string {
  let out = source.replace(
    /lazy\.requireProperty\(\s*([\w.]+)\s*,\s*(['"][^'"]+['"])\s*,\s*(['"][^'"]+['"])\s*\)/g,
    (_m, obj: string, prop: string, id: string) => `lazy.property( ${obj} , ${prop} , () => require( ${id} ) )`,
  );
  out = out.replace(/lazy\.requireProperties\(\s*([\w.]+)\s*,\s*\{([\s\S]*?)\}\s*\)/g, (_m, obj: string, body: string) => {
    const props = body.replace(/(\w+)\s*:\s*(['"][^'"]+['"])/g, (_p, key: string, id: string) => `${key}: () => require( ${id} )`);
    return `lazy.properties( ${obj} , {${props}} )`;
  });
  return out;
}

/**
 * Rewrites one terminal-kit file. Exported for the plugin's own test; `libDir`
 * is terminal-kit's lib folder (termconfig/ and colorScheme/ are listed from it).
 */
export function rewriteTerminalKitSource(file: string, source: string, libDir: string): string {
  let out = rewriteLazyRequires(source);
  // termkit.js switches to the eager variant when that file sits in require.cache;
  // the lookup means nothing inside a compiled binary, and we made the lazy one safe.
  out = out.replace(/require\.cache\[\s*path\.join\(\s*__dirname\s*,\s*'termkit-no-lazy-require\.js'\s*\)\s*\]/g, "false");
  const helpers: string[] = [];
  if (/require\(\s*'\.\/termconfig\/'\s*\+/.test(out)) {
    out = out.replace(/require\(\s*'\.\/termconfig\/'\s*\+\s*([\w.]+)\s*\)/g, (_m, expr: string) => `__termkitTermconfig( ${expr} )`);
    helpers.push(lookupHelper("__termkitTermconfig", "termconfig", listFiles(join(libDir, "termconfig"), ".js"), ""));
  }
  if (/require\(\s*'\.\/colorScheme\/'\s*\+/.test(out)) {
    out = out.replace(/require\(\s*'\.\/colorScheme\/'\s*\+\s*([\w.]+)\s*\+\s*'\.json'\s*\)/g, (_m, expr: string) => `__termkitColorScheme( ${expr} )`);
    helpers.push(lookupHelper("__termkitColorScheme", "colorScheme", listFiles(join(libDir, "colorScheme"), ".json"), ".json"));
  }
  const left = leftoverDynamicRequires(out);
  if (left.length > 0) {
    throw new Error(`terminal-kit-plugin: ${basename(file)} still has run-time requires the bundler cannot follow: ${left.join("; ")}`);
  }
  return helpers.length > 0 ? out + "\n" + helpers.join("\n") : out;
}

/** Every `require(` whose argument is not one string literal, plus any lazyness require helper left. */
export function leftoverDynamicRequires(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?<![\w.$])require\s*\(([^)]*)\)/g)) {
    if (!/^\s*(['"])[^'"]*\1\s*$/.test(m[1]!)) found.push(m[0].replace(/\s+/g, " "));
  }
  for (const m of source.matchAll(/lazy\.require(Property|Properties)?\b[^\n]*/g)) found.push(m[0].trim());
  return found;
}

export const terminalKitPlugin: Bun.BunPlugin = {
  name: "terminal-kit-static-requires",
  setup(build) {
    build.onLoad({ filter: LIB_FILTER }, async (args) => {
      const source = await Bun.file(args.path).text();
      const libDir = libDirOf(args.path);
      return { contents: rewriteTerminalKitSource(args.path, source, libDir), loader: "js" };
    });
  },
};

/** node_modules/terminal-kit/lib, whichever subfolder (document/, vte/, ...) the file is in. */
function libDirOf(file: string): string {
  let dir = dirname(file);
  while (basename(dir) !== "lib" || basename(dirname(dir)) !== "terminal-kit") {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`terminal-kit-plugin: ${file} is not under terminal-kit/lib`);
    dir = parent;
  }
  return dir;
}
