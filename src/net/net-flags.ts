// Flags every server or client shares: network limits, tokens and TLS. One
// table each, so the names, defaults and wording are the same in every binary.

import type { FlagSpec, FlagValues } from "../cli/flags.ts";
import { FRAME_SOFT_MESSAGES } from "../protocol/codec.ts";
import { readFileSync } from "node:fs";
import { TokenTable } from "./auth.ts";
import { JWKS_KEYS_MAX, JwtVerifier, JWT_SECRET_CHARS_MIN } from "./jwt.ts";
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

/** JWTs accepted wherever a token is (every process that checks tokens). */
export const JWT_FLAGS: readonly FlagSpec[] = [
  {
    name: "jwt-secret", type: "string", default: "",
    help: `HS256 secret (at least ${JWT_SECRET_CHARS_MIN} characters): accept JWTs it signs as tokens. Visible in ps on the command line: prefer the environment variable or --jwt-secret-file`,
  },
  { name: "jwt-secret-file", type: "string", default: "", help: "file holding the HS256 secret (instead of --jwt-secret; surrounding whitespace ignored)" },
  { name: "jwt-jwks", type: "string", default: "", help: `JWKS file of RS256/ES256 public keys (at most ${JWKS_KEYS_MAX}): accept JWTs they sign as tokens; read again on SIGHUP (key rotation)` },
  { name: "jwt-roles-claim", type: "string", default: "roles", help: "JWT claim naming the token's roles (a string, space-separated roles, or an array): read, submit, admin, worker, replica" },
  { name: "jwt-audience", type: "string", default: "", help: "a JWT's aud must name this (empty: not checked)" },
  { name: "jwt-issuer", type: "string", default: "", help: "a JWT's iss must be this (empty: not checked)" },
  { name: "jwt-leeway-ms", type: "int", default: 30_000, min: 0, max: 600_000, help: "clock skew allowed on a JWT's exp and nbf" },
];

/** The JWT verifier the JWT_FLAGS ask for, or undefined when neither a secret nor a JWKS is given; throws naming the flag. */
export function jwtVerifier(v: FlagValues): JwtVerifier | undefined {
  let secret = v["jwt-secret"] as string;
  const secretFile = v["jwt-secret-file"] as string;
  if (secretFile !== "") {
    if (secret !== "") throw new Error("give --jwt-secret or --jwt-secret-file, not both");
    try {
      secret = readFileSync(secretFile, "utf8").trim();
    } catch (err) {
      throw new Error(`--jwt-secret-file ${secretFile}: ${(err as Error).message}`);
    }
  }
  const jwksPath = v["jwt-jwks"] as string;
  if (secret === "" && jwksPath === "") return undefined;
  return new JwtVerifier({
    secret, jwksPath, rolesClaim: v["jwt-roles-claim"] as string, audience: v["jwt-audience"] as string, issuer: v["jwt-issuer"] as string, leewayMs: v["jwt-leeway-ms"] as number,
  });
}

/** Coordinators and routers: they check tokens, serve TLS and dial TLS. */
export const SERVER_SECURITY_FLAGS: readonly FlagSpec[] = [
  { name: "tokens", meaning: "file of `<role> <token>` lines this process checks presented tokens against", type: "string", default: "", help: "file of `<role> <token>` lines (roles: read, submit, admin, worker, replica); empty (and no --jwt-*): no auth, for loopback only. Its first replica token is presented to peers" },
  ...JWT_FLAGS,
  { name: "tls-cert", type: "string", default: "", help: TLS_CERT_HELP },
  { name: "tls-key", type: "string", default: "", help: TLS_KEY_HELP },
  { name: "tls-ca", type: "string", default: "", help: TLS_CA_HELP },
];

/** Workers, clients and top: they present a token and may dial TLS. */
export const CLIENT_SECURITY_FLAGS: readonly FlagSpec[] = [
  { name: "token", type: "string", default: "", help: "token presented in the handshake: a static token or a JWT (never logged)" },
  { name: "tls-ca", type: "string", default: "", help: TLS_CA_HELP },
];

export interface ServerSecurity {
  tokens: TokenTable;
  tls: TlsSettings;
}

/** Reads the tokens file and certificates named by SERVER_SECURITY_FLAGS; throws naming the flag. */
export function serverSecurity(v: FlagValues): ServerSecurity {
  const tokens = TokenTable.load(v.tokens as string).withJwt(jwtVerifier(v));
  if (!tokens.open && tokens.clusterToken === undefined) {
    const where = v.tokens === "" ? "with --jwt-*, --tokens is still needed: a file with" : `--tokens ${v.tokens}: needs`;
    throw new Error(`${where} a replica token (the cluster secret coordinators and routers present to each other)`);
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
