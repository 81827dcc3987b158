// Listening and dialing with framed Connections; host:port parsing shared by every binary.

import { ProtocolError } from "../protocol/errors.ts";
import type { Role } from "../protocol/messages.ts";
import { socketHandlers, type Connection, type ConnectionHandler, type NetLimits } from "./connection.ts";
import { ConnectionSlots, slotKindOf, type IdleClock } from "./connection-slots.ts";
import type { ClientTls, ServerTls } from "./tls.ts";

export interface Listener {
  readonly port: number;
  stop(): void;
}

/** The slot limits a listener applies, from the network limits. */
export function slotLimits(limits: NetLimits) {
  return { handshakesMax: limits.handshakesMax, clientsMax: limits.connectionsMax, peersMax: limits.peerConnectionsMax };
}

/**
 * Accepts framed connections. Each must complete its HELLO (the owner calls
 * conn.handshakeDone(role)) within limits.handshakeTimeoutMs; it then takes a
 * client slot (limits.connectionsMax) or a peer slot (limits.peerConnectionsMax)
 * by its role, or is refused with E_TOO_MANY_CONNECTIONS naming the limit.
 * Clients idle for limits.clientIdleTimeoutMs are closed with E_IDLE_TIMEOUT.
 */
export function listen(host: string, port: number, handler: ConnectionHandler, limits: NetLimits, onOpen?: (conn: Connection) => void, tls?: ServerTls): Listener {
  const slots = new ConnectionSlots<Connection>(slotLimits(limits));
  const admit = (conn: Connection, role: Role): void => {
    const refusal = slots.identify(conn, slotKindOf(role));
    if (refusal !== undefined) throw new ProtocolError("E_TOO_MANY_CONNECTIONS", refusal);
  };
  const server = listenOrSayWhy(host, port, () => Bun.listen<Connection | undefined>({
    hostname: host,
    port,
    tls,
    socket: socketHandlers(handler, limits, {
      onOpen(conn) {
        slots.open(conn)?.fail("E_TOO_MANY_CONNECTIONS", `closed before its HELLO to make room: ${limits.handshakesMax} newer connections were in their handshake (--handshakes-max)`);
        conn.expectHandshake((role) => admit(conn, role));
        onOpen?.(conn);
      },
      onClosed: (conn) => slots.close(conn),
    }),
  }));
  const stopSweep = sweepIdleClients(limits.clientIdleTimeoutMs, slots.clientConnections, (conn, idleMs) => {
    conn.fail("E_IDLE_TIMEOUT", `no request and no answer awaited for ${Math.round(idleMs)} ms (--client-idle-timeout-ms ${limits.clientIdleTimeoutMs}); connect again when needed`);
  });
  return {
    port: server.port,
    stop: () => {
      stopSweep();
      server.stop(true);
    },
  };
}

/**
 * Runs `listen`; when it fails, says why in words an operator acts on (Bun says
 * only "Failed to listen at HOST"): the port is taken, the address is not this
 * machine's, or the port needs privileges.
 */
export function listenOrSayWhy<T>(host: string, port: number, listen: () => T): T {
  try {
    return listen();
  } catch (err) {
    throw whyCannotListen(host, port, err as Error, (err as { code?: unknown }).code);
  }
}

/** The error listenOrSayWhy throws, for a listener that fails another way (a callback); `code` is the errno name if known. */
export function whyCannotListen(host: string, port: number, err: Error, code: unknown): Error {
  const where = formatHostPort(host, port);
  if (code === "EADDRINUSE") return new Error(`cannot listen on ${where}: the port is in use (another process listens there; pick another port or stop it)`);
  if (code === "EADDRNOTAVAIL") return new Error(`cannot listen on ${where}: ${host} is not an address of this machine`);
  if (code === "EACCES") return new Error(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
  return new Error(`cannot listen on ${where}: ${err.message}${typeof code === "string" ? ` (${code})` : ""}`);
}

/**
 * Every so often, closes the clients idle for timeoutMs or longer (see
 * IdleClock): one timer per listener, not one per connection, and a read
 * costs one store. A client is closed within two sweeps (each a quarter of
 * timeoutMs, at most 1 s) past timeoutMs. Returns the stop function.
 */
export function sweepIdleClients<T extends { readonly idle: IdleClock }>(timeoutMs: number, clients: ReadonlySet<T>, close: (conn: T, idleMs: number) => void): () => void {
  if (timeoutMs <= 0) return () => {};
  const timer = setInterval(() => {
    const now = performance.now();
    for (const conn of clients) {
      const idleMs = conn.idle.sweep(now);
      if (idleMs >= timeoutMs) close(conn, idleMs);
    }
  }, Math.max(10, Math.min(1_000, timeoutMs / 4)));
  return () => clearInterval(timer);
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

/** The inverse of parseHostPort: an IPv6 host in brackets, so the result parses back. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseHostPortList(text: string, defaultHost = "127.0.0.1"): HostPort[] {
  const list = text.split(",").filter((s) => s.trim() !== "").map((s) => parseHostPort(s, defaultHost));
  if (list.length === 0) throw new Error(`"${text}" names no host:port`);
  return list;
}
