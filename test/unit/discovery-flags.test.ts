// --etcd on the router and the worker: without it the old default coordinator
// stays; with it the static list is optional; with both, both are used.

import { describe, expect, test } from "bun:test";
import { parseFlags } from "../../src/cli/flags.ts";
import { DEFAULT_ETCD_PREFIX } from "../../src/net/etcd-keys.ts";
import { routerConfig } from "../../src/router/main.ts";
import { ROUTER_FLAGS } from "../../src/router/flag-table.ts";
import { workerConfig } from "../../src/worker/main.ts";
import { WORKER_FLAGS } from "../../src/worker/flag-table.ts";

const router = (argv: string[]) => routerConfig(parseFlags(ROUTER_FLAGS, argv, {}));
const worker = (argv: string[]) => workerConfig(parseFlags(WORKER_FLAGS, argv, {}), "executor.js");
const at = (port: number) => ({ host: "127.0.0.1", port });

describe("router", () => {
  test("no -s and no --etcd: the coordinator on the default port", () => {
    expect(router([]).coordinators).toEqual([at(5000)]);
    expect(router([]).etcd).toBeUndefined();
  });

  test("--etcd alone: no static coordinator, the default prefix", () => {
    const c = router(["--etcd", "127.0.0.1:2379,http://10.0.0.2:2379"]);
    expect(c.coordinators).toEqual([]);
    expect(c.etcd).toEqual({ endpoints: ["http://127.0.0.1:2379", "http://10.0.0.2:2379"], prefix: DEFAULT_ETCD_PREFIX });
  });

  test("-s and --etcd together, and a prefix without its trailing slash", () => {
    const c = router(["-s", "127.0.0.1:5100", "--etcd", "127.0.0.1:2379", "--etcd-prefix", "/prod/"]);
    expect(c.coordinators).toEqual([at(5100)]);
    expect(c.etcd?.prefix).toBe("/prod");
  });

  test("a prefix must be absolute", () => {
    expect(() => router(["--etcd", "127.0.0.1:2379", "--etcd-prefix", "prod"])).toThrow("must start with /");
  });
});

describe("worker", () => {
  test("no -p, no --servers, no --etcd: the coordinator on the default port", () => {
    expect(worker([]).coordinators).toEqual([at(5000)]);
    expect(worker(["-H", "10.0.0.1"]).coordinators).toEqual([{ host: "10.0.0.1", port: 5000 }]);
  });

  test("--etcd alone serves only what etcd names", () => {
    const c = worker(["--etcd", "127.0.0.1:2379"]);
    expect(c.coordinators).toEqual([]);
    expect(c.etcd?.endpoints).toEqual(["http://127.0.0.1:2379"]);
  });

  test("--etcd with -p or --servers keeps those too", () => {
    expect(worker(["--etcd", "127.0.0.1:2379", "-p", "5200"]).coordinators).toEqual([at(5200)]);
    expect(worker(["--etcd", "127.0.0.1:2379", "--servers", "127.0.0.1:5300,127.0.0.1:5301"]).coordinators).toEqual([at(5300), at(5301)]);
  });
});
