// Coordinator flags that would make an election count a replica twice are refused at start-up.

import { expect, test } from "bun:test";
import { parseFlags } from "../../src/cli/flags.ts";
import { coordinatorConfig } from "../../src/coordinator/main.ts";
import { COORDINATOR_FLAGS } from "../../src/coordinator/flag-table.ts";

const config = (args: string[]) => coordinatorConfig(parseFlags(COORDINATOR_FLAGS, args, {}));

test("--peer naming this node itself is refused, by --host:--port or by --advertise", () => {
  expect(() => config(["-p", "5000", "--peer", "127.0.0.1:5001,127.0.0.1:5000"])).toThrow("--peer 127.0.0.1:5000 is this node's own address");
  expect(() => config(["-p", "5000", "--advertise", "10.0.0.1:5000", "--peer", "10.0.0.1:5000"])).toThrow("is this node's own address");
});

test("--peer naming a replica twice is refused", () => {
  expect(() => config(["-p", "5000", "--peer", "127.0.0.1:5001,127.0.0.1:5001"])).toThrow("--peer names 127.0.0.1:5001 twice");
});

test("distinct peers are taken as given", () => {
  expect(config(["-p", "5000", "--peer", "127.0.0.1:5001,127.0.0.1:5002"]).peers.map((p) => p.port)).toEqual([5001, 5002]);
});

test("an IPv6 --host gives an --advertise that parses back (brackets), so peers and etcd readers can dial it", () => {
  expect(config(["--host", "::1", "-p", "5000"]).advertise).toBe("[::1]:5000");
  expect(() => config(["--host", "::1", "-p", "5000", "--peer", "[::1]:5000"])).toThrow("is this node's own address");
});
