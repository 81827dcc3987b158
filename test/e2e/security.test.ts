// Token auth with roles and TLS on every link, from the compiled binaries:
// who may connect as what, what each role may do, bearer tokens on HTTP, and a
// whole replicated cluster (peers, router, worker, client) over TLS.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

let dir: string;
let tokensFile: string;
/** A second cluster's secret: a coordinator holding it is not one of ours. */
let strangerTokensFile: string;
let ca: { ca: string; cert: string; key: string; otherCa: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "security-e2e-"));
  tokensFile = join(dir, "tokens");
  writeTokensFile(tokensFile);
  strangerTokensFile = join(dir, "stranger-tokens");
  writeFileSync(strangerTokensFile, "replica stranger-secret-0123456789\n");
  const script = resolve(import.meta.dir, "../../scripts/make-test-ca.sh");
  for (const name of ["ours", "theirs"]) {
    const made = Bun.spawnSync(["bash", script, join(dir, name)]);
    if (made.exitCode !== 0) throw new Error(`make-test-ca.sh failed: ${made.stderr.toString()}`);
  }
  ca = {
    ca: join(dir, "ours", "ca.pem"), cert: join(dir, "ours", "server.pem"), key: join(dir, "ours", "server-key.pem"),
    otherCa: join(dir, "theirs", "ca.pem"),
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return err instanceof TaskError ? err.code : (err as Error).message;
  }
  return "accepted";
}

async function connected<T>(port: number, options: Parameters<typeof SchedulerClient.connect>[1], use: (c: SchedulerClient) => Promise<T>): Promise<T> {
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port }, options);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

describe("tokens and roles", () => {
  test("each role does what it may, nothing more; strangers and wrong tokens are refused", async () => {
    cluster = new Cluster();
    const metricsPort = freePort();
    const [a, b] = await cluster.replicas(2, ["--tokens", tokensFile]);
    const coordinator = await cluster.coordinator(["--tokens", tokensFile, "--metrics-port", String(metricsPort), "--shard", "1"]);
    const httpPort = freePort();
    const router = await cluster.router([a!.port, b!.port, coordinator.port], ["--tokens", tokensFile, "--http-port", String(httpPort)]);
    cluster.worker([a!.port, b!.port, coordinator.port], ["--token", TOKENS.worker]);
    const tokenless = cluster.worker([a!.port], []);
    const wrongRole = cluster.worker([a!.port], ["--token", TOKENS.admin]);
    const admin = { token: TOKENS.admin };

    // The good worker joins every coordinator; the other two are refused, and say why.
    await waitFor("the worker on every shard", () => connected(router.port, admin, async (c) => {
      const stats = await c.clusterStats();
      const primaries = stats.coordinators.filter((x) => x.stats?.primary);
      return primaries.length === 2 && primaries.every((x) => x.stats!.workers.length === 1) ? true : undefined;
    }));
    await waitFor("refusals in the workers' logs", () => /E_UNAUTHORIZED/.test(tokenless.output()) && /E_UNAUTHORIZED/.test(wrongRole.output()) ? true : undefined);
    expect(tokenless.output()).not.toContain(TOKENS.admin);
    expect(wrongRole.output()).not.toContain(TOKENS.admin);

    // A coordinator without the cluster secret cannot join the replica pair.
    const stranger = await cluster.replica(freePort(), [a!.port, b!.port], ["--tokens", strangerTokensFile]);
    await waitFor("the stranger refused", () => /E_UNAUTHORIZED/.test(stranger.output()) ? true : undefined);
    expect(stranger.output()).not.toContain("stranger-secret");
    await Bun.sleep(300);
    const replication = await Promise.all([a!, b!].map((x) => connected(x.port, admin, async (c) => (await c.clusterStats()).coordinators[0]!.stats!.replication)));
    const primary = replication.find((r) => r.role === "primary")!;
    expect(primary.backupsInSync).toBe(1);

    // Clients: no token, a wrong one, or a worker's token cannot even connect.
    expect(await refusal(SchedulerClient.connect({ host: "127.0.0.1", port: router.port }))).toBe("E_UNAUTHORIZED");
    expect(await refusal(SchedulerClient.connect({ host: "127.0.0.1", port: router.port }, { token: "not-a-token-0123456789" }))).toBe("E_UNAUTHORIZED");
    expect(await refusal(SchedulerClient.connect({ host: "127.0.0.1", port: a!.port }, { token: TOKENS.worker }))).toBe("E_UNAUTHORIZED");

    // read: stats and queries, but a submit closes the connection with E_UNAUTHORIZED.
    await connected(router.port, { token: TOKENS.read }, async (c) => {
      expect((await c.clusterStats()).coordinators.length).toBe(3);
      expect(await refusal(c.submit("noop", undefined))).toBe("E_UNAUTHORIZED");
    });
    // submit: runs tasks, cannot requeue dead letters; admin can (the task is unknown, not forbidden).
    const id = await connected(router.port, { token: TOKENS.submit }, async (c) => {
      const outcome = await c.run("noop", undefined);
      expect(outcome.ok).toBe(true);
      expect(await refusal(c.requeue(outcome.taskId))).toBe("E_UNAUTHORIZED");
      return outcome.taskId;
    });
    await connected(router.port, admin, async (c) => expect(await refusal(c.requeue(id))).toBe("E_UNKNOWN_TASK"));

    // The client binary with a submit token runs a workload; with a read token it fails clearly.
    const run = await cluster.client(["-p", String(router.port), "--token", TOKENS.submit, "-n", "2000", "-c", "32", "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!).completed).toBe(2000);
    const denied = await cluster.client(["-p", String(router.port), "--token", TOKENS.read, "-n", "10", "--submit-attempts", "1", "--json"]);
    expect(denied.code).toBe(1);
    expect(denied.stdout + denied.stderr).toContain("E_UNAUTHORIZED");

    // HTTP: probes open, everything else needs a bearer token with the right role.
    const http = (path: string, init: RequestInit & { token?: string } = {}) =>
      fetch(`http://127.0.0.1:${httpPort}${path}`, { ...init, headers: init.token ? { authorization: `Bearer ${init.token}` } : {} });
    expect((await http("/healthz")).status).toBe(200);
    expect((await http("/v1/cluster")).status).toBe(401);
    expect((await http("/v1/cluster")).headers.get("www-authenticate")).toBe("Bearer");
    expect((await http("/v1/cluster", { token: "not-a-token-0123456789" })).status).toBe(401);
    expect((await http("/v1/cluster", { token: TOKENS.read })).status).toBe(200);
    expect((await http("/metrics", { token: TOKENS.read })).status).toBe(200);
    expect((await http("/v1/tasks", { method: "POST", body: '{"type":"noop"}', token: TOKENS.read })).status).toBe(403);
    expect((await http("/v1/tasks", { method: "POST", body: '{"type":"noop"}', token: TOKENS.submit })).status).toBe(201);
    expect((await http(`/v1/dlq/${id}/requeue`, { method: "POST", token: TOKENS.submit })).status).toBe(403);
    expect((await http(`/v1/dlq/${id}/requeue`, { method: "POST", token: TOKENS.admin })).status).toBe(404);
    // A coordinator's metrics port: read token needed.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { authorization: `Bearer ${TOKENS.read}` } })).status).toBe(200);

    // Tokens never reach a log.
    for (const p of [a!, b!, coordinator, router]) {
      for (const token of Object.values(TOKENS)) expect(p.output()).not.toContain(token);
    }
  }, 60_000);

  test("a bad tokens file stops start-up with a message naming it", async () => {
    cluster = new Cluster();
    const shortToken = join(dir, "short-tokens");
    writeFileSync(shortToken, "replica short\n");
    const noReplica = join(dir, "no-replica-tokens");
    writeFileSync(noReplica, `read ${TOKENS.read}\n`);
    for (const [file, message] of [[shortToken, /line 1: a token needs at least 16 characters/], [noReplica, /needs a replica token/], ["/nonexistent", /cannot read tokens file \/nonexistent/]] as const) {
      const proc = Bun.spawnSync([resolve(import.meta.dir, "../../dist/coordinator"), "-p", "0", "--tokens", file]);
      expect(proc.exitCode).toBe(2);
      expect(proc.stderr.toString()).toMatch(message);
    }
  });

  test("no tokens on a non-loopback address: a loud warning at start-up", async () => {
    cluster = new Cluster();
    const open = await cluster.server("coordinator", ["--host", "0.0.0.0"]);
    await waitFor("the warning", () => /NO AUTHENTICATION/.test(open.output()) ? true : undefined);
    const loopback = await cluster.coordinator([]);
    await Bun.sleep(100);
    expect(loopback.output()).not.toContain("NO AUTHENTICATION");
  });
});

describe("TLS", () => {
  test("a replicated cluster runs over TLS end to end; plain and wrongly trusting clients are refused", async () => {
    cluster = new Cluster();
    const tls = ["--tls-cert", ca.cert, "--tls-key", ca.key, "--tls-ca", ca.ca];
    const [a, b] = await cluster.replicas(2, ["--tokens", tokensFile, ...tls]);
    const httpPort = freePort();
    const router = await cluster.router([a!.port, b!.port], ["--tokens", tokensFile, ...tls, "--http-port", String(httpPort)]);
    cluster.worker([a!.port, b!.port], ["--token", TOKENS.worker, "--tls-ca", ca.ca]);
    const trusting = { token: TOKENS.submit, tls: { ca: readFileSync(ca.ca, "utf8") } };

    await waitFor("worker and backup over TLS", () => connected(router.port, trusting, async (c) => {
      const stats = await c.clusterStats();
      const primary = stats.coordinators.find((x) => x.stats?.primary)?.stats;
      return primary !== undefined && primary.workers.length === 1 && stats.coordinators.every((x) => x.reachable) ? true : undefined;
    }));
    const outcomes = await connected(router.port, trusting, (c) => Promise.all(Array.from({ length: 2000 }, () => c.run("noop", undefined))));
    expect(outcomes.filter((o) => o.ok).length).toBe(2000);

    // The client binary and top over TLS.
    const run = await cluster.client(["-p", String(router.port), "--token", TOKENS.submit, "--tls-ca", ca.ca, "-n", "2000", "-c", "32", "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!).completed).toBe(2000);
    const top = Bun.spawnSync([resolve(import.meta.dir, "../../dist/top"), "-p", String(router.port), "--once", "--interval-ms", "0", "--token", TOKENS.read, "--tls-ca", ca.ca]);
    expect(top.exitCode).toBe(0);
    expect(top.stdout.toString()).toContain("coordinators 2/2 reachable");

    // Plain TCP to a TLS port gets nowhere; a CA that did not sign the server's certificate fails the handshake.
    expect(await refusal(SchedulerClient.connect({ host: "127.0.0.1", port: router.port }, { token: TOKENS.submit }))).not.toBe("accepted");
    const wrongCa = await refusal(SchedulerClient.connect({ host: "127.0.0.1", port: router.port }, { token: TOKENS.submit, tls: { ca: readFileSync(ca.otherCa, "utf8") } }));
    expect(wrongCa).toMatch(/TLS/);

    // HTTPS with the CA.
    const res = await fetch(`https://127.0.0.1:${httpPort}/v1/cluster`, { headers: { authorization: `Bearer ${TOKENS.read}` }, tls: { ca: readFileSync(ca.ca, "utf8") } });
    expect(res.status).toBe(200);
  }, 60_000);

  test("TLS flags must come together on servers; a missing file names its flag", async () => {
    cluster = new Cluster();
    const half = Bun.spawnSync([resolve(import.meta.dir, "../../dist/router"), "-p", "0", "--tls-cert", ca.cert]);
    expect(half.exitCode).toBe(2);
    expect(half.stderr.toString()).toContain("--tls-cert, --tls-key and --tls-ca together");
    const missing = Bun.spawnSync([resolve(import.meta.dir, "../../dist/worker"), "--tls-ca", "/nonexistent.pem"]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.toString()).toContain("--tls-ca /nonexistent.pem");
  });
});

describe("limits", () => {
  test("--payload-bytes-max refuses larger payloads, in submissions and workflows, through a router too", async () => {
    cluster = new Cluster();
    const coordinator = await cluster.coordinator(["--payload-bytes-max", "1000"]);
    const router = await cluster.router([coordinator.port]);
    cluster.worker([coordinator.port]);
    await cluster.workersJoined(router.port, 1);
    await connected(router.port, {}, async (c) => {
      const small = new Uint8Array(900);
      const big = new Uint8Array(1001);
      expect((await c.run("noop", small)).ok).toBe(true);
      expect(await refusal(c.submit("noop", big))).toBe("E_TOO_LARGE");
      expect(await refusal(c.workflow([{ type: "noop", payload: small }, { type: "noop", payload: big }]))).toBe("E_TOO_LARGE");
      // The connection is still good after a refusal.
      expect((await c.run("noop", small)).ok).toBe(true);
    });
  });
});
