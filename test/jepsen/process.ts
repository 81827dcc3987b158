// Process helpers for the Jepsen harness: bounded runs, drained output, polling with a deadline.
// Kept apart from src/ (and from test/e2e/harness.ts, which imports the SDK) so the fault
// harness keeps working while the scheduler's own code is being changed.

import type { Subprocess } from "bun";

/** An `ip`, `iptables` or probe command that takes longer than this is stuck, not slow. */
export const COMMAND_TIMEOUT_MS = 10_000;
/** Output kept per process by collectOutput (the tail: enough for a readiness line or a failure). */
export const OUTPUT_CHARS_MAX = 256 * 1024;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv to completion, killed at the deadline. */
export async function runCommand(argv: string[], timeoutMs = COMMAND_TIMEOUT_MS, env?: Record<string, string>): Promise<CommandResult> {
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  let timedOut = false;
  const timer = setTimeout(() => ((timedOut = true), proc.kill("SIGKILL")), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

/** runCommand, throwing with the command's stderr when it fails. */
export async function mustRun(argv: string[]): Promise<string> {
  const r = await runCommand(argv);
  if (r.code !== 0) throw new Error(`\`${argv.join(" ")}\` failed (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Drains a process's stdout and stderr (so it never blocks on a full pipe); returns the kept tail. */
export function collectOutput(proc: Subprocess<any, "pipe", "pipe">): () => string {
  let text = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > OUTPUT_CHARS_MAX) text = text.slice(-OUTPUT_CHARS_MAX / 2);
    }
  };
  void drain(proc.stdout).catch(() => {});
  void drain(proc.stderr).catch(() => {});
  return () => text;
}

/** Proxies in the environment would send a fetch made inside a namespace nowhere useful. */
export function environmentWithoutProxies(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/_proxy$/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Polls `check` until it returns something other than undefined; throws at the deadline (the e2e harness's own). */
export { waitFor } from "../e2e/harness.ts";
