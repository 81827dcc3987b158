// SIGTERM / SIGINT handling shared by the servers: the first signal runs the
// graceful stop (handover, drain), a second one exits at once.

import type { Logger } from "./log.ts";

export function stopOnSignals(log: Logger, stop: () => Promise<void> | void, fields: () => Record<string, unknown> = () => ({})): void {
  const first = (signal: string) => {
    log.info("stopping", { signal, ...fields() });
    process.removeAllListeners("SIGTERM");
    process.removeAllListeners("SIGINT");
    process.on("SIGTERM", () => process.exit(0));
    process.on("SIGINT", () => process.exit(0));
    void Promise.resolve()
      .then(stop)
      .catch((err: Error) => log.error("graceful stop failed", { error: err.message }))
      .finally(() => process.exit(0));
  };
  process.on("SIGTERM", () => first("SIGTERM"));
  process.on("SIGINT", () => first("SIGINT"));
}
