// A backup restarted under a primary that holds a big queue, from the compiled
// binaries: how long until it is in sync again, and what another client sees of
// the primary meanwhile (a probe doing stats and a submit, over and over). Shared
// by the e2e test (resync-big-queue.test.ts) and bench/resync.ts.
//
// The queue waits behind one worker slot busy with a long task, as a real backlog
// does. (With no worker at all, each stats request walks the whole ready queue to
// count unmatched tasks: ~15 ms at 300k queued, whatever replication does.)

import type { CoordinatorStats } from "../../src/protocol/messages.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, freePort, waitFor, type Started } from "./harness.ts";

export interface ResyncOptions {
  queued: number;
  /** Tasks of `bigPayloadBytes` each, on top of `queued` small ones. */
  bigPayloads?: number;
  bigPayloadBytes?: number;
  /** Extra flags for both coordinators. */
  args?: string[];
  /** Give up waiting for the backup to be in sync after this long. */
  syncTimeoutMs: number;
  /** Each coordinator gets --data-dir <dataDirRoot>/<its port>. */
  dataDirRoot?: string;
  /** Between probe rounds: a client asking now and then, not a load generator. */
  probeGapMs?: number;
  /**
   * Runs the restarted backup at this nice value (19: lowest CPU priority). Replicas run on
   * separate hosts; on one 2-core test host the backup's decoding takes a core from the
   * primary whose latency is being measured.
   */
  backupNice?: number;
}

export interface ResyncResult {
  queued: number;
  /** From spawning the backup to the primary counting it in sync. */
  syncMs: number;
  /** Spawn to listening (process start-up, not resync). */
  startMs: number;
  probes: number;
  /** The stats probe before the restart, with the queue full and nothing else going on. */
  restStatsMsP99: number;
  statsMsP50: number;
  statsMsP99: number;
  statsMsMax: number;
  submitMsP50: number;
  submitMsP99: number;
  submitMsMax: number;
  /** Snapshots the primary started for the backup: more than one means it was dropped and asked again. */
  snapshots: number;
  primaryRssMB: number;
  /** From the logs: the primary's stream, start to last part restored; the backup's load, first part to applied. */
  sentMs: number;
  appliedMs: number;
}

function renice(pid: number, nice: number): void {
  const r = Bun.spawnSync(["renice", "-n", String(nice), "-p", String(pid)]);
  if (r.exitCode !== 0) throw new Error(`renice ${nice} of the backup failed: ${r.stderr.toString()}`);
}

/** The `ms` of the last log line with this event. */
function loggedMs(output: string, event: string): number {
  const line = output.split("\n").findLast((l) => l.includes(`"event":"${event}"`));
  return line === undefined ? NaN : Number(JSON.parse(line).ms);
}

const FILL_BATCH = 2_000;
const FILL_IN_FLIGHT = 4;
/** The longest built-in sleep; LONG_TASKS of them keep the worker's one slot busy longer than any run. */
const LONG_TASK_MS = 60_000;
const LONG_TASKS = 5;
/** Stats probes before the restart, for what the primary answers in at rest. */
const REST_PROBES = 50;
/** Bounds the probe loop in count as well as time. */
const PROBES_MAX = 100_000;

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
}

export async function primaryStats(client: SchedulerClient): Promise<CoordinatorStats> {
  return (await client.clusterStats()).coordinators[0]!.stats!;
}

/** Submits `count` tasks of `payload` to the primary, a few batches in flight. */
export async function fill(client: SchedulerClient, count: number, payload: unknown, tag: string, batch = FILL_BATCH): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const from = next;
      const n = Math.min(batch, count - from);
      next += n;
      await client.submitMany(Array.from({ length: n }, (_, i) => ({ type: "noop", payload, options: { idempotencyKey: `${tag}-${from + i}` } })));
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, lane));
}

/** A pair whose primary holds a queue behind one busy worker slot (the backup killed meanwhile, when asked). */
export interface BigQueuePair {
  client: SchedulerClient;
  primary: Started;
  ports: number[];
  backupPort: number;
  argsOf: (port: number) => string[];
  /** Tasks queued on the primary. */
  total: number;
}

/**
 * Starts the pair, keeps the worker's one slot busy, and queues `o.queued` small tasks
 * (plus `o.bigPayloads` big ones) on the primary; with `killBackup`, the backup is
 * killed before the fill (so the primary holds it all alone).
 */
export async function bigQueuePair(cluster: Cluster, o: Omit<ResyncOptions, "syncTimeoutMs">, killBackup: boolean): Promise<BigQueuePair> {
  const ports = [freePort(), freePort()];
  const args = ["--log-level", "info", ...(o.args ?? [])];
  const argsOf = (port: number) => (o.dataDirRoot === undefined ? args : [...args, "--data-dir", `${o.dataDirRoot}/${port}`]);
  const nodes = await Promise.all(ports.map((port) => cluster.replica(port, ports, argsOf(port))));
  const clients = await Promise.all(ports.map((port) => SchedulerClient.connect({ host: "127.0.0.1", port })));
  const primaryAt = await waitFor("a primary with its backup in sync", async () => {
    const all = await Promise.all(clients.map(primaryStats));
    const i = all.findIndex((s) => s.primary && s.replication.backupsInSync === 1);
    return i >= 0 ? i : undefined;
  });
  const primary = nodes[primaryAt]!;
  const backupPort = ports[1 - primaryAt]!;
  clients[1 - primaryAt]!.close();
  const client = clients[primaryAt]!;
  cluster.worker(ports, ["-w", "1", "--thread-concurrency", "1"]);
  try {
    await waitFor("the worker on the primary", async () => ((await primaryStats(client)).workers.length === 1 ? true : undefined));
    // Submitted first, so each runs before anything queued after it: the slot stays busy for them all.
    for (let i = 0; i < LONG_TASKS; i++) await client.submit("sleep", { ms: LONG_TASK_MS }, { timeoutMs: 2 * LONG_TASK_MS, idempotencyKey: `long-${i}` });
    await waitFor("the worker's one slot busy", async () => ((await primaryStats(client)).leased === 1 ? true : undefined));
    if (killBackup) {
      nodes[1 - primaryAt]!.proc.kill("SIGKILL");
      await nodes[1 - primaryAt]!.proc.exited;
    }
    const total = o.queued + (o.bigPayloads ?? 0) + LONG_TASKS - 1;
    await fill(client, o.queued, "x".repeat(32), "small");
    if (o.bigPayloads) await fill(client, o.bigPayloads, new Uint8Array(o.bigPayloadBytes ?? 1 << 20), "big", 4);
    await waitFor(`${total} tasks queued on the primary`, async () => ((await primaryStats(client)).queued >= total ? true : undefined), 60_000);
    return { client, primary, ports, backupPort, argsOf, total };
  } catch (err) {
    client.close();
    throw err;
  }
}

export async function resyncUnderLoad(cluster: Cluster, o: ResyncOptions): Promise<ResyncResult> {
  const { client, primary, ports, backupPort, argsOf, total } = await bigQueuePair(cluster, o, true);
  try {
    const rest: number[] = [];
    for (let i = 0; i < REST_PROBES; i++) {
      const t0 = performance.now();
      await primaryStats(client);
      rest.push(performance.now() - t0);
      await Bun.sleep(o.probeGapMs ?? 10);
    }
    const mark = primary.output().length;
    const statsMs: number[] = [];
    const submitMs: number[] = [];
    const spawnedAt = performance.now();
    let started: Started | undefined;
    const restarting = cluster.replica(backupPort, ports, argsOf(backupPort)).then((s) => {
      if (o.backupNice !== undefined) renice(s.proc.pid, o.backupNice);
      return (started = s);
    });
    let syncedAt = 0;
    let listeningAt = 0;
    const deadline = spawnedAt + o.syncTimeoutMs;
    const running = () => syncedAt === 0 && performance.now() < deadline;
    // Two probes, each one request at a time: stats (answered at once, so it shows the event
    // loop) and submit (answered once committed, so it also shows commits held for the backup).
    const statsProbe = async () => {
      for (let i = 0; i < PROBES_MAX && running(); i++) {
        const t0 = performance.now();
        const s = await primaryStats(client);
        statsMs.push(performance.now() - t0);
        if (started !== undefined && listeningAt === 0) listeningAt = t0;
        if (started !== undefined && s.replication.backupsInSync === 1) syncedAt = t0;
        await Bun.sleep(o.probeGapMs ?? 10);
      }
    };
    const submitProbe = async () => {
      for (let i = 0; i < PROBES_MAX && running(); i++) {
        const t0 = performance.now();
        await client.submit("noop", "probe", { idempotencyKey: `probe-${i}` });
        submitMs.push(performance.now() - t0);
        await Bun.sleep(o.probeGapMs ?? 10);
      }
    };
    await Promise.all([statsProbe(), submitProbe()]);
    await restarting;
    if (syncedAt === 0) throw new Error(`the backup was not in sync after ${o.syncTimeoutMs} ms; primary said:\n${primary.output().slice(mark).slice(-3000)}`);
    const rss = Number((await Bun.$`ps -o rss= -p ${primary.proc.pid}`.quiet().text()).trim()) / 1024;
    return {
      queued: total,
      syncMs: Math.round(syncedAt - spawnedAt),
      startMs: Math.round(listeningAt - spawnedAt),
      probes: statsMs.length,
      restStatsMsP99: quantile(rest, 0.99),
      statsMsP50: quantile(statsMs, 0.5), statsMsP99: quantile(statsMs, 0.99), statsMsMax: quantile(statsMs, 1),
      submitMsP50: quantile(submitMs, 0.5), submitMsP99: quantile(submitMs, 0.99), submitMsMax: quantile(submitMs, 1),
      snapshots: primary.output().slice(mark).split("\n").filter((l) => l.includes('"event":"backup syncing"')).length,
      primaryRssMB: Math.round(rss),
      sentMs: loggedMs(primary.output().slice(mark), "snapshot sent"),
      appliedMs: started === undefined ? NaN : loggedMs(started.output(), "snapshot applied"),
    };
  } finally {
    client.close();
  }
}
