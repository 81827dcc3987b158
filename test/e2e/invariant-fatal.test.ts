// A broken invariant in the core ends the coordinator: it is a bug in the state
// it serves from, not the fault of the request that ran into it. Before, the
// AssertionError (like any error not a ProtocolError) closed that one
// connection with E_BAD_FRAME "internal error handling a frame", and the
// coordinator served on from the broken state. Runs the real Coordinator from
// src (no build needed) in a child process and corrupts its scheduler: then a
// submission (a socket callback) or a tick (a timer) runs into the invariant.

import { afterEach, expect, test } from "bun:test";
import { resolve } from "node:path";
import { EXIT_BROKEN_INVARIANT } from "../../src/cli/fatal.ts";
import { FrameWriter, writeControl, writeSubmit } from "../../src/protocol/codec.ts";
import { Kind, PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { RawPeer } from "./raw-peer.ts";

const FIXTURE = resolve(import.meta.dir, "fixtures/corruptible-coordinator.ts");
/** Start-up, and each answer or exit we wait for: bounds, not sleeps. */
const DEADLINE_MS = 10_000;

type Child = ReturnType<typeof spawnCoordinator>;
let child: Child | undefined;
afterEach(() => child?.proc.kill());

function spawnCoordinator() {
  const proc = Bun.spawn(["bun", FIXTURE], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const lines = (async function* () {
    let buffered = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      for (let at = buffered.indexOf("\n"); at >= 0; at = buffered.indexOf("\n")) {
        yield buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
      }
    }
  })();
  return { proc, lines };
}

async function nextLine(c: Child): Promise<string> {
  const next = await Promise.race([c.lines.next(), Bun.sleep(DEADLINE_MS).then(() => "timed out" as const)]);
  if (next === "timed out") throw new Error("no line from the coordinator in time");
  if (next.done) throw new Error("the coordinator's stdout ended");
  return next.value;
}

/** The child's exit status and the invariant its stderr names (or the start of its stderr). */
async function exitAndStderr(c: Child): Promise<{ exit: number | string; broke: string }> {
  const exit = await Promise.race([c.proc.exited, Bun.sleep(DEADLINE_MS).then(() => "still running")]);
  const stderr = exit === "still running" ? "" : await new Response(c.proc.stderr).text();
  const broke = stderr.match(/AssertionError: (invariant broken: [^(\n]*[^( \n])/)?.[1] ?? stderr.slice(0, 500);
  return { exit, broke };
}

function submitFrame(requestId: number): Uint8Array {
  const w = new FrameWriter(256);
  writeSubmit(w, { requestId, priority: 0, flags: 0, maxAttempts: 0, timeoutMs: 0, type: "noop", idempotencyKey: "", payload: new Uint8Array(0) });
  return w.finish().slice();
}

function helloFrame(): Uint8Array {
  const w = new FrameWriter(256);
  writeControl(w, Kind.HELLO, { role: "client", version: PROTOCOL_VERSION, nodeId: "invariant-test" });
  return w.finish().slice();
}

test("an AssertionError while applying a submission ends the coordinator; the client gets no answer built on it", async () => {
  child = spawnCoordinator();
  const port = Number((await nextLine(child)).match(/^listening (\d+)$/)?.[1]);
  expect(port).toBeGreaterThan(0);
  const peer = await RawPeer.open(port);
  peer.send(helloFrame());
  peer.send(submitFrame(1));
  expect(await peer.waitKind(Kind.SUBMITTED, DEADLINE_MS)).toBe(true);

  child.proc.stdin.write("rewind-ids\n");
  child.proc.stdin.flush();
  expect(await nextLine(child)).toBe("done");
  const submittedBefore = peer.kinds.filter((k) => k === Kind.SUBMITTED).length;
  peer.send(submitFrame(2));

  expect(await exitAndStderr(child)).toEqual({ exit: EXIT_BROKEN_INVARIANT, broke: "invariant broken: a new task's id is not held already" });
  // The second submission was neither acknowledged nor answered with an error: the process ended first.
  expect(await peer.waitClosed(DEADLINE_MS)).toBe(true);
  expect(peer.kinds.filter((k) => k === Kind.SUBMITTED).length).toBe(submittedBefore);
  expect(peer.errors).toEqual([]);
}, 3 * DEADLINE_MS);

test("an AssertionError in a tick (a timer, not a socket callback) ends the coordinator too", async () => {
  child = spawnCoordinator();
  expect(await nextLine(child)).toMatch(/^listening \d+$/);
  child.proc.stdin.write("break-delayed-count\n");
  child.proc.stdin.flush();
  expect(await nextLine(child)).toBe("done");
  expect(await exitAndStderr(child)).toEqual({ exit: EXIT_BROKEN_INVARIANT, broke: "invariant broken: the delayed count never goes below zero" });
}, 3 * DEADLINE_MS);
