// The `client` binary: a load generator by default, plus small commands
// (stats, status) for scripts and people.

import { clientSecurity, type ClientSecurity } from "../net/net-flags.ts";
import { unreachable } from "./reachability.ts";
import { parseFlags, UsageError, VERSION, type FlagValues } from "../cli/flags.ts";
import { binaryHelp, CURRENT_NAMES, FLAG_TABLES, KNOWN_NAMES, parseBinaryFlags } from "../cli/flag-registry.ts";
import { parseHostPortList, type HostPort } from "../net/endpoints.ts";
import { COMMANDS, COMMANDS_HELP, runCommand } from "./commands.ts";
import { runLoad, stopOnInterrupt, type LoadReport } from "./load.ts";
import { openLoopLines, runOpenLoop, type OpenLoopOptions, type OpenLoopReport } from "./open-loop.ts";
import { MIXED_MIX, type WorkloadName } from "./workloads.ts";


const SUMMARY = `load generator and command-line client

  client [flags]              run a closed-loop benchmark and print its results (default)
  client --rate N --duration-s S [--warmup-s W]   open loop: N tasks/s on a fixed schedule for S seconds

Workloads (-t): noop; sleep and cpu (--duration-ms); wordcount (a generated corpus split in
--chunk-words chunks, counted on workers, summed and checked here); mixed: ${MIXED_MIX.map((m) => `${Math.round(m.share * 100)}% ${m.type} ${m.ms} ms`).join(", ")}.
A run first checks a server answers (within 2 s, else it says why and exits 1); on a terminal
it redraws a progress line on stderr; a lost server is said when it happens; Ctrl-C stops
sending and prints what had ended.
Exit status: 0 when every task completed, 1 otherwise, 2 on bad flags, 130 after Ctrl-C.`;

export async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // Words that are not flags name a command and its arguments.
  const words: string[] = [];
  let values;
  let addresses: HostPort[];
  try {
    values = parseBinaryFlags("client", argv, process.env, words);
    if (words.length > 0 && !COMMANDS.includes(words[0] as (typeof COMMANDS)[number])) {
      throw new UsageError(`unknown command "${words[0]}" (see --help)`);
    }
    if (values.help) {
      process.stdout.write(binaryHelp("client", `${SUMMARY}\n\n${COMMANDS_HELP}`, ["client -p 6000 -c 64 -n 10000 -t mixed", "client -p 5000 -n 20000 -t noop --json", "client submit sleep --payload '{\"ms\":100}' --wait", "client dlq list"]));
      return;
    }
    if (values.version) {
      process.stdout.write(`client ${VERSION}\n`);
      return;
    }
    if ((values["warmup-s"] as number) > 0 && (values.rate as number) === 0) throw new UsageError("--warmup-s is for the open loop: give --rate too");
    addresses = parseHostPortList((values.servers as string) || `${values.host}:${values.port}`, values.host as string);
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof Error)) throw err;
    process.stderr.write(`client: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let security: ClientSecurity;
  try {
    security = clientSecurity(values);
  } catch (err) {
    process.stderr.write(`client: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const none = await unreachable(words.length > 0 ? [addresses[0]!] : addresses, security);
  if (none !== undefined) {
    process.stderr.write(`client: cannot reach a server: ${none}\n`);
    process.exit(1);
  }
  if (words.length > 0) process.exit(await runCommand(words, values, addresses[0]!, security));
  // A live line on a terminal only: a pipe or --json gets the report alone.
  const live = process.stderr.isTTY === true && !values.json;
  const lost = new Set<string>();
  const common = {
    stop: stopOnInterrupt(),
    // Said when it happens (once per address), not only in the final report.
    onLost: (address: string, reason: string) => {
      if (lost.has(address)) return;
      lost.add(address);
      process.stderr.write(`${live ? "\r\x1b[2K" : ""}client: lost ${address} (${reason}); its tasks are retried${addresses.length > 1 ? " on the other servers" : " as it comes back"}\n`);
    },
    addresses,
    connections: values.connections as number,
    submitAttemptsMax: values["submit-attempts"] as number,
    deadlineMs: (values["deadline-s"] as number) * 1000,
    security,
    batch: values.batch as number,
    submitOnly: values["submit-only"] as boolean,
    idempotencyPrefix: values.idempotency ? `${process.pid}-${Date.now().toString(36)}-` : "",
    workload: {
      name: values.type as WorkloadName,
      durationMs: values["duration-ms"] as number,
      seed: values.seed as number,
      chunkWords: values["chunk-words"] as number,
    },
  };
  const rate = values.rate as number;
  const onProgress = live ? (line: string) => process.stderr.write(`\r\x1b[2K${line}`) : undefined;
  const report = rate > 0 ? await openLoop(common, rate, values, argv) : await runLoad({ ...common, onProgress, concurrency: values.concurrency as number, tasks: values.tasks as number });
  if (live) process.stderr.write("\r\x1b[2K");
  process.stdout.write(values.json ? JSON.stringify(report) + "\n" : formatReport(report));
  const wordsOk = report.wordCountExpected === undefined || report.wordCount === report.wordCountExpected;
  if (report.interrupted === true) process.exit(130); // as a shell reports a run ended by Ctrl-C
  process.exit(report.completed === report.tasks && report.failed === 0 && wordsOk ? 0 : 1);
}

/**
 * The open loop, after its warm-up when --warmup-s asks for one: the same rate
 * for that long, with keys of their own (the measured run's keys start at 0
 * again), its outcome reported apart and its latencies dropped.
 */
async function openLoop(common: Omit<OpenLoopOptions, "rate" | "durationS" | "inFlightMax">, rate: number, values: FlagValues, argv: string[]): Promise<OpenLoopReport> {
  const options = { ...common, rate, inFlightMax: values["max-in-flight"] as number };
  const warmupS = values["warmup-s"] as number;
  let warmup: OpenLoopReport["warmup"];
  if (warmupS > 0) {
    const prefix = common.idempotencyPrefix === "" ? "" : `${common.idempotencyPrefix}warmup-`;
    const w = await runOpenLoop({ ...options, durationS: warmupS, idempotencyPrefix: prefix });
    warmup = { seconds: warmupS, tasks: w.tasks, completed: w.completed, failed: w.failed };
  }
  const report = await runOpenLoop({ ...options, durationS: values["duration-s"] as number, tasksMax: givenTaskCount(argv) });
  return warmup === undefined ? report : { ...report, warmup };
}

/** -n when it was given (flag, environment or config file), not its default: it only caps an open loop then. */
function givenTaskCount(argv: string[]): number | undefined {
  const unset = FLAG_TABLES.client.map((s) => (s.name === "tasks" ? { ...s, default: -1 } : s));
  const tasks = parseFlags(unset, argv, process.env, { binary: "client", positionals: [], knownNames: KNOWN_NAMES, currentNames: CURRENT_NAMES }).tasks as number;
  return tasks === -1 ? undefined : tasks;
}

export function formatReport(r: LoadReport | OpenLoopReport): string {
  const l = r.latencyMs;
  const open = "mode" in r && r.mode === "open";
  const lines = [
    open ? `workload      ${r.workload}  (${r.tasks} tasks, open loop)` : `workload      ${r.workload}  (${r.tasks} tasks, concurrency ${r.concurrency})`,
    `completed     ${r.completed}`,
    `failed        ${r.failed}`,
    `retried       ${r.retried}`,
    `duration      ${(r.durationMs / 1000).toFixed(2)} s`,
    `throughput    ${r.throughput} tasks/s`,
    ...(r.clientCpuUsPerTask === undefined ? [] : [`client cpu    ${r.clientCpuUsPerTask} µs/task (this load generator's own cost)`]),
    ...(open ? openLoopLines(r) : []),
    `latency ms    min ${l.min}  avg ${l.avg.toFixed(3)}  p50 ${l.p50}  p95 ${l.p95}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}`,
  ];
  if (r.wordCountExpected !== undefined) lines.push(`word count    ${r.wordCount} (expected ${r.wordCountExpected}: ${r.wordCount === r.wordCountExpected ? "ok" : "MISMATCH"})`);
  if (Object.keys(r.errors).length > 0) lines.push(`errors        ${Object.entries(r.errors).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  if (r.timedOut) lines.push("deadline      reached before every task ran");
  if (r.interrupted === true) lines.push(`interrupted   by Ctrl-C: ${r.completed + r.failed} of ${r.tasks} tasks had ended; the rest were not waited for`);
  return lines.join("\n") + "\n";
}
