// JSON Web Tokens beside the static tokens file: an identity provider signs a
// token (HS256 with a shared secret, or RS256/ES256 with keys published as a
// JWKS file) whose roles claim names our roles; every port that takes a token
// takes such a JWT too; it must carry exp, and name its key (kid) when several
// keys could verify it. Verification (signature, exp, nbf, aud, iss) is
// jsonwebtoken's: it verifies synchronously, which the binary handshake needs
// (the HELLO is authorized inside the frame dispatch, before the next frame of
// the same read). JWKs become keys through node:crypto.

import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import jwt from "jsonwebtoken";

/** An HS256 secret shorter than this is refused at start-up: 256 bits, as RFC 7518 asks of HS256 keys. */
export const JWT_SECRET_CHARS_MIN = 32;

/** Most keys taken from one JWKS file (a provider publishes a handful during a rotation). */
export const JWKS_KEYS_MAX = 100;

export interface JwtSettings {
  /** HS256 shared secret ("" for none). */
  secret: string;
  /** JWKS file of RS256/ES256 public keys ("" for none); read again by reload(). */
  jwksPath: string;
  /** The claim holding the role or roles: a string, space-separated roles, or an array of strings. */
  rolesClaim: string;
  /** Required `aud` ("" for no check). */
  audience: string;
  /** Required `iss` ("" for no check). */
  issuer: string;
  /** Clock skew allowed on exp and nbf. */
  leewayMs: number;
}

interface PublicKey {
  kid: string | undefined;
  key: KeyObject;
  algorithm: "RS256" | "ES256";
}

/** What a presented token is: its role names, or why it was refused. */
export type JwtCheck = { roles: string[] } | { problem: string };

/** Three base64url parts: worth verifying as a JWT (anything else is not one, and is not logged or parsed). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export class JwtVerifier {
  private keys: readonly PublicKey[];

  constructor(private readonly settings: JwtSettings) {
    if (settings.secret !== "" && settings.secret.length < JWT_SECRET_CHARS_MIN) {
      throw new Error(`--jwt-secret: needs at least ${JWT_SECRET_CHARS_MIN} characters`);
    }
    this.keys = settings.jwksPath === "" ? [] : readJwks(settings.jwksPath);
  }

  /**
   * Reads the JWKS file again (SIGHUP): tokens signed with the new keys are
   * accepted from now on. Connections already authorized keep their grants.
   * Throws (keeping the old keys) when the file is missing or malformed.
   */
  reload(): number {
    if (this.settings.jwksPath === "") return 0;
    this.keys = readJwks(this.settings.jwksPath);
    return this.keys.length;
  }

  get reloadable(): boolean {
    return this.settings.jwksPath !== "";
  }

  check(token: string): JwtCheck {
    let decoded: jwt.Jwt | null;
    try {
      decoded = jwt.decode(token, { complete: true });
    } catch {
      decoded = null;
    }
    if (decoded === null) return { problem: "the JWT is malformed" };
    const header = decoded.header;
    const candidates = this.candidatesFor(header);
    if ("problem" in candidates) return candidates;
    if (candidates.length === 0) return { problem: `no key here verifies a JWT signed with ${String(header.alg)}${header.kid ? ` (kid ${header.kid})` : ""}` };
    // jsonwebtoken accepts a token without exp, which would never expire; expiry is
    // what bounds a stolen JWT (docs/security.md). Refused before any signature work.
    if (typeof decoded.payload !== "object" || decoded.payload.exp === undefined) return { problem: "JWT refused: the token has no exp" };
    let problem = "";
    for (const { key, algorithm } of candidates) {
      try {
        const claims = jwt.verify(token, key, {
          algorithms: [algorithm],
          clockTolerance: Math.ceil(this.settings.leewayMs / 1000),
          ...(this.settings.audience !== "" ? { audience: this.settings.audience } : {}),
          ...(this.settings.issuer !== "" ? { issuer: this.settings.issuer } : {}),
        });
        return { roles: rolesIn(typeof claims === "object" ? claims[this.settings.rolesClaim] : undefined) };
      } catch (err) {
        problem = `JWT refused: ${(err as Error).message}`;
      }
    }
    return { problem };
  }

  /**
   * The keys a token may be signed with: by its alg, then the keys its kid names, else
   * the keys of that alg its kid does not rule out. The latter must be one key: anyone
   * may present a token, and one naming no key would cost a signature check against
   * every key of its alg (up to JWKS_KEYS_MAX RSA verifications a request).
   */
  private candidatesFor(header: jwt.JwtHeader): Array<{ key: KeyObject | string; algorithm: jwt.Algorithm }> | { problem: string } {
    if (header.alg === "HS256") return this.settings.secret === "" ? [] : [{ key: this.settings.secret, algorithm: "HS256" }];
    const ofAlg = this.keys.filter((k) => k.algorithm === header.alg);
    const named = header.kid === undefined ? [] : ofAlg.filter((k) => k.kid === header.kid);
    if (named.length > 0) return named;
    const unruledOut = ofAlg.filter((k) => header.kid === undefined || k.kid === undefined);
    if (unruledOut.length <= 1) return unruledOut;
    const n = unruledOut.length;
    if (header.kid === undefined) return { problem: `JWT refused: it names no key (kid), and ${n} ${header.alg} keys here could verify it; the token must carry its key's kid` };
    return { problem: `JWT refused: its kid ${header.kid} is not in the JWKS, and ${n} ${header.alg} keys without a kid could verify it; give the JWKS keys kids` };
  }
}

function rolesIn(claim: unknown): string[] {
  if (typeof claim === "string") return claim.split(/\s+/).filter((r) => r !== "");
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === "string");
  return [];
}

/** The RS256 and ES256 (P-256) public keys of a JWKS file ({"keys": [...]}); other keys are skipped. */
function readJwks(path: string): PublicKey[] {
  let doc: { keys?: unknown };
  try {
    doc = JSON.parse(readFileSync(path, "utf8")) as { keys?: unknown };
  } catch (err) {
    throw new Error(`--jwt-jwks ${path}: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc?.keys)) throw new Error(`--jwt-jwks ${path}: expected a JSON object with a "keys" array`);
  if (doc.keys.length > JWKS_KEYS_MAX) throw new Error(`--jwt-jwks ${path}: more than ${JWKS_KEYS_MAX} keys`);
  const keys: PublicKey[] = [];
  for (const [i, jwk] of (doc.keys as Array<Record<string, unknown>>).entries()) {
    const algorithm = jwk?.kty === "RSA" ? "RS256" : jwk?.kty === "EC" && jwk.crv === "P-256" ? "ES256" : undefined;
    if (algorithm === undefined || (jwk.use !== undefined && jwk.use !== "sig")) continue;
    if (jwk.alg !== undefined && jwk.alg !== algorithm) continue;
    if ("d" in jwk) throw new Error(`--jwt-jwks ${path}: key ${i} is a private key; publish only public keys`);
    try {
      keys.push({ kid: typeof jwk.kid === "string" ? jwk.kid : undefined, key: createPublicKey({ key: jwk as unknown as import("node:crypto").JsonWebKeyInput["key"], format: "jwk" }), algorithm });
    } catch (err) {
      throw new Error(`--jwt-jwks ${path}: key ${i}: ${(err as Error).message}`);
    }
  }
  if (keys.length === 0) throw new Error(`--jwt-jwks ${path}: no RS256 or ES256 (P-256) signing key in it`);
  return keys;
}

/**
 * SIGHUP reads the JWKS file again (key rotation at the identity provider).
 * A bad file is logged and the keys in use are kept, so a half-written file
 * never locks everyone out.
 */
export function reloadJwksOnSighup(verifier: JwtVerifier | undefined, log: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void }): void {
  if (verifier === undefined || !verifier.reloadable) return;
  process.on("SIGHUP", () => {
    try {
      log.info("JWKS reloaded", { keys: verifier.reload() });
    } catch (err) {
      log.warn("JWKS reload failed; the keys in use are kept", { error: (err as Error).message });
    }
  });
}
