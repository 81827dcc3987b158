// Smoke test of the fault harness itself: namespaces reach each other over the hub's bridge, a cut
// drops exactly one link (and makes an open TCP connection hang, not fail), the etcd cluster serves
// through its JSON gateway with a member down, and nothing is left behind in the root namespace.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { etcdAvailable, startEtcdCluster, type EtcdCluster } from "./etcd-cluster.ts";
import { HUB, Net, namespacesAvailable } from "./netns.ts";
import { collectOutput, waitFor } from "./process.ts";

const BUN = process.execPath;
const ECHO_PORT = 7000;
/** A connect through a cut link gets no answer; this long without one counts as "hangs". */
const CONNECT_TIMEOUT_MS = 750;
/** Bounds each test: namespace set-up takes tens of ms and etcd well under a second here. */
const TEST_TIMEOUT_MS = 60_000;

const ECHO_SERVER = `
Bun.listen({ hostname: process.env.HOST, port: Number(process.env.PORT), socket: { data(s, d) { s.write(d); } } });
console.log("listening");
`;

/** Prints "echo ping", "timeout" or "error <why>", then exits. */
const CONNECT_PROBE = `
const done = (line) => { console.log(line); process.exit(0); };
setTimeout(() => done("timeout"), Number(process.env.TIMEOUT_MS));
Bun.connect({ hostname: process.env.HOST, port: Number(process.env.PORT), socket: {
  open(s) { s.write("ping"); }, data(_s, d) { done("echo " + d); }, error(_s, e) { done("error " + e.message); },
} }).catch((e) => done("error " + e.message));
`;

/** One connection kept open, a numbered line every 50 ms; prints each echo and any close or error. */
const PINGER = `
const s = await Bun.connect({ hostname: process.env.HOST, port: Number(process.env.PORT), socket: {
  data(_s, d) { for (const line of String(d).split("\\n").filter(Boolean)) console.log("echo " + line); },
  close() { console.log("closed"); }, error(_s, e) { console.log("error " + e.message); },
} });
let n = 0;
setInterval(() => s.write(n++ + "\\n"), 50);
`;

function rootNamespaceState(): string {
  const run = (argv: string[]) => Bun.spawnSync(argv, { stdout: "pipe" }).stdout.toString();
  return [run(["ip", "-o", "addr"]), run(["ip", "route", "show", "table", "all"]), run(["ip", "-o", "link"])].join("\n");
}

function expectAllGone(net: Net): void {
  const listed = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe" }).stdout.toString();
  for (const ns of net.namespaces()) expect(listed).not.toContain(ns);
  expect(rootNamespaceState()).not.toContain(net.prefix);
}

const namespaces = namespacesAvailable();
const etcd = etcdAvailable();

describe.skipIf(!namespaces.ok)(namespaces.ok ? "network namespaces" : `network namespaces (skipped: ${namespaces.why})`, () => {
  let net: Net;
  beforeAll(async () => {
    net = await Net.create(["a", "b", "c"]);
    const server = net.exec("a", [BUN, "-e", ECHO_SERVER], { env: { HOST: net.ip("a"), PORT: String(ECHO_PORT) } });
    const output = collectOutput(server);
    await waitFor("the echo server in a", () => (output().includes("listening") ? true : undefined), 10_000);
  });
  afterAll(() => net?.destroy());

  const probe = async (from: string): Promise<string> => {
    const env = { HOST: net.ip("a"), PORT: String(ECHO_PORT), TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) };
    const r = await net.run(from, [BUN, "-e", CONNECT_PROBE], CONNECT_TIMEOUT_MS + 5_000, env);
    return r.stdout.trim() || `no output (exit ${r.code}): ${r.stderr}`;
  };

  test("the root namespace gets no address, route or interface of the run", () => {
    const root = rootNamespaceState();
    expect(root).not.toContain("10.213.0.");
    expect(root).not.toContain(net.prefix);
    expect([net.ip(HUB), net.ip("a"), net.ip("c")]).toEqual(["10.213.0.1", "10.213.0.10", "10.213.0.12"]);
  });

  test("b and the hub reach a", async () => {
    expect(await probe("b")).toBe("echo ping");
    expect(await probe(HUB)).toBe("echo ping");
  }, TEST_TIMEOUT_MS);

  test("cut(a, b): b's connect hangs while c still reaches a; heal restores it", async () => {
    await net.cut("a", "b");
    const [fromB, fromC] = await Promise.all([probe("b"), probe("c")]);
    expect(fromB).toBe("timeout");
    expect(fromC).toBe("echo ping");
    await net.heal("a", "b");
    expect(await probe("b")).toBe("echo ping");
  }, TEST_TIMEOUT_MS);

  test("an open connection through a cut link stalls without failing, and resumes after heal", async () => {
    const pinger = net.exec("b", [BUN, "-e", PINGER], { env: { HOST: net.ip("a"), PORT: String(ECHO_PORT) } });
    const output = collectOutput(pinger);
    const echoes = () => output().split("\n").filter((l) => l.startsWith("echo")).length;
    await waitFor("echoes before the cut", () => (echoes() >= 3 ? true : undefined), 10_000);
    await net.cut("a", "b");
    await Bun.sleep(200); // let echoes already in flight arrive
    const stalledAt = echoes();
    await Bun.sleep(1_000); // asserting that nothing happens takes a window, not an event
    expect(echoes()).toBe(stalledAt);
    expect(output()).not.toMatch(/closed|error/);
    await net.heal("a", "b");
    await waitFor("echoes after heal", () => (echoes() > stalledAt ? true : undefined), 15_000);
    pinger.kill("SIGKILL");
  }, TEST_TIMEOUT_MS);

  test("isolate(a) cuts a from everyone; healAll undoes it", async () => {
    await net.isolate("a");
    expect(await Promise.all([probe("b"), probe("c"), probe(HUB)])).toEqual(["timeout", "timeout", "timeout"]);
    await net.healAll();
    expect(await Promise.all([probe("b"), probe("c"), probe(HUB)])).toEqual(["echo ping", "echo ping", "echo ping"]);
  }, TEST_TIMEOUT_MS);

  test("destroy() kills the processes and removes every namespace; twice is fine", async () => {
    await net.destroy();
    await net.destroy();
    expectAllGone(net);
    expect(() => net.exec("a", ["true"])).toThrow(/destroyed/);
  }, TEST_TIMEOUT_MS);
});

const etcdSkip = !namespaces.ok ? namespaces.why : !etcd.ok ? etcd.why : "";
describe.skipIf(etcdSkip !== "")(etcdSkip ? `etcd cluster (skipped: ${etcdSkip})` : "etcd cluster in namespaces", () => {
  let net: Net;
  let cluster: EtcdCluster;
  beforeAll(async () => {
    net = await Net.create(["etcd1", "etcd2", "etcd3"]);
    cluster = await startEtcdCluster(net);
  }, TEST_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
    await net?.destroy();
  });

  const base64 = (s: string) => Buffer.from(s).toString("base64");
  const put = async (endpoint: string, key: string, value: string) => {
    const r = await net.fetch(HUB, `${endpoint}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: base64(key), value: base64(value) }) });
    if (r.status !== 200) throw new Error(`put via ${endpoint}: ${r.status} ${r.body}`);
  };
  const get = async (endpoint: string, key: string): Promise<string | undefined> => {
    const r = await net.fetch(HUB, `${endpoint}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: base64(key) }) });
    if (r.status !== 200) throw new Error(`range via ${endpoint}: ${r.status} ${r.body}`);
    const value = JSON.parse(r.body).kvs?.[0]?.value;
    return value === undefined ? undefined : Buffer.from(value, "base64").toString();
  };

  test("every member serves a put and a get through the JSON gateway", async () => {
    expect(cluster.endpoints).toEqual(["http://10.213.0.10:2379", "http://10.213.0.11:2379", "http://10.213.0.12:2379"]);
    await put(cluster.endpoints[0]!, "jepsen/smoke", "one");
    for (const endpoint of cluster.endpoints) expect(await get(endpoint, "jepsen/smoke")).toBe("one");
  }, TEST_TIMEOUT_MS);

  test("with one member killed the other two still serve; the restarted member catches up", async () => {
    const [, second, third] = cluster.endpoints as [string, string, string];
    await cluster.kill("etcd1");
    await waitFor("a put with etcd1 down", () => put(second, "jepsen/smoke", "two").then(() => true), 10_000);
    expect(await get(third, "jepsen/smoke")).toBe("two");
    await cluster.restart("etcd1");
    expect(await get(cluster.endpoint("etcd1"), "jepsen/smoke")).toBe("two");
  }, TEST_TIMEOUT_MS);

  test("stop() and destroy() leave nothing behind", async () => {
    await cluster.stop();
    await net.destroy();
    expectAllGone(net);
  }, TEST_TIMEOUT_MS);
});
