// Bounded fuzzing of the router's gRPC port: every method fed random bytes,
// mutated valid messages and valid messages with hostile field values (huge
// ids, bad JSON, odd strings). Each call must end with a status before its
// deadline, any error code of ours must be a known one (never E_INTERNAL: no
// handler may crash), and the port must still serve a valid call after.
// Fixed seeds keep it reproducible; a failure names its seed and case.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { Logger } from "../../src/cli/log.ts";
import { Coordinator } from "../../src/coordinator/coordinator.ts";
import { Prng } from "../../src/core/prng.ts";
import { TokenTable } from "../../src/net/auth.ts";
import { DEFAULT_NET_LIMITS } from "../../src/net/connection.ts";
import { isErrorCode } from "../../src/protocol/errors.ts";
import { GrpcApi } from "../../src/router/grpc/grpc-api.ts";
import { protoRoot } from "../../src/router/grpc/proto.ts";
import { ERROR_CODE_KEY } from "../../src/router/grpc/status.ts";
import { Router } from "../../src/router/router.ts";
import { randomBytes } from "../support/helpers.ts";
import { hex, mutateBytes } from "./fuzz-support.ts";
import { testCoordinatorConfig } from "../support/coordinator-config.ts";

const SEEDS = [7, 0xfeed];
const CASES = 300;
const CALL_DEADLINE_MS = 5_000;
const MESSAGE_BYTES_MAX = 64 * 1024;

/** Each method and its request type, unary or server-streaming. */
const METHODS: Array<{ name: string; request: string; stream?: true }> = [
  { name: "Submit", request: "TaskSpec" }, { name: "SubmitBatch", request: "SubmitBatchRequest" }, { name: "SubmitWorkflow", request: "WorkflowRequest" },
  { name: "GetTask", request: "TaskRef" }, { name: "GetResult", request: "TaskRef" }, { name: "Cancel", request: "TaskRef" },
  { name: "ListDeadLetters", request: "ListDeadLettersRequest" }, { name: "Requeue", request: "TaskRef" },
  { name: "PurgeDeadLetters", request: "PurgeDeadLettersRequest" }, { name: "ClusterStats", request: "ClusterStatsRequest" },
  { name: "Watch", request: "WatchRequest", stream: true },
];

const root = protoRoot();
const handlerErrors: string[] = [];
const quiet = new Logger("fuzz", "error", (line) => void handlerErrors.push(line));
let coordinator: Coordinator;
let router: Router;
let api: GrpcApi;
let client: Client;

beforeAll(async () => {
  const limits = DEFAULT_NET_LIMITS;
  const config = testCoordinatorConfig({ nodeId: "fuzz-coordinator", limits });
  coordinator = new Coordinator(config, quiet);
  coordinator.start();
  router = new Router({
    host: "127.0.0.1", port: 0, nodeId: "fuzz-router", coordinators: [{ host: "127.0.0.1", port: coordinator.port }], limits, tokens: TokenTable.OPEN, tls: {},
    reconnectMinMs: 20, reconnectMaxMs: 200, statsTimeoutMs: 1_000, crossShardPollMs: 100,
  }, quiet);
  router.start();
  api = new GrpcApi({
    host: "127.0.0.1", port: 0, routerPort: router.port, nodeId: "fuzz-router", messageBytesMax: MESSAGE_BYTES_MAX, batchMax: 100, idleTimeoutMs: 0,
    tokens: TokenTable.OPEN, tls: {},
  }, quiet);
  await api.start();
  client = new Client(`127.0.0.1:${api.port}`, credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  api?.stop();
  router?.stop();
  coordinator?.stop();
});

const identity = (b: Buffer) => b;

/** Sends raw request bytes; resolves with the call's status and our error code (if any). */
function rawCall(method: (typeof METHODS)[number], bytes: Uint8Array): Promise<{ status: number; code: string | undefined }> {
  const path = `/taskscheduler.v1.TaskScheduler/${method.name}`;
  const options = { deadline: Date.now() + CALL_DEADLINE_MS };
  const settled = (err: ServiceError | null) => ({ status: err?.code ?? 0, code: err?.metadata?.get(ERROR_CODE_KEY)[0] as string | undefined });
  return new Promise((resolve) => {
    if (!method.stream) {
      client.makeUnaryRequest(path, identity, identity, Buffer.from(bytes), new Metadata(), options, (err) => resolve(settled(err)));
      return;
    }
    const stream = client.makeServerStreamRequest(path, identity, identity, Buffer.from(bytes), new Metadata(), options);
    stream.on("data", () => {});
    stream.on("error", (err: ServiceError) => resolve(settled(err)));
    stream.on("end", () => resolve(settled(null)));
  });
}

const ODD_STRINGS = ["", "{nope", "null", "[]", '"\\u0000"', "x".repeat(300), "💥", "1e309", '{"ms": -1}', "toString"];
const ODD_NUMBERS = [0, 1, 255, 256, 65_536, 2 ** 32, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER];

/** A value for one field of a message type: valid in form, hostile in content. */
function oddObject(type: protobuf.Type, prng: Prng, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (prng.int(3) === 0) continue;
    const one = (): unknown => {
      if (field.resolvedType instanceof protobuf.Type) return depth < 3 ? oddObject(field.resolvedType, prng, depth + 1) : {};
      if (field.type === "string") return ODD_STRINGS[prng.int(ODD_STRINGS.length)];
      if (field.type === "bool") return prng.int(2) === 0;
      if (field.type === "double") return prng.next() * 2 - 1;
      return ODD_NUMBERS[prng.int(ODD_NUMBERS.length)];
    };
    out[field.name] = field.repeated ? Array.from({ length: prng.int(4) }, one) : one();
  }
  return out;
}

function caseBytes(method: (typeof METHODS)[number], prng: Prng): Uint8Array {
  const type = root.lookupType(`taskscheduler.v1.${method.request}`);
  const valid = type.encode(type.fromObject(oddObject(type, prng))).finish();
  switch (prng.int(3)) {
    case 0: return randomBytes(prng, prng.int(64));
    case 1: return mutateBytes(valid, prng);
    default: return valid;
  }
}

for (const seed of SEEDS) {
  test(`seed ${seed}: ${CASES} hostile calls end with a status, never a crashed handler; the port still serves`, async () => {
    const prng = new Prng(seed);
    const seen = new Map<number, number>();
    for (let i = 0; i < CASES; i++) {
      const method = METHODS[prng.int(METHODS.length)]!;
      const bytes = caseBytes(method, prng);
      const where = `seed ${seed} case ${i}: ${method.name} ${hex(bytes)}`;
      const outcome = await rawCall(method, bytes);
      seen.set(outcome.status, (seen.get(outcome.status) ?? 0) + 1);
      if (outcome.code !== undefined && !isErrorCode(outcome.code)) throw new Error(`${where}: error code ${outcome.code} (${handlerErrors.at(-1) ?? ""})`);
      if (handlerErrors.length > 0) throw new Error(`${where}: a handler failed: ${handlerErrors[0]}`);
    }
    // The cases reached the handlers: some were served, some refused by our checks, not only by the decoder.
    expect(seen.get(status.OK)).toBeGreaterThan(0);
    expect(seen.get(status.INVALID_ARGUMENT)).toBeGreaterThan(0);
    const stats = await rawCall(METHODS.find((m) => m.name === "ClusterStats")!, new Uint8Array(0));
    expect(stats).toEqual({ status: 0, code: undefined });
  }, 120_000);
}
