// A cluster without tokens accepts anyone who can reach it: fine on loopback,
// dangerous anywhere else. Say so loudly at start-up when that is the case.

import { isLoopback } from "../net/auth.ts";
import type { Logger } from "./log.ts";

export function warnIfOpen(log: Logger, open: boolean, listenHosts: readonly string[]): void {
  if (!open) return;
  const exposed = listenHosts.filter((h) => !isLoopback(h));
  if (exposed.length === 0) return;
  log.warn("NO AUTHENTICATION: listening beyond loopback without --tokens; anyone who can reach this port can submit, cancel and read tasks, or join as a worker or replica", { hosts: exposed });
}
