// The SDK as a package, as a user gets it: packed with `bun pm pack` (only what
// package.json "files" lists), installed by name into the example project in
// examples/sdk-app without network (its bun.lock and Bun's cache suffice), typechecked
// with that project's plain tsconfig, and run against a local cluster: its handlers
// in its own process (createWorker), then in the worker binary.

import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Cluster } from "./harness.ts";

const ROOT = resolve(import.meta.dir, "../..");
/** Pack, install and typecheck each take seconds; this bounds a hung one. */
const STEP_TIMEOUT_MS = 90_000;

const tmp = mkdtempSync(join(tmpdir(), "sdk-package-"));
const cluster = new Cluster();
afterAll(async () => {
  await cluster.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

function run(cmd: string[], cwd: string): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", timeout: STEP_TIMEOUT_MS });
  return { code: p.exitCode ?? -1, out: `${p.stdout.toString()}${p.stderr.toString()}` };
}

/** Runs without a network when we can make one (a fresh network namespace needs root): the install must not need it. */
function offline(cmd: string[]): string[] {
  const canUnshare = process.getuid?.() === 0 && Bun.which("unshare") !== null && run(["unshare", "-n", "true"], tmp).code === 0;
  return canUnshare ? ["unshare", "-n", ...cmd] : cmd;
}

/**
 * Bun caches a local tarball under the integrity its lockfile records, so a lock
 * written for an earlier build installs that earlier build. Recording the new
 * tarball's integrity makes it install this one, still without a network.
 */
function pinTarball(lockPath: string, tarball: string): void {
  const integrity = `sha512-${new Bun.CryptoHasher("sha512").update(readFileSync(tarball)).digest("base64")}`;
  const lock = readFileSync(lockPath, "utf8");
  const pinned = lock.replace(/("bun-task-scheduler": \[[^\n]*?)"sha512-[A-Za-z0-9+/=]+"/, `$1"${integrity}"`);
  if (!pinned.includes(integrity)) throw new Error(`${lockPath} has no integrity for bun-task-scheduler to replace`);
  writeFileSync(lockPath, pinned);
}

test("the example project installs the packed SDK by name offline, typechecks and runs", async () => {
  // The same layout as the repository, so the example's "file:../../dist/..." dependency holds.
  const app = join(tmp, "examples/sdk-app");
  const tarball = join(tmp, "dist/bun-task-scheduler.tgz");
  mkdirSync(join(tmp, "dist"));
  const packed = run(["bun", "pm", "pack", "--filename", tarball], ROOT);
  expect(packed.code, packed.out).toBe(0);
  // Only what a user needs: the built SDK, its types and its doc; no sources, tests, binaries.
  const listed = packed.out.split("\n").filter((l) => l.startsWith("packed ")).map((l) => l.split(" ").at(-1)!);
  expect(listed.filter((f) => !/^(lib\/|docs\/sdk\.md$|package\.json$|README\.md$)/.test(f))).toEqual([]);
  expect(listed).toContain("lib/index.js");
  expect(listed).toContain("lib/executor-thread.js"); // createWorker with module paths loads it by URL
  expect(listed).toContain("lib/types/sdk/index.d.ts");

  for (const f of ["package.json", "bun.lock", "tsconfig.json", "src"]) cpSync(join(ROOT, "examples/sdk-app", f), join(app, f), { recursive: true });
  pinTarball(join(app, "bun.lock"), tarball);
  const installed = run(offline(["bun", "install"]), app);
  expect(installed.code, installed.out).toBe(0);
  // What was installed is what we just packed, not an earlier tarball from Bun's cache.
  expect(readFileSync(join(app, "node_modules/bun-task-scheduler/lib/index.js"), "utf8")).toBe(readFileSync(join(ROOT, "lib/index.js"), "utf8"));
  const typechecked = run([join(app, "node_modules/.bin/tsc"), "--noEmit", "-p", "."], app);
  expect(typechecked.code, typechecked.out).toBe(0);

  const coordinator = await cluster.coordinator();
  const router = await cluster.router([coordinator.port]);
  // The handlers in the app's own process first (createWorker), alone, so every task runs there.
  const inProcess = Bun.spawn(["bun", "src/in-process-worker.ts", `127.0.0.1:${coordinator.port}`, `127.0.0.1:${router.port}`], { cwd: app, stdout: "pipe", stderr: "pipe" });
  const inProcessTimer = setTimeout(() => inProcess.kill("SIGKILL"), STEP_TIMEOUT_MS);
  const [inProcessOut, inProcessErr, inProcessCode] = await Promise.all([new Response(inProcess.stdout).text(), new Response(inProcess.stderr).text(), inProcess.exited]);
  clearTimeout(inProcessTimer);
  expect(inProcessCode, inProcessErr).toBe(0);
  expect(inProcessOut).toContain("in-process add x100: total 9900, 100 run here");
  expect(inProcessOut).toContain("on threads add x10: total 55, 10 run here");

  cluster.worker([coordinator.port], ["-w", "1", "--handlers", join(app, "src/handlers.ts")]);
  await cluster.workersJoined(router.port, 1);
  const main = Bun.spawn(["bun", "src/main.ts", `127.0.0.1:${router.port}`], { cwd: app, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => main.kill("SIGKILL"), STEP_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(main.stdout).text(), new Response(main.stderr).text(), main.exited]);
  clearTimeout(timer);
  expect(code, stderr).toBe(0);
  expect(stdout).toContain("add: 5");
  expect(stdout).toMatch(/submitted task \d+: 42/);
  expect(stdout).toContain("explode: E_HANDLER after 2 attempts: Error: on purpose | Error: on purpose");
  expect(stdout).toMatch(/events: 2 completed, 1 failed, then dead with E_HANDLER \(task \d+\)/);
});
