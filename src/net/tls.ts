// Optional TLS on every TCP link and HTTP port. Certificates are read once at
// start-up, so a missing or unreadable file stops the process with the flag's
// name instead of failing the first connection.

import { readFileSync } from "node:fs";

/** What a listening process serves: its certificate chain and key (PEM). */
export interface ServerTls {
  cert: string;
  key: string;
}

/** What a dialing process trusts: the CA that signed the servers' certificates (PEM). */
export interface ClientTls {
  ca: string;
}

export interface TlsSettings {
  server?: ServerTls;
  client?: ClientTls;
}

function readPem(flag: string, path: string): string {
  try {
    const text = readFileSync(path, "utf8");
    if (!text.includes("-----BEGIN ")) throw new Error("not a PEM file");
    return text;
  } catch (err) {
    throw new Error(`--${flag} ${path}: ${(err as Error).message}`);
  }
}

/**
 * For processes that both listen and dial (coordinator, router): TLS is all or
 * nothing, so either all three files are given or none.
 */
export function loadServerAndClientTls(certPath: string, keyPath: string, caPath: string): TlsSettings {
  const given = [certPath, keyPath, caPath].filter((p) => p !== "").length;
  if (given === 0) return {};
  if (given < 3) throw new Error("TLS needs --tls-cert, --tls-key and --tls-ca together (this process both serves and dials)");
  return { server: { cert: readPem("tls-cert", certPath), key: readPem("tls-key", keyPath) }, client: { ca: readPem("tls-ca", caPath) } };
}

/** For processes that only dial (worker, client, top): TLS when a CA is given. */
export function loadClientTls(caPath: string): ClientTls | undefined {
  return caPath === "" ? undefined : { ca: readPem("tls-ca", caPath) };
}

/** The flags every binary shares, in FlagSpec form (kept here so the wording is the same everywhere). */
export const TLS_CA_HELP = "PEM file of the CA that signed the servers' certificates: dial over TLS and verify them";
export const TLS_CERT_HELP = "PEM certificate chain this process serves TLS with (with --tls-key and --tls-ca)";
export const TLS_KEY_HELP = "PEM private key for --tls-cert";
