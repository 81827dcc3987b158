// What every peer benchmark (bench/peers/*) does the same way: find a free
// loopback port, summarize latencies as our client does, and start a worker
// process that says "ready". Plain Node/Bun modules with no dependencies, so
// each peer's own package can import them.

import { spawn } from "node:child_process";
import { createServer } from "node:net";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port free right now on loopback (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Latencies in ms summarized like our client's HDR histogram (percentile =
 * smallest value with p% at or below it; the count p% of n is rounded up after
 * taking off its last-bit error, as HDR does, so 99.9% of 1,000 is the 999th
 * value, not the 1,000th), to the µs.
 */
export function summarize(latencies) {
  if (latencies.length === 0) return { min: 0, avg: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const s = Float64Array.from(latencies).sort();
  const us = (ms) => Math.round(ms * 1000) / 1000;
  const rank = (p) => {
    const exact = (p / 100) * s.length;
    return Math.max(1, Math.ceil(exact - exact * Number.EPSILON));
  };
  const at = (p) => us(s[rank(p) - 1]);
  return { min: us(s[0]), avg: us(s.reduce((a, b) => a + b, 0) / s.length), p50: at(50), p95: at(95), p99: at(99), p999: at(99.9), max: us(s[s.length - 1]) };
}

/**
 * Spawns `process.execPath script ...args`, a worker that prints "ready" once
 * it consumes; `ready` rejects (naming `label`) if it exits or takes longer
 * than `startMs`.
 */
export function startWorkerProcess(label, script, args, startMs) {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} worker not ready after ${startMs} ms: ${output}`)), startMs);
    proc.stdout.on("data", (d) => {
      output += d;
      if (output.includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.stderr.on("data", (d) => (output += d));
    proc.once("exit", (code) => reject(new Error(`${label} worker exited with ${code}: ${output}`)));
  });
  ready.catch(() => {});
  return { proc, ready };
}

/** A parsed option (parseArgs' string) as a positive number; throws naming the flag otherwise. */
export function positiveOption(values, name) {
  const n = Number(values[name]);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${values[name]}`);
  return n;
}
