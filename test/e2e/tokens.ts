// One tokens file for the e2e tests that run with --tokens: a token per role.

import { writeFileSync } from "node:fs";

export const TOKENS = {
  replica: "replica-secret-0123456789",
  worker: "worker-secret-01234567890",
  submit: "submit-secret-01234567890",
  read: "read-secret-0123456789012",
  admin: "admin-secret-012345678901",
};

/** Writes TOKENS as a tokens file ("<role> <token>" lines) at `path`. */
export function writeTokensFile(path: string): void {
  writeFileSync(path, Object.entries(TOKENS).map(([role, token]) => `${role} ${token}`).join("\n") + "\n");
}
