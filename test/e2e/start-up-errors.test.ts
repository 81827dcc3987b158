// What each binary says at start-up when it cannot listen, and --version: the
// compiled binaries, as an operator runs them.

import { afterAll, expect, test } from "bun:test";
import packageJson from "../../package.json" with { type: "json" };
import { DIST, freePort } from "./harness.ts";

const held = Bun.listen({ hostname: "127.0.0.1", port: freePort(), socket: { data() {} } });
afterAll(() => held.stop(true));

async function run(binary: string, args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn([`${DIST}/${binary}`, ...args], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 10_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  return { code: await proc.exited, out: stdout + stderr };
}

const inUse = `cannot listen on 127.0.0.1:${held.port}: the port is in use`;

test("a coordinator, a router, and the metrics ports of a worker and a coordinator say the port is in use, and exit 1", async () => {
  for (const [binary, args] of [
    ["coordinator", ["-p", String(held.port)]],
    ["router", ["-p", String(held.port), "-s", "127.0.0.1:1"]],
    ["router", ["-p", "0", "-s", "127.0.0.1:1", "--http-port", String(held.port)]],
    ["router", ["-p", "0", "-s", "127.0.0.1:1", "--grpc-port", String(held.port)]],
    ["worker", ["-s", "127.0.0.1:1", "--metrics-port", String(held.port)]],
    ["coordinator", ["-p", "0", "--metrics-port", String(held.port)]],
  ] as const) {
    const { code, out } = await run(binary, [...args]);
    expect({ binary, args, code, says: out.includes(inUse) }).toEqual({ binary, args, code: 1, says: true });
  }
}, 60_000);

test("bad JWT settings stop start-up with exit 2, naming the flag", async () => {
  for (const [binary, args, says] of [
    ["router", ["-p", "0", "--jwt-secret", "too-short"], "--jwt-secret: needs at least 32 characters"],
    ["coordinator", ["-p", "0", "--jwt-jwks", "/nonexistent/jwks.json"], "--jwt-jwks /nonexistent/jwks.json"],
    ["coordinator", ["-p", "0", "--jwt-secret", "a-secret-long-enough-for-hs256-000000"], "with --jwt-*, --tokens is still needed"],
    ["worker", ["-c", "127.0.0.1:1", "--jwt-secret-file", "/nonexistent/secret"], "--jwt-secret-file /nonexistent/secret"],
  ] as const) {
    const { code, out } = await run(binary, [...args]);
    expect({ binary, code, says: out.includes(says) ? says : out }).toEqual({ binary, code: 2, says });
  }
}, 60_000);

test("--version prints the package version on every binary", async () => {
  for (const binary of ["coordinator", "worker", "router", "client", "top"]) {
    const { code, out } = await run(binary, ["--version"]);
    expect({ binary, code, out: out.trim() }).toEqual({ binary, code: 0, out: `${binary} ${packageJson.version}` });
  }
}, 60_000);
