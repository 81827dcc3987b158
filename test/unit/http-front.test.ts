// The HTTP front in-process, on loopback: a request head torn at every byte
// still counts as the handshake, pipelined requests all get answers, bodies and
// responses larger than a socket buffer pass whole, and a head that never ends
// is refused instead of held.

import { afterEach, expect, test } from "bun:test";
import type { Socket } from "bun";
import { DEFAULT_NET_LIMITS } from "../../src/net/connection.ts";
import { HTTP_HEAD_BYTES_MAX, serveHttp, type HttpServer } from "../../src/net/http-front.ts";

const utf8 = new TextEncoder();
const DEADLINE_MS = 5_000;

let server: HttpServer | undefined;
afterEach(() => {
  server?.stop();
  server = undefined;
});

function start(): HttpServer {
  server = serveHttp({
    host: "127.0.0.1",
    port: 0,
    limits: { ...DEFAULT_NET_LIMITS, handshakeTimeoutMs: DEADLINE_MS },
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === "POST") return Response.json({ bytes: (await req.arrayBuffer()).byteLength });
      if (path === "/big") return new Response(new Uint8Array(8 * 1024 * 1024).fill(7));
      return Response.json({ path });
    },
  });
  return server;
}

/** A raw connection that collects what the server sends, as latin1 text. */
async function raw(port: number): Promise<{ socket: Socket<undefined>; text: () => string; closed: () => boolean }> {
  let text = "";
  let closed = false;
  const socket = await Bun.connect<undefined>({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, d) => void (text += Buffer.from(d).toString("latin1")), close: () => void (closed = true), error: () => void (closed = true) },
  });
  return { socket, text: () => text, closed: () => closed };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const end = performance.now() + DEADLINE_MS;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

test("a request head that arrives one byte at a time is answered", async () => {
  const { port } = start();
  const peer = await raw(port);
  for (const byte of utf8.encode("GET /torn HTTP/1.1\r\nHost: x\r\n\r\n")) {
    peer.socket.write(Uint8Array.of(byte));
    await Bun.sleep(1);
  }
  await until("the answer", () => peer.text().includes("/torn"));
  expect(peer.text()).toStartWith("HTTP/1.1 200 ");
  peer.socket.end();
});

test("pipelined requests in one write are all answered, in order", async () => {
  const { port } = start();
  const peer = await raw(port);
  peer.socket.write(utf8.encode(["/a", "/b", "/c"].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join("")));
  await until("three answers", () => peer.text().split("HTTP/1.1 200 ").length === 4);
  expect(peer.text().indexOf("/a")).toBeLessThan(peer.text().indexOf("/b"));
  expect(peer.text().indexOf("/b")).toBeLessThan(peer.text().indexOf("/c"));
  peer.socket.end();
});

test("bodies and responses of megabytes pass whole through the relay", async () => {
  const { port } = start();
  const body = new Uint8Array(12 * 1024 * 1024).fill(3);
  const posted = await fetch(`http://127.0.0.1:${port}/up`, { method: "POST", body });
  expect(await posted.json()).toEqual({ bytes: body.length });
  const big = new Uint8Array(await (await fetch(`http://127.0.0.1:${port}/big`)).arrayBuffer());
  expect(big.length).toBe(8 * 1024 * 1024);
  expect(big.every((b) => b === 7)).toBe(true);
});

test("a first request head over the limit is refused with 431, not held", async () => {
  const { port } = start();
  const peer = await raw(port);
  peer.socket.write(utf8.encode(`GET / HTTP/1.1\r\nX-Long: ${"a".repeat(HTTP_HEAD_BYTES_MAX)}`));
  await until("the refusal and close", () => peer.closed());
  expect(peer.text()).toStartWith("HTTP/1.1 431 ");
  expect(peer.text()).toContain("E_TOO_LARGE");
});
