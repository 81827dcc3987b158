// The static-mode replica set (src/coordinator/replica-set.ts): when a backup
// counts as lagging and is dropped.

import { describe, expect, test } from "bun:test";
import { Logger } from "../../src/cli/log.ts";
import { ReplicaSet } from "../../src/coordinator/replica-set.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter } from "../../src/protocol/codec.ts";

const BACKUP_TIMEOUT_MS = 1_000;
const TICK_MS = 50;

function conn(id: number): Connection & { failedWith: string | undefined } {
  const c = {
    id, state: { nodeId: `b${id}` }, writer: new FrameWriter(64), failedWith: undefined as string | undefined,
    writable: () => true, queueFlush() {}, close() {},
    fail(code: string) {
      c.failedWith = code;
    },
  };
  return c as unknown as Connection & { failedWith: string | undefined };
}

describe("ReplicaSet lag", () => {
  test("a backup that holds every entry is not dropped by the first entry after a quiet spell longer than the timeout", () => {
    const replicas = new ReplicaSet(BACKUP_TIMEOUT_MS, new Logger("test", "error", () => {}));
    const backup = conn(1);
    replicas.add(backup, 10, 0);
    replicas.ack(backup, 10, 5);
    // Nothing logged for five timeouts; the primary still pumps (and so commits) every tick.
    let now = 5;
    for (; now < 5 * BACKUP_TIMEOUT_MS; now += TICK_MS) expect(replicas.commit(10, now)).toBe(10);
    expect(replicas.commit(11, now)).toBe(10);
    expect({ inSync: replicas.inSyncCount, failed: backup.failedWith }).toEqual({ inSync: 1, failed: undefined });
    replicas.ack(backup, 11, now + 5);
    expect(replicas.commit(11, now + 10)).toBe(11);
  });

  test("a backup that owes an entry and acknowledges nothing for the timeout is dropped", () => {
    const replicas = new ReplicaSet(BACKUP_TIMEOUT_MS, new Logger("test", "error", () => {}));
    const backup = conn(1);
    replicas.add(backup, 10, 0);
    replicas.ack(backup, 10, 5);
    expect(replicas.commit(11, 10)).toBe(10);
    // Its clock runs from its last acknowledgement: exactly the timeout is kept, a ms more is not.
    expect(replicas.commit(11, 5 + BACKUP_TIMEOUT_MS)).toBe(10);
    expect(replicas.inSyncCount).toBe(1);
    replicas.commit(11, 6 + BACKUP_TIMEOUT_MS);
    expect({ inSync: replicas.inSyncCount, failed: backup.failedWith }).toEqual({ inSync: 0, failed: "E_UNAVAILABLE" });
  });
});

describe("ReplicaSet: a backup loading a big snapshot", () => {
  const quiet = () => new ReplicaSet(BACKUP_TIMEOUT_MS, new Logger("test", "error", () => {}));

  test("is alive while it restores parts, however long the load takes, and dropped when it stops", () => {
    const replicas = quiet();
    const backup = conn(1);
    replicas.add(backup, 10, 0);
    let last = 0;
    for (let now = 0; now < 10 * BACKUP_TIMEOUT_MS; now += TICK_MS) {
      replicas.progress(backup, now);
      replicas.commit(10 + now, now);
      last = now;
    }
    expect(backup.failedWith).toBeUndefined();
    replicas.commit(20_000, last + BACKUP_TIMEOUT_MS);
    expect(backup.failedWith).toBeUndefined(); // exactly the timeout is kept
    replicas.commit(20_000, last + BACKUP_TIMEOUT_MS + 1);
    expect(backup.failedWith).toBe("E_UNAVAILABLE");
  });

  test("holds commits while it loads, as any backup catching up does: counted in sync later, it must hold all that was acknowledged", () => {
    const replicas = quiet();
    const backup = conn(1);
    replicas.add(backup, 10, 0);
    for (let now = 0; now < 5 * BACKUP_TIMEOUT_MS; now += TICK_MS) {
      replicas.progress(backup, now);
      expect(replicas.commit(40, now)).toBe(0);
    }
    replicas.ack(backup, 10, 5 * BACKUP_TIMEOUT_MS);
    expect(replicas.commit(40, 5 * BACKUP_TIMEOUT_MS)).toBe(10);
    expect(replicas.inSyncCount).toBe(1);
  });
});
