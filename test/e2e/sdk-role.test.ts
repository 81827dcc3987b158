// A client connected straight to a coordinator stays connected when that
// coordinator changes role: the ROLE it announces to every connection is not a
// protocol error for the SDK (it closed with E_BAD_FRAME before).

import { afterEach, expect, test } from "bun:test";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, waitFor } from "./harness.ts";

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
});

test("an SDK client on a backup survives its promotion and submits to it", async () => {
  cluster = new Cluster();
  const nodes = await cluster.replicas(2);
  const { primary, backup } = await cluster.pairInSync(nodes);
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: backup.port });
  try {
    primary.proc.kill("SIGTERM"); // hands over: the backup is promoted and announces ROLE to our connection
    await waitFor("the backup's promotion", async () => ((await cluster!.roleOf(backup.port)) === "primary" ? true : undefined));
    await Bun.sleep(50); // let the ROLE reach our socket before we look
    expect(client.closed).toBe(false);
    const taskId = await client.submit("noop", undefined, { idempotencyKey: "after-role-change" });
    expect(taskId).toBeGreaterThan(0);
  } finally {
    client.close();
  }
});
