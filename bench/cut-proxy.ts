// A TCP forwarder on loopback that can be cut: put in front of etcd for one
// coordinator only, it lets the failover benchmark partition that coordinator
// from etcd while everything else (peers, router, worker) still reaches it. A
// cut either drops every connection and refuses new ones ("reset": the far end
// sees errors at once) or keeps them open and forwards nothing ("blackhole": the
// far end sees only timeouts, as behind a dropped route).

import type { Socket, TCPSocketListener } from "bun";

export type CutMode = "reset" | "blackhole";
export const CUT_MODES: readonly CutMode[] = ["reset", "blackhole"];

interface Side {
  other: Socket<Side> | undefined;
  /** Bytes this socket did not take yet, written on drain. */
  pending: Uint8Array[];
  /** Client bytes that came before the upstream connection was open. */
  early: Uint8Array[];
}

const newSide = (): Side => ({ other: undefined, pending: [], early: [] });

function send(to: Socket<Side>, bytes: Uint8Array): void {
  if (to.data.pending.length > 0) return void to.data.pending.push(bytes.slice());
  const written = to.write(bytes);
  if (written < bytes.length) to.data.pending.push(bytes.slice(written));
}

function drain(s: Socket<Side>): void {
  while (s.data.pending.length > 0) {
    const head = s.data.pending[0]!;
    const written = s.write(head);
    if (written < head.length) {
      s.data.pending[0] = head.subarray(written);
      return;
    }
    s.data.pending.shift();
  }
}

export class CutProxy {
  private readonly listener: TCPSocketListener<Side>;
  private readonly sockets = new Set<Socket<Side>>();
  private mode: CutMode | undefined;

  /** Listens on a free loopback port and forwards each connection to `target` (host:port). */
  constructor(target: { host: string; port: number }) {
    const forget = (s: Socket<Side>) => {
      this.sockets.delete(s);
      s.data.other?.end();
    };
    this.listener = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (client) => {
          client.data = newSide();
          if (this.mode === "reset") return void client.terminate();
          this.sockets.add(client);
          if (this.mode === "blackhole") return; // held open, never forwarded
          void Bun.connect<Side>({
            hostname: target.host,
            port: target.port,
            data: newSide(),
            socket: {
              open: (upstream) => {
                this.sockets.add(upstream);
                upstream.data.other = client;
                client.data.other = upstream;
                for (const bytes of client.data.early) send(upstream, bytes);
                client.data.early = [];
              },
              data: (_upstream, bytes) => {
                if (this.mode === undefined) send(client, bytes);
              },
              drain,
              close: forget,
              connectError: () => void client.end(),
            },
          });
        },
        data: (client, bytes) => {
          if (this.mode !== undefined) return; // a blackhole swallows what it gets
          if (client.data.other === undefined) client.data.early.push(bytes.slice());
          else send(client.data.other, bytes);
        },
        drain,
        close: forget,
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  cut(mode: CutMode): void {
    this.mode = mode;
    if (mode === "reset") for (const s of this.sockets) s.terminate();
  }

  heal(): void {
    this.mode = undefined;
  }

  stop(): void {
    for (const s of this.sockets) s.terminate();
    this.listener.stop(true);
  }
}
