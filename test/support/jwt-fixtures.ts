// JWTs for the tests, signed the way an identity provider would: an HS256
// secret, and RSA/EC key pairs whose public halves go into a JWKS file.

import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import jwt from "jsonwebtoken";

export const JWT_SECRET = "hs256-secret-for-tests-0123456789abcdef";

export interface SigningKey {
  kid: string;
  algorithm: "RS256" | "ES256";
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export function signingKey(kid: string, algorithm: "RS256" | "ES256"): SigningKey {
  const pair = algorithm === "RS256" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, algorithm, privateKey: pair.privateKey, publicJwk: { ...pair.publicKey.export({ format: "jwk" }), kid, use: "sig", alg: algorithm } };
}

export function writeJwks(path: string, keys: readonly SigningKey[]): void {
  writeFileSync(path, JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
}

export interface Claims {
  roles?: unknown;
  aud?: string;
  iss?: string;
  /** Seconds from now (negative: in the past); null: no exp claim at all (a mis-issued token). */
  expiresInS?: number | null;
  notBeforeS?: number;
  [claim: string]: unknown;
}

const nowS = () => Math.floor(Date.now() / 1000);

function payloadOf({ expiresInS = 600, notBeforeS, ...claims }: Claims): Record<string, unknown> {
  const exp = expiresInS === null ? {} : { exp: nowS() + expiresInS };
  return { ...claims, iat: nowS(), ...exp, ...(notBeforeS !== undefined ? { nbf: nowS() + notBeforeS } : {}) };
}

/** An HS256 JWT signed with `secret` (JWT_SECRET unless given). */
export function hsToken(claims: Claims, secret = JWT_SECRET): string {
  return jwt.sign(payloadOf(claims), secret, { algorithm: "HS256" });
}

/** A JWT signed with one of the JWKS keys (its kid in the header, unless `withKid` is false). */
export function keyToken(key: SigningKey, claims: Claims, withKid = true): string {
  return jwt.sign(payloadOf(claims), key.privateKey, { algorithm: key.algorithm, ...(withKid ? { keyid: key.kid } : {}) });
}
