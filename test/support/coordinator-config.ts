// One in-process coordinator's config for tests that start a Coordinator
// directly (fuzzers, storage failures, fixtures): open, on a free loopback
// port, a single node in memory, small timers. Each test overrides what it
// is about, so a new config field is added here once, not in every test.

import type { CoordinatorConfig } from "../../src/coordinator/coordinator.ts";
import { TokenTable } from "../../src/net/auth.ts";
import { DEFAULT_NET_LIMITS } from "../../src/net/connection.ts";
import { FUZZ_SCHEDULER_OPTIONS } from "../fuzz/fuzz-support.ts";

export function testCoordinatorConfig(overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    host: "127.0.0.1", port: 0, nodeId: "test-coordinator", scheduler: { ...FUZZ_SCHEDULER_OPTIONS }, limits: DEFAULT_NET_LIMITS, tokens: TokenTable.OPEN, tls: {},
    tickMs: 10, payloadBytesMax: 1 << 20, workerSlotsMax: 16, peers: [], advertise: "127.0.0.1:0", failoverTimeoutMs: 400, maxClockOffsetMs: 500,
    backupTimeoutMs: 0, reconnectMinMs: 20, reconnectMaxMs: 200, snapshotBytesMax: 1 << 30, loadingAppendsBytesMax: 256 * 1024 * 1024,
    dataDir: "", walBytesMax: 1 << 26, fsyncIntervalMs: 0, recoverFromPeer: false,
    ...overrides,
  };
}
