// Many handshaken, idle client connections held open by the test process:
// each says HELLO, gets its WELCOME, then says nothing. Kept as small as a
// socket and three fields, so ten thousand of them cost little here.

import type { Socket } from "bun";
import { readFileSync } from "node:fs";
import { Kind } from "../../src/protocol/messages.ts";
import { helloFrame } from "./raw-peer.ts";

/** Where a frame's first message kind sits: after the u32 frame length. */
const FIRST_KIND_AT = 4;

interface IdleClient {
  socket: Socket<IdleClient> | undefined;
  /** Kind of the first message the server sent (WELCOME, or ERROR when refused). */
  firstKind: number | undefined;
  closed: boolean;
}

export class IdleClients {
  private readonly clients: IdleClient[] = [];

  get count(): number {
    return this.clients.length;
  }

  get welcomed(): number {
    return this.clients.filter((c) => c.firstKind === Kind.WELCOME && !c.closed).length;
  }

  get closed(): number {
    return this.clients.filter((c) => c.closed).length;
  }

  /**
   * Opens `count` clients against `port`, `batch` at a time: each batch is
   * welcomed (or fails the call) before the next opens, so the server never
   * has more than `batch` connections in their handshake from us. Bounded by
   * `deadlineMs` in all.
   */
  async open(port: number, count: number, batch: number, deadlineMs: number): Promise<void> {
    const hello = helloFrame({ nodeId: "idle" });
    const until = performance.now() + deadlineMs;
    for (let opened = 0; opened < count; opened += batch) {
      const group = await Promise.all(Array.from({ length: Math.min(batch, count - opened) }, () => this.connect(port, hello)));
      while (group.some((c) => c.firstKind === undefined && !c.closed)) {
        if (performance.now() > until) throw new Error(`${this.welcomed} of ${count} idle clients welcomed after ${deadlineMs} ms`);
        await Bun.sleep(5);
      }
      const refused = group.filter((c) => c.firstKind !== Kind.WELCOME);
      if (refused.length > 0) throw new Error(`${refused.length} of batch at ${opened} not welcomed (first kinds: ${[...new Set(refused.map((c) => c.firstKind))]})`);
    }
  }

  closeAll(): void {
    for (const c of this.clients) c.socket?.end();
  }

  private async connect(port: number, hello: Uint8Array): Promise<IdleClient> {
    const client: IdleClient = { socket: undefined, firstKind: undefined, closed: false };
    this.clients.push(client);
    const onClosed = () => void (client.closed = true);
    client.socket = await Bun.connect<IdleClient>({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => void (client.firstKind ??= chunk[FIRST_KIND_AT]),
        end: onClosed,
        close: onClosed,
        error: onClosed,
        connectError: onClosed,
      },
    });
    client.socket.write(hello);
    return client;
  }
}

/**
 * This process's limit on open files. Bun raises its soft limit to the hard
 * limit at start-up, and the servers it spawns inherit that, so what is read
 * here is what both sides have. Undefined where /proc is not there.
 */
export function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft) || undefined;
  } catch {
    return undefined;
  }
}

/** Resident memory of a process, from /proc. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
