// The README's "Running a cluster by hand" blocks, run in order as a user pastes
// them: the install-and-build block in the repository, every other block in a
// fresh directory beside it (dist/ and scripts/ linked in), with each port the
// README names moved to a free one and the etcd address to an etcd this test
// starts. A block fails the test if any command in it fails.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { etcdAvailable, startEtcd, type EtcdServer } from "../support/etcd-server.ts";
import { freePort } from "./harness.ts";

const REPO = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "readme-by-hand-"));
for (const dir of ["dist", "scripts"]) symlinkSync(join(REPO, dir), join(work, dir));
let etcd: EtcdServer | undefined;
afterAll(async () => {
  await etcd?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The ```sh blocks of the README's by-hand section, in order. */
function byHandBlocks(): string[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const start = readme.indexOf("## Running a cluster by hand");
  const end = readme.indexOf("Every binary prints all its flags");
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Every 4-digit port the blocks name (5xxx, 6xxx), each to a free port of its own. */
const ports = new Map<string, string>();
function onFreePorts(block: string): string {
  return block.replace(/\b[56]\d{3}\b/g, (port) => {
    if (!ports.has(port)) ports.set(port, String(freePort()));
    return ports.get(port)!;
  });
}

async function run(block: string, cwd: string): Promise<void> {
  const proc = Bun.spawn(["bash", "-eo", "pipefail", "-c", block], { cwd, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  const code = await proc.exited;
  if (code !== 0) throw new Error(`README block exited ${code}:\n${block}\n--- stdout\n${out}\n--- stderr\n${err}`);
}

test("every by-hand block of the README runs as written", async () => {
  const blocks = byHandBlocks();
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  const [install, ...rest] = blocks;
  expect(install).toContain("bun install --frozen-lockfile");
  await run(install!, REPO);
  for (const block of rest) {
    // The one-command demo runs its own etcd and cluster for a minute: scripts/etcd-cluster.sh, not this test.
    if (block.includes("scripts/etcd-cluster.sh")) continue;
    let text = onFreePorts(block);
    if (text.includes("127.0.0.1:2379")) {
      if (!etcdAvailable()) {
        console.warn("SKIP the README's etcd block: no etcd binary (Debian: apt-get install etcd-server)");
        continue;
      }
      etcd ??= await startEtcd();
      text = text.replaceAll("127.0.0.1:2379", etcd.endpoint.replace(/^https?:\/\//, ""));
    }
    await run(text, work);
  }
}, 300_000);
