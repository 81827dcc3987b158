import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authorizeHello, authorizeHttp, TokenTable } from "../../src/net/auth.ts";
import { JwtVerifier, looksLikeJwt, type JwtSettings } from "../../src/net/jwt.ts";
import { hsToken, JWT_SECRET, keyToken, signingKey, writeJwks } from "../support/jwt-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "jwt-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rsa = signingKey("rsa-1", "RS256");
const ec = signingKey("ec-1", "ES256");
const jwks = join(dir, "jwks.json");
writeJwks(jwks, [rsa, ec]);

const SETTINGS: JwtSettings = { secret: JWT_SECRET, jwksPath: jwks, rolesClaim: "roles", audience: "", issuer: "", leewayMs: 5000 };
const table = (s: Partial<JwtSettings> = {}) => TokenTable.parse("replica replica-secret-0123456789\n").withJwt(new JwtVerifier({ ...SETTINGS, ...s }));
const granted = (t: TokenTable, token: string) => {
  const g = t.authenticate(token);
  return typeof g === "string" ? g : [...g].sort();
};

describe("JWT tokens", () => {
  test("HS256, RS256 and ES256 tokens grant the roles of their claim; static tokens still work", () => {
    const t = table();
    expect(granted(t, hsToken({ roles: ["submit"] }))).toEqual(["read", "submit"]);
    expect(granted(t, keyToken(rsa, { roles: "read admin" }))).toEqual(["admin", "read", "submit"]);
    expect(granted(t, keyToken(ec, { roles: "worker" }))).toEqual(["worker"]);
    expect(granted(t, "replica-secret-0123456789")).toEqual(["admin", "read", "replica", "submit"]);
    expect(granted(table({ rolesClaim: "scope" }), hsToken({ scope: "read" }))).toEqual(["read"]);
  });

  test("expired, not yet valid, wrongly signed and wrong-audience tokens are refused, saying why", () => {
    const t = table({ audience: "scheduler", issuer: "idp" });
    const ok = { roles: "read", aud: "scheduler", iss: "idp" };
    expect(granted(t, hsToken(ok))).toEqual(["read"]);
    expect(granted(t, hsToken({ ...ok, expiresInS: -60 }))).toMatch(/jwt expired/);
    expect(granted(t, hsToken({ ...ok, expiresInS: -2 }))).toEqual(["read"]); // inside the leeway
    expect(granted(t, hsToken({ ...ok, notBeforeS: 60 }))).toMatch(/jwt not active/);
    expect(granted(t, hsToken(ok, "another-secret-of-enough-length-000000"))).toMatch(/invalid signature/);
    expect(granted(t, keyToken(signingKey("rsa-1", "RS256"), ok))).toMatch(/invalid signature/);
    expect(granted(t, hsToken({ ...ok, aud: "someone-else" }))).toMatch(/audience invalid/);
    expect(granted(t, hsToken({ ...ok, iss: "stranger" }))).toMatch(/issuer invalid/);
    expect(granted(t, keyToken(signingKey("unknown-kid", "ES256"), ok))).toMatch(/no key here verifies/);
  });

  test("an alg the keys do not sign with is refused: no HS256 without a secret, no none", () => {
    const t = table({ secret: "" });
    expect(granted(t, hsToken({ roles: "admin" }))).toMatch(/no key here verifies a JWT signed with HS256/);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"roles":"admin"}').toString("base64url")}.`;
    expect(granted(t, unsigned)).toMatch(/no key here verifies/);
    expect(granted(t, "bm90LWpzb24.e30.c2ln")).toBe("the JWT is malformed");
  });

  test("a JWKS key without a kid verifies tokens whatever kid they name", () => {
    const path = join(dir, "no-kid.json");
    const { kid: _dropped, ...publicJwk } = ec.publicJwk;
    writeFileSync(path, JSON.stringify({ keys: [publicJwk] }));
    const t = table({ jwksPath: path });
    expect(granted(t, keyToken(ec, { roles: "read" }))).toEqual(["read"]);
    expect(granted(t, keyToken(rsa, { roles: "read" }))).toMatch(/no key here verifies a JWT signed with RS256/);
  });

  test("a token without exp is refused, however it is signed: expiry is what bounds a stolen JWT", () => {
    const t = table();
    for (const token of [hsToken({ roles: "read", expiresInS: null }), keyToken(rsa, { roles: "read", expiresInS: null }), keyToken(ec, { roles: "read", expiresInS: null })]) {
      expect(granted(t, token)).toBe("JWT refused: the token has no exp");
    }
    expect(authorizeHttp(t, `Bearer ${hsToken({ roles: "read", expiresInS: null })}`, "read")?.status).toBe(401);
    expect(() => authorizeHello(t, "client", hsToken({ roles: "read", expiresInS: null }))).toThrow(/the token has no exp/);
  });

  test("a token without kid is refused when more than one key of its algorithm could verify it; with one such key it is fine", () => {
    const rsa2 = signingKey("rsa-2", "RS256");
    const path = join(dir, "two-rsa.json");
    writeJwks(path, [rsa, rsa2, ec]);
    const t = table({ jwksPath: path });
    // One verification per token at most: the kid picks the key.
    expect(granted(t, keyToken(rsa2, { roles: "read" }))).toEqual(["read"]);
    expect(granted(t, keyToken(rsa2, { roles: "read" }, false))).toBe("JWT refused: it names no key (kid), and 2 RS256 keys here could verify it; the token must carry its key's kid");
    // The only ES256 key needs no kid.
    expect(granted(t, keyToken(ec, { roles: "read" }, false))).toEqual(["read"]);
    // Keys without a kid of their own cannot be told apart by a token's kid either.
    const unnamed = join(dir, "two-unnamed.json");
    const { kid: _a, ...first } = rsa.publicJwk;
    const { kid: _b, ...second } = rsa2.publicJwk;
    writeFileSync(unnamed, JSON.stringify({ keys: [first, second] }));
    expect(granted(table({ jwksPath: unnamed }), keyToken(rsa2, { roles: "read" }))).toMatch(/its kid rsa-2 is not in the JWKS, and 2 RS256 keys without a kid could verify it/);
  });

  test("a token without our roles authenticates but may do nothing: 403, not 401", () => {
    const t = table();
    const none = hsToken({ roles: ["superuser"] });
    expect(granted(t, none)).toEqual([]);
    expect(authorizeHttp(t, `Bearer ${none}`, "read")?.status).toBe(403);
    expect(authorizeHttp(t, `Bearer ${hsToken({ roles: "read", expiresInS: -60 })}`, "read")).toEqual({ status: 401, message: "JWT refused: jwt expired" });
    expect(() => authorizeHello(t, "client", none)).toThrow(/needs the read role/);
    expect(() => authorizeHello(t, "client", hsToken({ roles: "read", expiresInS: -60 }))).toThrow(/jwt expired/);
  });

  test("reload() takes the JWKS file's new keys; a bad file keeps the old ones", () => {
    const rotated = signingKey("rsa-2", "RS256");
    const path = join(dir, "rotating.json");
    writeJwks(path, [rsa]);
    const verifier = new JwtVerifier({ ...SETTINGS, jwksPath: path });
    const t = TokenTable.parse("replica replica-secret-0123456789").withJwt(verifier);
    expect(granted(t, keyToken(rotated, { roles: "read" }))).toMatch(/no key here/);
    writeJwks(path, [rotated]);
    expect(verifier.reload()).toBe(1);
    expect(granted(t, keyToken(rotated, { roles: "read" }))).toEqual(["read"]);
    expect(granted(t, keyToken(rsa, { roles: "read" }))).toMatch(/no key here/);
    writeFileSync(path, "{not json");
    expect(() => verifier.reload()).toThrow(/--jwt-jwks/);
    expect(granted(t, keyToken(rotated, { roles: "read" }))).toEqual(["read"]);
  });

  test("bad settings stop start-up naming the flag", () => {
    expect(() => new JwtVerifier({ ...SETTINGS, secret: "short" })).toThrow(/--jwt-secret: needs at least 32/);
    const priv = join(dir, "private.json");
    writeFileSync(priv, JSON.stringify({ keys: [rsa.privateKey.export({ format: "jwk" })] }));
    expect(() => new JwtVerifier({ ...SETTINGS, jwksPath: priv })).toThrow(/private key/);
    expect(() => new JwtVerifier({ ...SETTINGS, jwksPath: join(dir, "missing.json") })).toThrow(/--jwt-jwks/);
  });

  test("only three base64url parts are taken for a JWT", () => {
    expect(looksLikeJwt(hsToken({}))).toBe(true);
    expect(looksLikeJwt("read-secret-0123456789012")).toBe(false);
    expect(looksLikeJwt("a.b.c.d")).toBe(false);
  });
});
