// JWTs in place of static tokens on every port, from the compiled binaries:
// the binary protocol (router and coordinator), REST, gRPC and /metrics of a
// coordinator and a worker. Good tokens work; expired, wrongly signed, wrong-audience and
// role-less ones are refused, each saying why; a JWKS rotated through SIGHUP
// takes the new key without dropping connections made with the old one.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { GrpcTestClient } from "../support/grpc-client.ts";
import { hsToken, JWT_SECRET, keyToken, signingKey, writeJwks, type Claims } from "../support/jwt-fixtures.ts";
import { binary, Cluster, freePort, waitFor, type Started } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

const AUDIENCE = "task-scheduler";
const oldKey = signingKey("key-2026-11", "RS256");
const newKey = signingKey("key-2026-12", "ES256");
const submitter: Claims = { roles: ["submit"], aud: AUDIENCE };

let dir = "";
let jwks = "";
let cluster: Cluster;
let router: Started;
let coordinator: Started;
let httpBase = "";
let metricsBase = "";
let workerMetricsBase = "";
let grpc: GrpcTestClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jwt-e2e-"));
  const tokensFile = join(dir, "tokens");
  writeTokensFile(tokensFile); // the replica (cluster) and worker tokens stay static
  jwks = join(dir, "jwks.json");
  writeJwks(jwks, [oldKey]);
  const secretFile = join(dir, "jwt-secret");
  writeFileSync(secretFile, `${JWT_SECRET}\n`);
  const jwtArgs = ["--tokens", tokensFile, "--jwt-jwks", jwks, "--jwt-audience", AUDIENCE];
  cluster = new Cluster({ serverArgs: [], workerArgs: [], clientArgs: [], sdk: { token: TOKENS.read } });
  const metricsPort = freePort();
  coordinator = await cluster.coordinator([...jwtArgs, "--jwt-secret-file", secretFile, "--metrics-port", String(metricsPort)]);
  const workerMetricsPort = freePort();
  // The worker's /metrics takes JWTs without a tokens file of its own.
  cluster.worker([coordinator.port], ["-w", "2", "--token", TOKENS.worker, "--metrics-port", String(workerMetricsPort), "--jwt-secret-file", secretFile, "--jwt-audience", AUDIENCE]);
  const httpPort = freePort();
  const grpcPort = freePort();
  // The router takes its secret from the environment, as docs/security.md advises.
  process.env.TASK_SCHEDULER_JWT_SECRET = JWT_SECRET;
  try {
    router = await cluster.router([coordinator.port], [...jwtArgs, "--http-port", String(httpPort), "--grpc-port", String(grpcPort)]);
  } finally {
    delete process.env.TASK_SCHEDULER_JWT_SECRET;
  }
  await waitFor("the gRPC port", () => (/router grpc on/.test(router.output()) ? true : undefined));
  await cluster.workersJoined(router.port, 1);
  httpBase = `http://127.0.0.1:${httpPort}`;
  metricsBase = `http://127.0.0.1:${metricsPort}`;
  workerMetricsBase = `http://127.0.0.1:${workerMetricsPort}`;
  grpc = new GrpcTestClient(`127.0.0.1:${grpcPort}`);
});

afterAll(async () => {
  grpc?.close();
  await cluster?.stopAll();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

/** What a binary-protocol client presenting `token` to `port` gets for a submission: a task id, or the refusal. */
async function binarySubmit(port: number, token: string): Promise<string> {
  let client: SchedulerClient | undefined;
  try {
    client = await SchedulerClient.connect({ host: "127.0.0.1", port }, { token });
    return typeof (await client.submit("noop", null)) === "number" ? "accepted" : "no id";
  } catch (err) {
    return err instanceof TaskError ? `${err.code}: ${err.message}` : (err as Error).message;
  } finally {
    client?.close();
  }
}

async function restSubmit(token: string): Promise<{ status: number; message?: string }> {
  const r = await fetch(`${httpBase}/v1/tasks`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ type: "noop" }) });
  const body = (await r.json()) as { error?: { message: string } };
  return { status: r.status, message: body.error?.message };
}

async function metricsRead(token: string, base = metricsBase): Promise<number> {
  return (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status;
}

describe("JWTs on every port", () => {
  test("HS256 (secret from a file and from the environment) and RS256 (JWKS) tokens work on binary, REST, gRPC and /metrics", async () => {
    for (const token of [hsToken(submitter), keyToken(oldKey, submitter)]) {
      expect(await binarySubmit(router.port, token)).toBe("accepted");
      expect(await binarySubmit(coordinator.port, token)).toBe("accepted");
      expect((await restSubmit(token)).status).toBe(201);
      const submitted = await grpc.call("Submit", { type: "noop" }, token);
      expect(submitted.reply?.taskId).toBeNumber();
      expect(await metricsRead(token)).toBe(200);
    }
    expect(await metricsRead(hsToken({ roles: "read", aud: AUDIENCE }), workerMetricsBase)).toBe(200);
  });

  test("the client and top binaries present a JWT as they would a static token", async () => {
    const submitted = await cluster.client(["-p", String(router.port), "--token", hsToken(submitter), "submit", "wordcount", "--payload", '"a b c"', "--wait"]);
    expect(submitted.code).toBe(0);
    expect(JSON.parse(submitted.stdout)).toMatchObject({ ok: true, result: 3 });
    const refusedRun = await cluster.client(["-p", String(router.port), "--token", hsToken({ ...submitter, expiresInS: -3600 }), "stats"]);
    expect(refusedRun.code).toBe(1);
    expect(refusedRun.stderr + refusedRun.stdout).toContain("jwt expired");
    const top = Bun.spawnSync([binary("top"), "-p", String(router.port), "--token", keyToken(oldKey, { roles: "read", aud: AUDIENCE }), "--once", "--interval-ms", "0"], { timeout: 30_000 });
    expect(top.exitCode).toBe(0);
  });

  const refused: Array<[string, () => string, RegExp]> = [
    ["expired", () => hsToken({ ...submitter, expiresInS: -3600 }), /jwt expired/],
    ["wrongly signed", () => keyToken(signingKey(oldKey.kid, "RS256"), submitter), /invalid signature/],
    ["for another audience", () => hsToken({ ...submitter, aud: "someone-else" }), /audience invalid/],
    ["not yet valid", () => hsToken({ ...submitter, notBeforeS: 3600 }), /jwt not active/],
  ];
  for (const [what, make, why] of refused) {
    test(`a token ${what} is refused on every port, saying why`, async () => {
      const token = make();
      expect(await binarySubmit(router.port, token)).toMatch(new RegExp(`^E_UNAUTHORIZED: .*${why.source}`));
      expect(await binarySubmit(coordinator.port, token)).toMatch(new RegExp(`^E_UNAUTHORIZED: .*${why.source}`));
      const rest = await restSubmit(token);
      expect(rest.status).toBe(401);
      expect(rest.message).toMatch(why);
      const viaGrpc = await grpc.call("Submit", { type: "noop" }, token);
      expect(viaGrpc.failure).toMatchObject({ status: status.UNAUTHENTICATED, code: "E_UNAUTHORIZED" });
      expect(viaGrpc.failure?.details).toMatch(why);
      expect(await metricsRead(token)).toBe(401);
      expect(await metricsRead(token, workerMetricsBase)).toBe(401);
    });
  }

  test("a valid token without the role needed is refused: 403 on HTTP, PERMISSION_DENIED on gRPC", async () => {
    const readOnly = hsToken({ roles: "read", aud: AUDIENCE });
    const noRoles = hsToken({ aud: AUDIENCE });
    expect(await binarySubmit(router.port, readOnly)).toMatch(/^E_UNAUTHORIZED: .*SUBMIT needs the submit role/);
    expect(await binarySubmit(router.port, noRoles)).toMatch(/^E_UNAUTHORIZED: .*needs the read role/);
    expect(await binarySubmit(coordinator.port, noRoles)).toMatch(/^E_UNAUTHORIZED: .*needs the read role/);
    expect((await restSubmit(readOnly)).status).toBe(403);
    expect((await restSubmit(noRoles)).status).toBe(403);
    expect((await grpc.call("Submit", { type: "noop" }, readOnly)).failure).toMatchObject({ status: status.PERMISSION_DENIED, code: "E_UNAUTHORIZED" });
    expect((await grpc.call("GetTask", { taskId: 1 }, noRoles)).failure).toMatchObject({ status: status.PERMISSION_DENIED });
    expect(await metricsRead(noRoles)).toBe(403);
    expect(await metricsRead(readOnly)).toBe(200);
    expect(await metricsRead(noRoles, workerMetricsBase)).toBe(403);
  });
});

describe("key rotation", () => {
  test("SIGHUP takes a rotated JWKS: new key in, old key out, connections made with the old key keep working", async () => {
    const oldToken = keyToken(oldKey, submitter);
    const newToken = keyToken(newKey, submitter);
    expect(await binarySubmit(router.port, newToken)).toMatch(/no key here verifies/);
    // Made before the rotation: a binary connection and a gRPC Watch stream waiting on a running task
    // (and on one that has ended, whose event at once shows the stream was let in).
    const held = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port }, { token: oldToken });
    const ended = (await held.run("noop", null)).taskId;
    const sleeper = await held.submit("sleep", { ms: 1500 });
    let firstEvent: (event: unknown) => void = () => {};
    const streaming = new Promise((resolve) => (firstEvent = resolve));
    const watched = grpc.watch([ended, sleeper], keyToken(oldKey, { roles: "read", aud: AUDIENCE }), (event) => firstEvent(event));
    expect(await streaming).toMatchObject({ taskId: ended, state: "completed" });

    writeJwks(jwks, [newKey]);
    router.proc.kill("SIGHUP");
    coordinator.proc.kill("SIGHUP");
    await waitFor("the router to take the new key", async () => ((await binarySubmit(router.port, newToken)) === "accepted" ? true : undefined));
    await waitFor("the coordinator to take the new key", async () => ((await binarySubmit(coordinator.port, newToken)) === "accepted" ? true : undefined));
    expect(await binarySubmit(router.port, oldToken)).toMatch(/no key here verifies/);
    expect((await restSubmit(oldToken)).status).toBe(401);
    expect((await restSubmit(newToken)).status).toBe(201);
    expect((await grpc.call("Submit", { type: "noop" }, newToken)).reply?.taskId).toBeNumber();

    // Still connected, still allowed: the held connection runs a task, the watch delivers its event.
    const outcome = await held.run("wordcount", "still here after the rotation");
    expect(outcome.ok).toBe(true);
    held.close();
    const events = await watched;
    expect(events.failure).toBeUndefined();
    expect(events.reply?.map((e) => [e.taskId, e.state])).toEqual([[ended, "completed"], [sleeper, "completed"]]);
    expect(router.proc.exitCode).toBeNull();
    expect(coordinator.proc.exitCode).toBeNull();
  });

  test("a broken JWKS on SIGHUP is logged and the keys in use are kept", async () => {
    writeFileSync(jwks, "{ half written");
    router.proc.kill("SIGHUP");
    await waitFor("the warning", () => (/JWKS reload failed/.test(router.output()) ? true : undefined));
    expect(await binarySubmit(router.port, keyToken(newKey, submitter))).toBe("accepted");
  });
});
