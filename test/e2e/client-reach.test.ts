// The client says at once, and exits 1, when it cannot reach a server: a closed
// port, a TLS server dialled without --tls-ca, a wrong token. It used to be
// silent for its whole retry budget (10 s and more), then report every task as failed.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Cluster, DIST, freePort } from "./harness.ts";

let dir: string;
let tokensFile: string;
let tls: { cert: string; key: string; ca: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "client-reach-"));
  tokensFile = join(dir, "tokens");
  writeFileSync(tokensFile, "submit submit-secret-0123456789\nreplica replica-secret-0123456789\n");
  const made = Bun.spawnSync(["bash", resolve(import.meta.dir, "../../scripts/make-test-ca.sh"), join(dir, "ca")]);
  if (made.exitCode !== 0) throw new Error(`make-test-ca.sh failed: ${made.stderr.toString()}`);
  tls = { cert: join(dir, "ca", "server.pem"), key: join(dir, "ca", "server-key.pem"), ca: join(dir, "ca", "ca.pem") };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

async function client(args: string[]): Promise<{ code: number; err: string; ms: number }> {
  const started = performance.now();
  const proc = Bun.spawn([`${DIST}/client`, ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 20_000);
  const err = await new Response(proc.stderr).text();
  clearTimeout(timer);
  return { code: await proc.exited, err, ms: performance.now() - started };
}

test("a closed port: named with the reason within 3 s, exit 1; a command too", async () => {
  const port = freePort();
  for (const args of [["-p", String(port), "-n", "10"], ["stats", "-p", String(port)]]) {
    const r = await client(args);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`cannot reach a server: 127.0.0.1:${port}: connection refused`);
    expect(r.ms).toBeLessThan(3_000);
  }
});

test("a TLS server without --tls-ca, and a wrong token: each said as such, exit 1", async () => {
  cluster = new Cluster();
  const secured = await cluster.coordinator(["--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-ca", tls.ca]);
  const noCa = await client(["-p", String(secured.port), "-n", "10"]);
  expect(noCa.code).toBe(1);
  expect(noCa.err).toMatch(/cannot reach a server: .*(TLS|--tls-ca)/);
  expect(noCa.ms).toBeLessThan(5_000);

  const guarded = await cluster.coordinator(["--tokens", tokensFile]);
  const wrong = await client(["-p", String(guarded.port), "-n", "10", "--token", "not-the-token-0123456789"]);
  expect(wrong.code).toBe(1);
  expect(wrong.err).toMatch(/cannot reach a server: .*E_UNAUTHORIZED/);
});

/** Starts the client on a long sleep run through `routers`; resolves its stderr so far on demand. */
function longRun(routerPorts: number[]) {
  const proc = Bun.spawn([`${DIST}/client`, "-s", routerPorts.map((p) => `127.0.0.1:${p}`).join(","), "-n", "100000", "-c", "32", "-t", "sleep", "--duration-ms", "20"], { stdout: "pipe", stderr: "pipe" });
  const out = { stdout: "", stderr: "" };
  void (async () => {
    for await (const chunk of proc.stderr) out.stderr += new TextDecoder().decode(chunk);
  })();
  const stdout = new Response(proc.stdout).text();
  return { proc, out, stdout };
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

test("a router lost mid-run is said when it happens; Ctrl-C prints the report so far and exits 130", async () => {
  cluster = new Cluster();
  const shard = await cluster.coordinator();
  cluster.worker([shard.port], ["-w", "2", "--thread-concurrency", "32"]);
  await cluster.workersJoined(shard.port, 1);
  const [a, b] = [await cluster.router([shard.port]), await cluster.router([shard.port])];
  const run = longRun([a.port, b.port]);
  await Bun.sleep(1_500);
  a.proc.kill("SIGKILL");
  await until("the loss to be said", () => run.out.stderr.includes(`client: lost 127.0.0.1:${a.port}`), 3_000);
  expect(run.out.stderr).toContain("retried on the other servers");

  run.proc.kill("SIGINT");
  const code = await run.proc.exited;
  const report = await run.stdout;
  expect(code).toBe(130);
  expect(report).toContain("interrupted   by Ctrl-C");
  expect(report).toMatch(/completed\s+[1-9]\d*/);
  void b;
}, 60_000);

test("every run reports the client's own CPU per task", async () => {
  cluster = new Cluster();
  const shard = await cluster.coordinator();
  cluster.worker([shard.port], ["-w", "1"]);
  await cluster.workersJoined(shard.port, 1);
  const proc = Bun.spawn([`${DIST}/client`, "-p", String(shard.port), "-n", "500", "--json"], { stdout: "pipe", stderr: "pipe" });
  const report = JSON.parse(await new Response(proc.stdout).text()) as { completed: number; clientCpuUsPerTask?: number };
  expect(await proc.exited).toBe(0);
  expect(report.completed).toBe(500);
  expect(report.clientCpuUsPerTask).toBeGreaterThan(0);
});
