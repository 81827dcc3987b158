// The router's gRPC API called from Python (grpcio, stubs generated from
// proto/task_scheduler.proto by grpc_tools) against the compiled binaries,
// over TLS with tokens: submit, the result through the Watch stream, cancel,
// a workflow, the DLQ and requeue, and the refusals (wrong role, no token,
// unknown task, bad payload) with their gRPC status and our error code.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

/** Debian's python3 (python3-grpcio, python3-grpc-tools): another python3 first on PATH may lack them. */
const PYTHON = "/usr/bin/python3";
const ROOT = resolve(import.meta.dir, "../..");

function pythonGrpc(): boolean {
  try {
    return Bun.spawnSync([PYTHON, "-c", "import grpc, grpc_tools"]).exitCode === 0;
  } catch {
    return false;
  }
}
const available = pythonGrpc();
if (!available) console.warn(`skipping the Python gRPC tests: ${PYTHON} cannot import grpc and grpc_tools (apt-get install python3-grpcio python3-grpc-tools; scripts/test.sh does)`);

let dir = "";
let cluster: Cluster;
let address = "";
let auth: Record<string, string> = {};

beforeAll(async () => {
  if (!available) return;
  dir = mkdtempSync(join(tmpdir(), "grpc-python-"));
  const generated = Bun.spawnSync([
    PYTHON, "-c",
    "import sys, pkg_resources; from grpc_tools import protoc; sys.exit(protoc.main(['protoc', '-I' + sys.argv[1], '-I' + pkg_resources.resource_filename('grpc_tools', '_proto'), '--python_out=' + sys.argv[2], '--grpc_python_out=' + sys.argv[2], sys.argv[3]]))",
    join(ROOT, "proto"), dir, join(ROOT, "proto", "task_scheduler.proto"),
  ]);
  if (generated.exitCode !== 0) throw new Error(`grpc_tools.protoc failed: ${generated.stderr.toString()}`);
  const made = Bun.spawnSync(["bash", join(ROOT, "scripts/make-test-ca.sh"), join(dir, "ca")]);
  if (made.exitCode !== 0) throw new Error(`make-test-ca.sh failed: ${made.stderr.toString()}`);
  const tokensFile = join(dir, "tokens");
  writeTokensFile(tokensFile);
  const tls = ["--tls-cert", join(dir, "ca", "server.pem"), "--tls-key", join(dir, "ca", "server-key.pem"), "--tls-ca", join(dir, "ca", "ca.pem")];
  const ca = await Bun.file(join(dir, "ca", "ca.pem")).text();
  cluster = new Cluster({ serverArgs: [], workerArgs: [], clientArgs: [], sdk: { token: TOKENS.read, tls: { ca } } });
  const coordinator = await cluster.coordinator(["--tokens", tokensFile, ...tls]);
  cluster.worker([coordinator.port], ["-w", "1", "--token", TOKENS.worker, "--tls-ca", join(dir, "ca", "ca.pem")]);
  const grpcPort = freePort();
  const router = await cluster.router([coordinator.port], ["--tokens", tokensFile, ...tls, "--grpc-port", String(grpcPort), "--http-batch-max", "5", "--http-body-bytes-max", "4096"]);
  await waitFor("the gRPC port", () => (/router grpc on/.test(router.output()) ? true : undefined));
  await cluster.workersJoined(router.port, 1);
  address = `127.0.0.1:${grpcPort}`;
  auth = { read: TOKENS.read, submit: TOKENS.submit, admin: TOKENS.admin, ca: join(dir, "ca", "ca.pem") };
});

afterAll(async () => {
  await cluster?.stopAll();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function python(scenario: string): Record<string, any> {
  const run = Bun.spawnSync([PYTHON, join(import.meta.dir, "fixtures", "grpc_client.py"), dir, address, scenario, JSON.stringify(auth)], { timeout: 60_000 });
  if (run.exitCode !== 0) throw new Error(`grpc_client.py ${scenario} failed: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString()) as Record<string, any>;
}

test.skipIf(!available)("submit, the result through Watch, cancel, a workflow, the DLQ and requeue, from Python over TLS", () => {
  const seen = python("lifecycle");
  expect(seen.watch).toEqual([{ taskId: expect.any(Number), state: "completed", result: 6 }]);
  expect(seen.result).toEqual({ state: "completed", result: 6 });
  expect(seen.cancel).toBe("cancelled");
  expect(seen.cancelledTask).toEqual({ state: "cancelled", type: "sleep" });
  expect(seen.workflow).toEqual(["completed", "completed"]);
  expect(seen.failed.state).toBe("failed");
  expect(seen.failed.error).toContain("E_DEADLINE");
  expect(seen.failed.code).toBe("E_DEADLINE");
  expect(seen.dlqHas).toBe(true);
  expect(seen.requeued).toBe(true);
  expect(seen.coordinators).toBe(1);
});

test.skipIf(!available)("refusals carry a gRPC status and our error code: wrong role, no token, unknown task, bad payload, bad watches, limits", () => {
  const seen = python("refusals");
  expect(seen.readSubmits).toMatchObject({ status: "PERMISSION_DENIED", code: "E_UNAUTHORIZED" });
  expect(seen.readSubmits.details).toContain("submit role");
  expect(seen.submitRequeues).toMatchObject({ status: "PERMISSION_DENIED", code: "E_UNAUTHORIZED" });
  expect(seen.noToken).toMatchObject({ status: "UNAUTHENTICATED", code: "E_UNAUTHORIZED" });
  expect(seen.watchNoToken).toMatchObject({ status: "UNAUTHENTICATED", code: "E_UNAUTHORIZED" });
  expect(seen.watchUnknown).toMatchObject({ status: "NOT_FOUND", code: "E_UNKNOWN_TASK" });
  expect(seen.watchNothing).toMatchObject({ status: "INVALID_ARGUMENT", code: "E_BAD_REQUEST" });
  expect(seen.unknownTask).toMatchObject({ status: "NOT_FOUND", code: "E_UNKNOWN_TASK" });
  expect(seen.badPayload).toMatchObject({ status: "INVALID_ARGUMENT", code: "E_BAD_REQUEST" });
  expect(seen.badPayload.details).toContain("sleep: payload must be a map");
  expect(seen.notJson).toMatchObject({ status: "INVALID_ARGUMENT", code: "E_BAD_REQUEST" });
  expect(seen.batchTooLarge).toMatchObject({ status: "RESOURCE_EXHAUSTED", code: "E_TOO_LARGE" });
  expect(seen.messageTooLarge).toMatchObject({ status: "RESOURCE_EXHAUSTED" });
});
