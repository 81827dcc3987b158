// A TCP proxy in front of one coordinator, for peer-link faults no signal can
// make: it passes bytes both ways, but reads the coordinator's replies frame by
// frame and can drop the next one carrying log entries (a gap in the log) or
// hold back every one carrying a snapshot (it never arrives).

import type { Socket, TCPSocketListener } from "bun";
import { forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { frame } from "./raw-peer.ts";

/** Peer links carry snapshots: frames this large pass. */
const FRAME_BYTES_MAX = 1 << 30;
/** REPL_APPEND body: u32 epoch | f64 firstIndex | u32 count | entries. */
const APPEND_COUNT_AT = 12;

interface Side {
  /** Bytes the socket did not take yet (written on drain). */
  pending: Uint8Array[];
  other: Socket<Side> | undefined;
  /** Client bytes that came before the upstream connection was open. */
  early: Uint8Array[];
  decoder?: FrameDecoder;
}

export class FrameProxy {
  /** Drop the next frame from the coordinator with a REPL_APPEND of one or more entries. */
  dropNextEntries = false;
  /** Hold back (drop) every frame from the coordinator with a REPL_SNAPSHOT or a part of one. */
  holdSnapshots = false;
  readonly dropped = { entries: 0, snapshots: 0 };
  private readonly listener: TCPSocketListener<Side>;
  private readonly sockets = new Set<Socket<Side>>();
  private readonly reader = new Reader();

  /** Listens on `port` (loopback) and connects each client to `targetPort`. */
  constructor(port: number, targetPort: number) {
    const onClose = (s: Socket<Side>) => {
      this.sockets.delete(s);
      s.data.other?.end();
    };
    this.listener = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (client) => {
          client.data = { pending: [], other: undefined, early: [] };
          this.sockets.add(client);
          void this.connectUpstream(client, targetPort);
        },
        data: (client, chunk) => {
          const upstream = client.data.other;
          if (upstream === undefined) client.data.early.push(new Uint8Array(chunk));
          else send(upstream, chunk);
        },
        drain: flush,
        close: onClose,
        error: onClose,
      },
    });
  }

  stop(): void {
    for (const s of this.sockets) s.end();
    this.listener.stop(true);
  }

  private async connectUpstream(client: Socket<Side>, targetPort: number): Promise<void> {
    const onClose = (s: Socket<Side>) => {
      this.sockets.delete(s);
      client.end();
    };
    try {
      const upstream = await Bun.connect<Side>({
        hostname: "127.0.0.1",
        port: targetPort,
        data: { pending: [], other: client, early: [], decoder: new FrameDecoder(FRAME_BYTES_MAX) },
        socket: {
          data: (s, chunk) => s.data.decoder!.push(chunk, (body) => {
            if (this.passes(body)) send(client, frame(body));
          }),
          drain: flush,
          close: onClose,
          error: onClose,
        },
      });
      this.sockets.add(upstream);
      client.data.other = upstream;
      for (const bytes of client.data.early) send(upstream, bytes);
      client.data.early = [];
    } catch {
      client.end();
    }
  }

  /** Whether a frame from the coordinator goes on to the client. */
  private passes(body: Uint8Array): boolean {
    let snapshot = false;
    let entries = false;
    forEachMessage(body, this.reader, (kind, r) => {
      if (kind === Kind.REPL_SNAPSHOT || kind === Kind.REPL_SNAPSHOT_PART) snapshot = true;
      if (kind === Kind.REPL_APPEND && r.view.getUint32(r.pos + APPEND_COUNT_AT, true) > 0) entries = true;
    });
    if (snapshot && this.holdSnapshots) {
      this.dropped.snapshots++;
      return false;
    }
    if (entries && this.dropNextEntries) {
      this.dropNextEntries = false;
      this.dropped.entries++;
      return false;
    }
    return true;
  }
}

function send(socket: Socket<Side>, bytes: Uint8Array): void {
  if (socket.data.pending.length > 0) {
    socket.data.pending.push(bytes.slice());
    return;
  }
  const written = socket.write(bytes);
  if (written < bytes.length) socket.data.pending.push(bytes.slice(Math.max(0, written)));
}

function flush(socket: Socket<Side>): void {
  while (socket.data.pending.length > 0) {
    const bytes = socket.data.pending[0]!;
    const written = socket.write(bytes);
    if (written < bytes.length) {
      socket.data.pending[0] = bytes.slice(Math.max(0, written));
      return;
    }
    socket.data.pending.shift();
  }
}
