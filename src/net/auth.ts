// Token authentication and role-based access, the same on every port.
//
// A tokens file maps secrets to roles, one `<role> <token>` per line (`#`
// starts a comment). Roles and what they allow:
//
//   read     stats, task status and results, watching a task, listing the DLQ,
//            task events (SUBSCRIBE, GET /v1/events), /metrics
//   submit   read + submitting tasks and workflows, cancelling
//   admin    submit + requeueing and purging dead letters
//   worker   connecting to a coordinator as a worker (and nothing else)
//   replica  the cluster secret: coordinators peering with each other, routers
//            talking to coordinators on their clients' behalf (everything)
//
// With no tokens configured the table is open: every connection may do
// everything (meant for loopback; the binaries warn when bound elsewhere).
// Tokens are compared by their SHA-256 digests with a constant-time compare,
// and never logged. A JWT (jwt.ts) may stand in for a static token anywhere:
// its roles claim names the same roles.

import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, type Role } from "../protocol/messages.ts";
import { looksLikeJwt, type JwtVerifier } from "./jwt.ts";

export const PERMISSIONS = ["read", "submit", "admin", "worker", "replica"] as const;
export type Permission = (typeof PERMISSIONS)[number];
export type Grants = ReadonlySet<Permission>;

/** What each role in a tokens file is allowed: the roles nest, except worker. */
const GRANTS_OF_ROLE: Record<Permission, Grants> = {
  read: new Set(["read"]),
  submit: new Set(["read", "submit"]),
  admin: new Set(["read", "submit", "admin"]),
  worker: new Set(["worker"]),
  replica: new Set(["read", "submit", "admin", "replica"]),
};

export const ALL_GRANTS: Grants = new Set(PERMISSIONS);

/** Tokens shorter than this are refused at start-up: they could be guessed. */
export const TOKEN_CHARS_MIN = 16;

/** The permission each connection role needs just to complete the handshake. */
const HELLO_NEEDS: Record<Role, Permission> = {
  client: "read",
  top: "read",
  worker: "worker",
  coordinator: "replica",
  router: "replica",
};

/** The permission each message kind from a connection needs (kinds not listed need none beyond the handshake). */
const KIND_NEEDS = new Map<number, Permission>([
  [Kind.SUBMIT, "submit"],
  [Kind.SUBMIT_BATCH, "submit"],
  [Kind.WORKFLOW, "submit"],
  [Kind.CANCEL, "submit"],
  [Kind.STATS_REQUEST, "read"],
  [Kind.TASK_QUERY, "read"],
  [Kind.WATCH, "read"],
  [Kind.DLQ_LIST, "read"],
  [Kind.SUBSCRIBE, "read"],
  [Kind.UNSUBSCRIBE, "read"],
  [Kind.DLQ_REQUEUE, "admin"],
  [Kind.DLQ_PURGE, "admin"],
  [Kind.RESULT, "worker"],
  [Kind.HEARTBEAT, "worker"],
  [Kind.PROGRESS, "worker"],
  [Kind.DRAIN, "worker"],
  [Kind.CREDIT, "worker"],
  [Kind.REPL_SYNC, "replica"],
  [Kind.FOREIGN_WAITS, "replica"],
  [Kind.PARENT_ENDED, "replica"],
  [Kind.REPL_ACK, "replica"],
  [Kind.REPL_SNAPSHOT_ACK, "replica"],
]);

interface Entry {
  digest: Buffer;
  role: Permission;
}

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();

export class TokenTable {
  private constructor(
    private readonly entries: readonly Entry[],
    /** The first replica token: what this process presents to its own peers and coordinators. */
    readonly clusterToken: string | undefined,
    /** Verifies JWTs presented instead of a static token (--jwt-secret, --jwt-jwks). */
    readonly jwt?: JwtVerifier,
  ) {}

  /** The same table that also accepts JWTs verified by `jwt`. */
  withJwt(jwt: JwtVerifier | undefined): TokenTable {
    return jwt === undefined ? this : new TokenTable(this.entries, this.clusterToken, jwt);
  }

  static readonly OPEN = new TokenTable([], undefined);

  /** Reads a tokens file; "" gives the open table. Throws with the path on any problem. */
  static load(path: string): TokenTable {
    if (path === "") return TokenTable.OPEN;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`cannot read tokens file ${path}: ${(err as Error).message}`);
    }
    return TokenTable.parse(text, `tokens file ${path}`);
  }

  /** Parses a tokens file's text; throws with the line number on a bad line. */
  static parse(text: string, source = "tokens file"): TokenTable {
    const entries: Entry[] = [];
    let clusterToken: string | undefined;
    text.split("\n").forEach((raw, i) => {
      const line = raw.replace(/#.*/, "").trim();
      if (line === "") return;
      const [role, token, extra] = line.split(/\s+/);
      if (!PERMISSIONS.includes(role as Permission) || token === undefined || extra !== undefined) {
        throw new Error(`${source} line ${i + 1}: expected "<role> <token>" with role one of ${PERMISSIONS.join(", ")}`);
      }
      if (token.length < TOKEN_CHARS_MIN) throw new Error(`${source} line ${i + 1}: a token needs at least ${TOKEN_CHARS_MIN} characters`);
      entries.push({ digest: digest(token), role: role as Permission });
      if (role === "replica") clusterToken ??= token;
    });
    if (entries.length === 0) throw new Error(`${source} holds no tokens (leave it out to run open)`);
    return new TokenTable(entries, clusterToken);
  }

  /** True when no tokens (static or JWT) are configured: everyone may do everything. */
  get open(): boolean {
    return this.entries.length === 0 && this.jwt === undefined;
  }

  /**
   * What a presented token allows: every permission when open, nothing
   * (undefined) for a missing or unknown token. Every entry is compared, so
   * the time taken says nothing about which one (if any) matched.
   */
  grantsOf(token: string | undefined): Grants | undefined {
    const found = this.authenticate(token);
    return typeof found === "string" ? undefined : found;
  }

  /** Like grantsOf, but says why a token is refused (for the error sent back; never the token itself). */
  authenticate(token: string | undefined): Grants | string {
    if (this.open) return ALL_GRANTS;
    const presented = digest(typeof token === "string" ? token : "");
    let match: Permission | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, presented) && match === undefined) match = e.role;
    }
    if (match !== undefined) return GRANTS_OF_ROLE[match];
    if (this.jwt === undefined || typeof token !== "string" || !looksLikeJwt(token)) return "the token is not valid here";
    const checked = this.jwt.check(token);
    return "problem" in checked ? checked.problem : grantsOfRoles(checked.roles);
  }
}

/** What a JWT's roles allow together; names that are not our roles allow nothing. */
function grantsOfRoles(roles: readonly string[]): Grants {
  const grants = new Set<Permission>();
  for (const role of roles) {
    if (PERMISSIONS.includes(role as Permission)) for (const p of GRANTS_OF_ROLE[role as Permission]) grants.add(p);
  }
  return grants;
}

/**
 * The grants of a HELLO's token for the role it claims; throws E_UNAUTHORIZED
 * (which closes the connection) when the token is missing, unknown, or does
 * not allow that role.
 */
export function authorizeHello(table: TokenTable, role: Role, token: unknown): Grants {
  const grants = table.authenticate(typeof token === "string" ? token : undefined);
  if (typeof grants === "string") {
    throw new ProtocolError("E_UNAUTHORIZED", token === undefined || token === "" ? `a ${role} must present a token` : grants);
  }
  const needed = HELLO_NEEDS[role];
  if (!grants.has(needed)) throw new ProtocolError("E_UNAUTHORIZED", `the token does not allow connecting as a ${role} (needs the ${needed} role)`);
  return grants;
}

/** Throws E_UNAUTHORIZED (closing the connection) if `grants` do not allow a message of `kind`. */
export function authorizeKind(grants: Grants, kind: number, kindName: string): void {
  const needed = KIND_NEEDS.get(kind);
  if (needed !== undefined && !grants.has(needed)) {
    throw new ProtocolError("E_UNAUTHORIZED", `${kindName} needs the ${needed} role`);
  }
}

/**
 * HTTP: the grants of a request's `Authorization: Bearer <token>` when they
 * include `needed`; otherwise the status and error to answer with (401 for a
 * missing or unknown token, 403 for a token without that role).
 */
export function authorizeHttp(table: TokenTable, authorization: string | null, needed: Permission): { status: 401 | 403; message: string } | undefined {
  if (table.open) return undefined;
  const match = bearerToken(authorization);
  const grants = table.authenticate(match?.[1]);
  if (typeof grants === "string") return { status: 401, message: match ? grants.replace("the token", "the bearer token") : "send Authorization: Bearer <token>" };
  if (!grants.has(needed)) return { status: 403, message: `this needs a token with the ${needed} role` };
  return undefined;
}

/** What a request's `Authorization: Bearer <token>` allows (everything when open; undefined: a missing or unknown token). */
export function httpGrants(table: TokenTable, authorization: string | null): Grants | undefined {
  return table.grantsOf(bearerToken(authorization)?.[1]);
}

const bearerToken = (authorization: string | null) => /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");

/** Whether a listen address is only reachable from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
}
