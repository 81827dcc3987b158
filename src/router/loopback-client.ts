// The router's REST and gRPC APIs reach the cluster through an SDK client on
// the router's own TCP port, so they take exactly the routes (shard choice,
// failover) that binary clients take: one mechanism, not three.

import type { TlsSettings } from "../net/tls.ts";
import { SchedulerClient } from "../sdk/client.ts";

export interface LoopbackSettings {
  /** The router's own TCP port. */
  routerPort: number;
  /** Names the connection in the router's stats. */
  nodeId: string;
  /** The cluster token: the APIs check their callers' tokens themselves. */
  token: string | undefined;
  tls: TlsSettings;
}

/** One connection to this router, dialed on first use and again after it drops. */
export class LoopbackClient {
  private client: Promise<SchedulerClient> | undefined;

  constructor(private readonly settings: LoopbackSettings) {}

  get(): Promise<SchedulerClient> {
    const current = this.client;
    if (current !== undefined) {
      return current.then((c) => {
        if (!c.closed) return c;
        if (this.client === current) this.client = undefined;
        return this.get();
      });
    }
    const dialing = SchedulerClient.connect(
      { host: "127.0.0.1", port: this.settings.routerPort },
      { nodeId: this.settings.nodeId, token: this.settings.token, tls: this.settings.tls.client, role: "router" },
    );
    this.client = dialing;
    dialing.catch(() => {
      if (this.client === dialing) this.client = undefined;
    });
    return dialing;
  }

  close(): void {
    void this.client?.then((c) => c.close(), () => {});
  }
}
