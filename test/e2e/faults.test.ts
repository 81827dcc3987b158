// Faults from the compiled binaries: a worker killed mid-run, a coordinator
// restarted under its workers, and hostile bytes on the coordinator's port.

import { afterEach, expect, test } from "bun:test";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { forEachMessage, readControl, Reader } from "../../src/protocol/codec.ts";
import { Kind, type ErrorMessage } from "../../src/protocol/messages.ts";
import { Cluster, parseReport, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

test("a worker killed with SIGKILL mid-run: its tasks finish on the other worker", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  const doomed = cluster.worker([coordinator.port], ["-w", "1"]);
  cluster.worker([coordinator.port], ["-w", "1"]);
  await cluster.workersJoined(coordinator.port, 2);
  const run = cluster.client(["-p", String(coordinator.port), "-n", "3000", "-c", "64", "-t", "sleep", "--duration-ms", "20", "--json"]);
  await waitFor("the doomed worker to be busy", async () => {
    const stats = await cluster.stats(coordinator.port);
    return stats.coordinators[0]!.stats!.completed > 300 ? true : undefined;
  });
  doomed.proc.kill("SIGKILL");
  const report = parseReport(await run);
  expect(report.completed).toBe(3000);
  expect(report.failed).toBe(0);
  const stats = await cluster.stats(coordinator.port);
  expect(stats.coordinators[0]!.stats!.workers.length).toBe(1);
  // The killed worker's leases ended and were run again elsewhere.
  expect(stats.coordinators[0]!.stats!.retried).toBeGreaterThan(0);
});

test("workers redial a restarted coordinator and take work again", async () => {
  cluster = new Cluster();
  const first = await cluster.coordinator();
  cluster.worker([first.port], ["-w", "1", "--reconnect-max-ms", "200"]);
  await cluster.workersJoined(first.port, 1);
  first.proc.kill("SIGKILL");
  await first.proc.exited;
  const second = await cluster.server("coordinator", ["--log-level", "warn", "-p", String(first.port)]);
  await cluster.workersJoined(second.port, 1);
  const report = parseReport(await cluster.client(["-p", String(second.port), "-n", "2000", "-c", "32", "--json"]));
  expect(report.completed).toBe(2000);
});

/** Sends raw bytes on a fresh connection; resolves with the ERROR it got back (if any) once the server closes. */
async function sendRaw(port: number, bytes: Uint8Array): Promise<{ closed: boolean; error?: ErrorMessage }> {
  const decoder = new FrameDecoder(1 << 20);
  const reader = new Reader();
  let error: ErrorMessage | undefined;
  const closed = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        decoder.push(chunk, (body) => forEachMessage(body, reader, (kind, r) => {
          if (kind === Kind.ERROR) error = readControl<ErrorMessage>(r);
        }));
      },
      close() {
        closed.resolve();
      },
      error() {
        closed.resolve();
      },
    },
  });
  socket.write(bytes);
  const timer = setTimeout(() => socket.end(), 5000);
  await closed.promise;
  clearTimeout(timer);
  return { closed: true, error };
}

test("garbage, huge length prefixes and a missing HELLO close only that connection", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "1"]);
  await cluster.workersJoined(coordinator.port, 1);

  const huge = new Uint8Array(8);
  new DataView(huge.buffer).setUint32(0, 0xfffffff0, true);
  expect((await sendRaw(coordinator.port, huge)).error?.code).toBe("E_TOO_LARGE");

  // A well-framed message that is not HELLO.
  const notHello = new Uint8Array([6, 0, 0, 0, 10, 1, 0, 0, 0, 0]);
  expect((await sendRaw(coordinator.port, notHello)).error?.code).toBe("E_BAD_HELLO");

  // A frame whose message overruns it.
  const overrun = new Uint8Array([5, 0, 0, 0, 1, 200, 0, 0, 0]);
  expect((await sendRaw(coordinator.port, overrun)).error?.code).toBe("E_BAD_FRAME");

  // The coordinator and its worker are unharmed.
  const report = parseReport(await cluster.client(["-p", String(coordinator.port), "-n", "2000", "-c", "32", "--json"]));
  expect(report.completed).toBe(2000);
});
