// The gRPC Events stream against the compiled binaries: every shard's events
// through a filter, resumed after an event's id with nothing lost or repeated,
// a malformed filter refused as INVALID_ARGUMENT, a read role required.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shardOfTask } from "../../src/core/task.ts";
import { GrpcTestClient } from "../support/grpc-client.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

const TASKS = 20;
let dir = "";
let cluster: Cluster;
let grpc: GrpcTestClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "grpc-events-"));
  const tokens = join(dir, "tokens");
  writeTokensFile(tokens);
  cluster = new Cluster({ serverArgs: ["--tokens", tokens], workerArgs: ["--token", TOKENS.worker], clientArgs: [], sdk: { token: TOKENS.read } });
  const shards = await Promise.all([0, 1].map((shard) => cluster.coordinator(["--shard", String(shard)])));
  cluster.worker(shards.map((s) => s.port), ["-w", "1"]);
  const grpcPort = freePort();
  const router = await cluster.router(shards.map((s) => s.port), ["--grpc-port", String(grpcPort)]);
  await waitFor("the gRPC port", () => (/router grpc on/.test(router.output()) ? true : undefined));
  await cluster.workersJoined(router.port, 2);
  grpc = new GrpcTestClient(`127.0.0.1:${grpcPort}`);
});

afterAll(async () => {
  grpc?.close();
  await cluster?.stopAll();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

test("completions of both shards arrive once each, and a stream resumed after an id gets exactly the rest", async () => {
  const completed = (events: any[]) => events.filter((e) => e.kind === "completed");
  const stream = grpc.events({ kinds: ["completed"], types: ["wordcount"] }, (events) => completed(events).length >= TASKS, TOKENS.read);
  await Bun.sleep(200); // the subscription reaches both primaries before the tasks end
  const { reply } = await grpc.call("SubmitBatch", { tasks: Array.from({ length: TASKS }, (_, i) => ({ type: "wordcount", payloadJson: JSON.stringify(`w${i} x`) })) }, TOKENS.submit);
  const submitted = reply.taskIds as number[];
  expect(submitted).toHaveLength(TASKS);
  expect(new Set(submitted.map(shardOfTask)).size).toBe(2);

  const first = await stream;
  const seen = completed(first.reply!);
  expect(seen.map((e) => e.taskId).sort()).toEqual([...submitted].sort());
  expect(seen.every((e) => e.type === "wordcount" && e.resultJson === "2" && e.id !== "")).toBe(true);

  // From the tenth event on: the ten after it, none of the first ten again.
  const tenth = seen[9]!;
  const resumed = await grpc.events({ kinds: ["completed"], types: ["wordcount"], after: tenth.id }, (events) => completed(events).length >= TASKS - 10, TOKENS.read);
  expect(completed(resumed.reply!).map((e) => e.taskId).sort()).toEqual(seen.slice(10).map((e) => e.taskId).sort());
});

test("a malformed filter or position is INVALID_ARGUMENT, and a worker token is refused", async () => {
  const bad = await grpc.events({ kinds: ["exploded"] }, () => true, TOKENS.read);
  expect(bad.failure).toMatchObject({ status: status.INVALID_ARGUMENT, code: "E_BAD_REQUEST" });
  const badAfter = await grpc.events({ after: "not-an-id" }, () => true, TOKENS.read);
  expect(badAfter.failure).toMatchObject({ status: status.INVALID_ARGUMENT, code: "E_BAD_REQUEST" });
  const refused = await grpc.events({}, () => true, TOKENS.worker);
  expect(refused.failure?.status).toBe(status.PERMISSION_DENIED);
});
