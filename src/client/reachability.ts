// Before a run or a command, the client makes sure some server answers, and
// says at once why none does: a run against nothing used to be silent for its
// whole retry budget, then report every task as failed.

import type { HostPort } from "../net/endpoints.ts";
import { formatHostPort } from "../net/endpoints.ts";
import type { ClientSecurity } from "../net/net-flags.ts";
import { SchedulerClient } from "../sdk/client.ts";

/** How long one server has to complete the handshake. */
export const REACH_TIMEOUT_MS = 2_000;

/** Undefined when a server completes the handshake; otherwise, per server, why it did not. */
export async function unreachable(addresses: readonly HostPort[], security: ClientSecurity, timeoutMs = REACH_TIMEOUT_MS): Promise<string | undefined> {
  const reasons: string[] = [];
  for (const address of addresses) {
    const why = await tryHandshake(address, security, timeoutMs);
    if (why === undefined) return undefined;
    reasons.push(`${formatHostPort(address.host, address.port)}: ${why}`);
  }
  return reasons.join("; ");
}

async function tryHandshake(address: HostPort, security: ClientSecurity, timeoutMs: number): Promise<string | undefined> {
  const dialing = SchedulerClient.connect(address, { token: security.token, tls: security.tls });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
  try {
    const outcome = await Promise.race([dialing, timedOut]);
    if (outcome === "timeout") {
      dialing.then((late) => late.close(), () => undefined);
      return `no handshake within ${timeoutMs} ms${security.tls === undefined ? " (a TLS port? give --tls-ca)" : ""}`;
    }
    outcome.close();
    return undefined;
  } catch (err) {
    return describe(err, security);
  } finally {
    clearTimeout(timer);
  }
}

function describe(err: unknown, security: ClientSecurity): string {
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message;
  if (code === "ECONNREFUSED") return "connection refused (nothing listens there)";
  if (code === "E_UNAUTHORIZED") return `${message}${security.token === undefined ? " (give --token)" : " (check --token)"}`;
  if (/certificate|TLS|SSL|handshake/i.test(message) || (typeof code === "string" && /CERT|TLS|SSL/.test(code))) {
    return `TLS failed: ${message}${security.tls === undefined ? " (a TLS port? give --tls-ca)" : " (check --tls-ca)"}`;
  }
  // A TLS server closes a plain connection at its first bytes, before any handshake answer.
  if (/peer closed/.test(message) && security.tls === undefined) return `closed before the handshake: a TLS port? give --tls-ca (${message})`;
  return message;
}
