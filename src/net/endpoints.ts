// Listening and dialing with framed Connections; host:port parsing shared by every binary.

import { socketHandlers, type Connection, type ConnectionHandler, type NetLimits } from "./connection.ts";

export interface Listener {
  readonly port: number;
  stop(): void;
}

export function listen(host: string, port: number, handler: ConnectionHandler, limits: NetLimits, onOpen?: (conn: Connection) => void): Listener {
  const server = Bun.listen<Connection | undefined>({
    hostname: host,
    port,
    socket: socketHandlers(handler, limits, onOpen),
  });
  return { port: server.port, stop: () => server.stop(true) };
}

/** Resolves with the open connection, or rejects if the peer cannot be reached. */
export async function dial(host: string, port: number, handler: ConnectionHandler, limits: NetLimits): Promise<Connection> {
  let opened: Connection | undefined;
  const socket = await Bun.connect<Connection | undefined>({
    hostname: host,
    port,
    socket: socketHandlers(handler, limits, (conn) => (opened = conn)),
  });
  const conn = opened ?? socket.data;
  if (conn === undefined) throw new Error(`connection to ${host}:${port} opened without state`);
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
