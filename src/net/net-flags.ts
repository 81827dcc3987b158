// Flags every server or client shares: network limits, tokens and TLS. One
// table each, so the names, defaults and wording are the same in every binary.

import type { FlagSpec, FlagValues } from "../cli/flags.ts";
import { FRAME_SOFT_MESSAGES } from "../protocol/codec.ts";
import { TokenTable } from "./auth.ts";
import { DEFAULT_NET_LIMITS, type NetLimits } from "./connection.ts";
import { loadClientTls, loadServerAndClientTls, TLS_CA_HELP, TLS_CERT_HELP, TLS_KEY_HELP, type ClientTls, type TlsSettings } from "./tls.ts";

const D = DEFAULT_NET_LIMITS;

export const FRAME_BATCH_MAX_FLAG: FlagSpec = {
  // Was --batch-max on coordinators and routers, a name the worker used for its executors' batch.
  name: "frame-batch-max", type: "int", deprecated: ["batch-max"], default: D.batchMax, min: FRAME_SOFT_MESSAGES,
  help: `most messages in one frame (E_TOO_LARGE past it); our own senders put at most ${FRAME_SOFT_MESSAGES} in one`,
};

/** Limits on what a peer may send or leave unread (all processes). */
export const NET_LIMIT_FLAGS: readonly FlagSpec[] = [
  { name: "frame-bytes-max", type: "int", default: D.frameBytesMax, min: 1024, help: "largest frame accepted; a bigger length prefix closes the connection with E_TOO_LARGE" },
  FRAME_BATCH_MAX_FLAG,
  { name: "pending-bytes-max", type: "int", default: D.pendingBytesMax, min: 65536, help: "unsent bytes per slow peer before it is disconnected (E_SLOW_READER)" },
];

/** The worker's: its former --batch-max was its executors' batch (now --executor-batch-max), not this one. */
export const WORKER_NET_LIMIT_FLAGS: readonly FlagSpec[] = NET_LIMIT_FLAGS.map((f) => (f === FRAME_BATCH_MAX_FLAG ? { ...f, deprecated: undefined } : f));

/**
 * Limits of every port a process serves, framed or HTTP. A flood of idle
 * clients fills --connections-max and no more: workers, routers and peers keep
 * their own slots, and HTTP ports count apart from the framed port.
 */
export const CONNECTION_LIMIT_FLAGS: readonly FlagSpec[] = [
  {
    name: "connections-max", meaning: "connections open at once on a port after their handshake (client connections on the framed port; each HTTP port)", type: "int", default: D.connectionsMax, min: 1,
    help: "client connections (client and top) open at once after their HELLO, and connections per HTTP port; the next is refused with E_TOO_MANY_CONNECTIONS (HTTP: 503)",
  },
  { name: "handshakes-max", meaning: "connections still in their handshake at once, per port", type: "int", default: D.handshakesMax, min: 1, help: "connections still in their handshake at once (per port); past it the oldest of them is closed to make room" },
  { name: "handshake-timeout-ms", meaning: "a connection that has not finished its handshake this long is closed", type: "int", default: D.handshakeTimeoutMs, min: 10, help: "a connection without a valid HELLO (HTTP: a whole first request head) this long is closed (E_HANDSHAKE_TIMEOUT; HTTP: 408)" },
  {
    name: "client-idle-timeout-ms", meaning: "a client connection idle this long is closed (0: never)", type: "int", default: D.clientIdleTimeoutMs, min: 0,
    help: "a client connection that sends nothing and awaits no answer (a task result, a watch) this long is closed with E_IDLE_TIMEOUT; HTTP: no bytes either way (0: never)",
  },
];

/** A process that serves HTTP only (a worker's --metrics-port): the same limits, worded for it. */
export const HTTP_LIMIT_FLAGS: readonly FlagSpec[] = [
  { name: "connections-max", meaning: "connections open at once on a port after their handshake (client connections on the framed port; each HTTP port)", type: "int", default: D.connectionsMax, min: 1, help: "connections open at once on the HTTP port after their first request; the next gets 503 E_TOO_MANY_CONNECTIONS" },
  { name: "handshakes-max", meaning: "connections still in their handshake at once, per port", type: "int", default: D.handshakesMax, min: 1, help: "HTTP connections waiting for their first request at once; past it the oldest of them is closed to make room" },
  { name: "handshake-timeout-ms", meaning: "a connection that has not finished its handshake this long is closed", type: "int", default: D.handshakeTimeoutMs, min: 10, help: "an HTTP connection without a whole first request head this long gets 408 E_HANDSHAKE_TIMEOUT and is closed" },
  { name: "client-idle-timeout-ms", meaning: "a client connection idle this long is closed (0: never)", type: "int", default: D.clientIdleTimeoutMs, min: 0, help: "an HTTP connection with no bytes either way this long is closed (0: never)" },
];

/** Limits only a process with a framed port has (coordinators, routers). */
export const SERVER_LIMIT_FLAGS: readonly FlagSpec[] = [
  ...CONNECTION_LIMIT_FLAGS,
  { name: "peer-connections-max", type: "int", default: D.peerConnectionsMax, min: 1, help: "worker, router and coordinator links open at once: their own slots, which clients never take (E_TOO_MANY_CONNECTIONS past it)" },
];

export function netLimits(v: FlagValues): NetLimits {
  const given = (name: string, fallback: number) => (v[name] as number | undefined) ?? fallback;
  return {
    frameBytesMax: v["frame-bytes-max"] as number,
    batchMax: v["frame-batch-max"] as number,
    pendingBytesMax: v["pending-bytes-max"] as number,
    connectionsMax: given("connections-max", D.connectionsMax),
    peerConnectionsMax: given("peer-connections-max", D.peerConnectionsMax),
    handshakesMax: given("handshakes-max", D.handshakesMax),
    handshakeTimeoutMs: given("handshake-timeout-ms", D.handshakeTimeoutMs),
    clientIdleTimeoutMs: given("client-idle-timeout-ms", D.clientIdleTimeoutMs),
  };
}

/** Coordinators and routers: they check tokens, serve TLS and dial TLS. */
export const SERVER_SECURITY_FLAGS: readonly FlagSpec[] = [
  { name: "tokens", meaning: "file of `<role> <token>` lines this process checks presented tokens against", type: "string", default: "", help: "file of `<role> <token>` lines (roles: read, submit, admin, worker, replica); empty: no auth, for loopback only. Its first replica token is presented to peers" },
  { name: "tls-cert", type: "string", default: "", help: TLS_CERT_HELP },
  { name: "tls-key", type: "string", default: "", help: TLS_KEY_HELP },
  { name: "tls-ca", type: "string", default: "", help: TLS_CA_HELP },
];

/** Workers, clients and top: they present a token and may dial TLS. */
export const CLIENT_SECURITY_FLAGS: readonly FlagSpec[] = [
  { name: "token", type: "string", default: "", help: "token presented in the handshake (never logged)" },
  { name: "tls-ca", type: "string", default: "", help: TLS_CA_HELP },
];

export interface ServerSecurity {
  tokens: TokenTable;
  tls: TlsSettings;
}

/** Reads the tokens file and certificates named by SERVER_SECURITY_FLAGS; throws naming the flag. */
export function serverSecurity(v: FlagValues): ServerSecurity {
  const tokens = TokenTable.load(v.tokens as string);
  if (!tokens.open && tokens.clusterToken === undefined) {
    throw new Error(`--tokens ${v.tokens}: needs a replica token (the cluster secret coordinators and routers present to each other)`);
  }
  return { tokens, tls: loadServerAndClientTls(v["tls-cert"] as string, v["tls-key"] as string, v["tls-ca"] as string) };
}

export interface ClientSecurity {
  token: string | undefined;
  tls: ClientTls | undefined;
}

export function clientSecurity(v: FlagValues): ClientSecurity {
  return { token: (v.token as string) || undefined, tls: loadClientTls(v["tls-ca"] as string) };
}
