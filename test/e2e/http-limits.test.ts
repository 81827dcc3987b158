// The HTTP ports (the router's REST API, /metrics of coordinators and workers)
// under the same limits and time-outs as the framed ports: a connection that
// sends nothing is closed after --handshake-timeout-ms, an idle keep-alive one
// after --client-idle-timeout-ms, and past --connections-max the next gets 503
// E_TOO_MANY_CONNECTIONS, while the framed port keeps its own slots.

import { afterEach, expect, test } from "bun:test";
import { Kind } from "../../src/protocol/messages.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { helloFrame, RawPeer } from "./raw-peer.ts";

const HANDSHAKE_TIMEOUT_MS = 400;
const IDLE_TIMEOUT_MS = 800;
/** A close this long past its time-out is late (sweeps run every quarter of the idle time-out). */
const SLACK_MS = 3_000;
/** Timers fire a little early or late; a close this much before its time-out is still on time. */
const EARLY_MS = 50;
const GET_HEALTHZ = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

/** Sends one keep-alive request; resolves with the peer once the answer is in (or the server closed). */
async function afterOneRequest(port: number): Promise<RawPeer> {
  const peer = await RawPeer.open(port);
  peer.send(new TextEncoder().encode(GET_HEALTHZ));
  await waitFor("the /healthz answer", () => (peer.text.includes("}") || peer.isClosed ? true : undefined), 5_000);
  return peer;
}

/** A connection that got a slot: retried while the server still counts connections just closed. */
function admitted(port: number): Promise<RawPeer> {
  return waitFor(`an HTTP connection admitted on ${port}`, async () => {
    const p = await afterOneRequest(port);
    if (p.text.startsWith("HTTP/1.1 200 ")) return p;
    p.end();
    return undefined;
  }, 5_000);
}

/** A router with an HTTP port, a coordinator with a metrics port and a worker with one, all with `args`. */
async function httpPorts(args: string[]): Promise<{ ports: Record<string, number>; routerPort: number }> {
  const metrics = { coordinator: freePort(), worker: freePort(), router: freePort() };
  const coordinator = await cluster.coordinator([...args, "--metrics-port", String(metrics.coordinator)]);
  cluster.worker([coordinator.port], ["-w", "1", ...args, "--metrics-port", String(metrics.worker)]);
  const router = await cluster.router([coordinator.port], [...args, "--http-port", String(metrics.router)]);
  await cluster.workersJoined(router.port, 1);
  // Connection: close, so fetch's pool keeps no connection (and slot) of ours.
  const probe = (port: number) => fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: "close" } });
  for (const port of Object.values(metrics)) await waitFor(`HTTP on ${port}`, async () => ((await probe(port)).ok ? true : undefined));
  return { ports: metrics, routerPort: router.port };
}

test("an HTTP connection that sends nothing is closed after --handshake-timeout-ms with a 408; an idle keep-alive one after --client-idle-timeout-ms", async () => {
  cluster = new Cluster();
  const { ports } = await httpPorts(["--handshake-timeout-ms", String(HANDSHAKE_TIMEOUT_MS), "--client-idle-timeout-ms", String(IDLE_TIMEOUT_MS)]);
  for (const [name, port] of Object.entries(ports)) {
    const silent = await RawPeer.open(port);
    expect(await silent.waitClosed(HANDSHAKE_TIMEOUT_MS + SLACK_MS), `${name}: a silent connection stayed open`).toBe(true);
    expect(silent.closedAfterMs!).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - EARLY_MS);
    expect(silent.text).toStartWith("HTTP/1.1 408 ");
    expect(silent.text).toContain("E_HANDSHAKE_TIMEOUT");

    // Half a request head, then silence: the same.
    const torn = await RawPeer.open(port);
    torn.send(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHo"));
    expect(await torn.waitClosed(HANDSHAKE_TIMEOUT_MS + SLACK_MS), `${name}: a torn request head stayed open`).toBe(true);
    expect(torn.text).toStartWith("HTTP/1.1 408 ");

    // A keep-alive connection outlives the handshake time-out, and is closed once idle.
    const idle = await afterOneRequest(port);
    expect(idle.text).toStartWith("HTTP/1.1 200 ");
    expect(await idle.waitClosed(HANDSHAKE_TIMEOUT_MS * 1.5)).toBe(false);
    expect(await idle.waitClosed(IDLE_TIMEOUT_MS + SLACK_MS), `${name}: an idle keep-alive connection stayed open`).toBe(true);
    expect(idle.closedAfterMs!).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - EARLY_MS);
  }
}, 60_000);

test("past --connections-max the next HTTP connection gets 503 E_TOO_MANY_CONNECTIONS, counted apart from the framed port", async () => {
  cluster = new Cluster();
  const max = 3;
  const { ports, routerPort } = await httpPorts(["--connections-max", String(max)]);
  for (const [name, port] of Object.entries(ports)) {
    const held: RawPeer[] = [];
    for (let i = 0; i < max; i++) held.push(await admitted(port));
    const refused = await afterOneRequest(port);
    expect(refused.text, name).toStartWith("HTTP/1.1 503 ");
    expect(refused.text).toContain("E_TOO_MANY_CONNECTIONS");
    expect(refused.text).toContain("--connections-max");
    expect(await refused.waitClosed(SLACK_MS)).toBe(true);
    // Not one more, however many are tried; then room again once one closes.
    expect((await afterOneRequest(port)).text).toStartWith("HTTP/1.1 503 ");
    held.shift()!.end();
    held.push(await admitted(port));
    for (const p of held) expect(p.isClosed).toBe(false);
    // The router's framed port has its own client slots: a client is welcome there.
    if (name === "router") {
      const client = await RawPeer.open(routerPort);
      client.send(helloFrame());
      expect(await client.waitKind(Kind.WELCOME, 5_000)).toBe(true);
      client.end();
    }
    for (const p of held) p.end();
  }
}, 60_000);

test("past --handshakes-max the oldest silent connection makes room, long before its handshake time-out", async () => {
  cluster = new Cluster();
  const handshakesMax = 5;
  const coordinator = await cluster.coordinator(["--handshakes-max", String(handshakesMax), "--handshake-timeout-ms", "60000"]);
  const silent: RawPeer[] = [];
  for (let i = 0; i < handshakesMax; i++) silent.push(await RawPeer.open(coordinator.port));
  // Everything stays open until one more arrives.
  expect(await silent[0]!.waitClosed(300)).toBe(false);
  const newest = await RawPeer.open(coordinator.port);
  expect(await silent[0]!.waitClosed(SLACK_MS)).toBe(true);
  expect(silent[0]!.errorCodes).toEqual(["E_TOO_MANY_CONNECTIONS"]);
  expect(silent[0]!.errors[0]!.message).toContain("--handshakes-max");
  // The newest, and a worker's quick handshake after it, go through.
  newest.send(helloFrame({ role: "worker", workerId: 7, slots: 1 }));
  expect(await newest.waitKind(Kind.WELCOME, 5_000)).toBe(true);
  for (const p of silent.slice(1)) expect(p.isClosed).toBe(false);
  for (const p of [...silent, newest]) p.end();
}, 30_000);
