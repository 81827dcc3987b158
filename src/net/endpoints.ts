// Listening and dialing with framed Connections; host:port parsing shared by every binary.

import { socketHandlers, type Connection, type ConnectionHandler, type NetLimits } from "./connection.ts";
import type { ClientTls, ServerTls } from "./tls.ts";

export interface Listener {
  readonly port: number;
  stop(): void;
}

/**
 * Accepts framed connections. Each must complete its HELLO (the owner calls
 * conn.handshakeDone()) within limits.handshakeTimeoutMs; past
 * limits.connectionsMax open at once, a new one gets E_TOO_MANY_CONNECTIONS
 * and is closed.
 */
export function listen(host: string, port: number, handler: ConnectionHandler, limits: NetLimits, onOpen?: (conn: Connection) => void, tls?: ServerTls): Listener {
  let open = 0;
  const server = Bun.listen<Connection | undefined>({
    hostname: host,
    port,
    tls,
    socket: socketHandlers(handler, limits, {
      onOpen(conn) {
        if (open >= limits.connectionsMax) {
          conn.fail("E_TOO_MANY_CONNECTIONS", `this server accepts at most ${limits.connectionsMax} connections`);
          return;
        }
        open++;
        conn.state.counted = true;
        conn.expectHandshake();
        onOpen?.(conn);
      },
      onClosed(conn) {
        if (conn.state.counted === true) open--;
      },
    }),
  });
  return { port: server.port, stop: () => server.stop(true) };
}

/**
 * Resolves with the open connection (over TLS, once the server's certificate
 * verified against tls.ca), or rejects if the peer cannot be reached or its
 * certificate does not verify.
 */
export async function dial(host: string, port: number, handler: ConnectionHandler, limits: NetLimits, tls?: ClientTls): Promise<Connection> {
  let opened: Connection | undefined;
  let verified: ((error: Error | undefined) => void) | undefined;
  const handshake = tls === undefined ? undefined : new Promise<Error | undefined>((resolve) => (verified = resolve));
  const socket = await Bun.connect<Connection | undefined>({
    hostname: host,
    port,
    tls: tls === undefined ? undefined : { ca: tls.ca },
    socket: socketHandlers(handler, limits, {
      onOpen: (conn) => (opened = conn),
      onTlsHandshake: (_conn, error) => verified?.(error),
      onClosed: () => verified?.(new Error("closed during the TLS handshake")),
    }),
  });
  const conn = opened ?? socket.data;
  if (conn === undefined) throw new Error(`connection to ${host}:${port} opened without state`);
  const error = await handshake;
  if (error !== undefined) throw new Error(`TLS to ${host}:${port}: ${error.message}`);
  return conn;
}

export interface HostPort {
  host: string;
  port: number;
}

/** "host:port", "[::1]:port" or ":port" / "port" (host defaults). */
export function parseHostPort(text: string, defaultHost = "127.0.0.1"): HostPort {
  const trimmed = text.trim();
  let host = defaultHost;
  let portText = trimmed;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(trimmed);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2]!;
  } else if (trimmed.indexOf(":") !== trimmed.lastIndexOf(":")) {
    throw new Error(`"${text}" looks like a bare IPv6 address: write it as [address]:port`);
  } else if (trimmed.includes(":")) {
    const at = trimmed.lastIndexOf(":");
    host = trimmed.slice(0, at) || defaultHost;
    portText = trimmed.slice(at + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new Error(`"${text}" is not host:port with a port from 1 to 65535`);
  return { host, port };
}

export function parseHostPortList(text: string, defaultHost = "127.0.0.1"): HostPort[] {
  const list = text.split(",").filter((s) => s.trim() !== "").map((s) => parseHostPort(s, defaultHost));
  if (list.length === 0) throw new Error(`"${text}" names no host:port`);
  return list;
}
