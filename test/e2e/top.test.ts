// The compiled `top` against a real coordinator and worker: --help, --once
// (plain frame; exit 1 when unreachable), and the live dashboard in a real
// terminal (tmux): it draws, redraws on resize, survives the coordinator going
// away and coming back, and q / Ctrl-C quit and give the terminal back.
// Builds nothing: dist/ comes from the test command's build step.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { binary, Cluster, waitFor, type Started } from "./harness.ts";

const TMUX = Bun.which("tmux");
/**
 * A tmux server of our own per session: the test never touches anyone else's
 * sessions, and a server exiting with its last session cannot race the next start.
 */
const tmuxSockets = new Set<string>();
const WORKER_NODE = "top-e2e-worker";
const TASKS = 321;
/** Bound on any single run of `top --once`. */
const ONCE_TIMEOUT_MS = 15_000;
/** Per test and for setup: spawning binaries needs more than bun's default 5 s, whatever the command line says. */
const TEST_TIMEOUT_MS = 60_000;

const cluster = new Cluster();
/** Where tmux copies each pane's output (pipe-pane), to check the bytes top leaves the terminal with. */
const scratch = mkdtempSync(join(tmpdir(), "top-e2e-"));
let top: string;
let coordinator: Started;

beforeAll(async () => {
  top = binary("top");
  coordinator = await cluster.coordinator(["--node-id", "top-e2e-coordinator"]);
  cluster.worker([coordinator.port], ["-w", "1", "--tags", "e2e,gpu", "--node-id", WORKER_NODE, "--heartbeat-ms", "100"]);
  await cluster.workersJoined(coordinator.port, 1);
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: coordinator.port });
  try {
    const outcomes = await Promise.all(Array.from({ length: TASKS }, () => client.run("noop", undefined)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
  } finally {
    client.close();
  }
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  for (const socket of tmuxSockets) Bun.spawnSync([TMUX!, "-S", socket, "kill-server"], { stdout: "ignore", stderr: "ignore" });
  await cluster.stopAll();
  rmSync(scratch, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function runTop(args: string[]): Promise<Run> {
  const proc = Bun.spawn([top, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), ONCE_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * The rows of the table whose header line starts with `first`, as records by
 * column title. Cells are separated by two or more spaces (titles and values
 * have at most single spaces inside: "P50 MS", "120 ms").
 */
function tableRows(text: string, first: string): Record<string, string>[] {
  const lines = text.split("\n").map((l) => l.trim());
  const at = lines.findIndex((l) => l.startsWith(first));
  if (at < 0) throw new Error(`no table starting with ${first} in:\n${text}`);
  const titles = lines[at]!.split(/\s{2,}/);
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line === "") break;
    const cells = line.split(/\s{2,}/);
    rows.push(Object.fromEntries(titles.map((t, i) => [t, cells[i] ?? ""])));
  }
  return rows;
}

/** A port nothing listens on: bound by us, then released. */
function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe("top --help and --once", () => {
  test("--help documents every flag with its default", async () => {
    const run = await runTop(["--help"]);
    expect(run.code).toBe(0);
    for (const flag of ["--port <int>", "--host <value>", "--servers <value>", "--interval-ms <int>", "--poll-timeout-ms <int>", "--history <int>", "--once"]) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stdout).toContain("(default: 6000)");
    expect(run.stdout).toContain("(default: 1000)");
  }, TEST_TIMEOUT_MS);

  test("--once prints one plain frame with the shard, the worker and the counts", async () => {
    const run = await runTop(["--once", "-p", String(coordinator.port), "--interval-ms", "300"]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    const text = run.stdout;
    expect(text).not.toMatch(/\x1b/);
    expect(tableRows(text, "ADDRESS")).toEqual([
      expect.objectContaining({
        ADDRESS: `127.0.0.1:${coordinator.port}`, NODE: "top-e2e-coordinator", SHARD: "0", ROLE: "primary",
        QUEUED: "0", LEASED: "0", COMPLETED: String(TASKS), FAILED: "0",
      }),
    ]);
    const workers = tableRows(text, "SHARD");
    expect(workers).toEqual([expect.objectContaining({ SHARD: "0", NODE: WORKER_NODE, BUSY: "0", DONE: String(TASKS), FAILED: "0", TAGS: "e2e,gpu" })]);
    expect(workers[0]!.HEARTBEAT).toMatch(/^\d+ ms$/);
    expect(workers[0]!.FREE).toBe(workers[0]!.SLOTS);
    expect(text).toContain(`completed ${TASKS}`);
    expect(text).toContain("coordinators 1/1 reachable");
    // Two polls: throughput is a measured 0.0 on an idle cluster, not unknown.
    expect(text).toContain("throughput 0.0 tasks/s");
  }, TEST_TIMEOUT_MS);

  test("-s host:port works like -H/-p, and --interval-ms 0 polls once", async () => {
    const run = await runTop(["--once", "-s", `127.0.0.1:${coordinator.port}`, "--interval-ms", "0"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`completed ${TASKS}`);
    expect(run.stdout).toContain("throughput - tasks/s");
  }, TEST_TIMEOUT_MS);

  test("--once -s A,B: an address that does not answer is passed over for the next", async () => {
    const run = await runTop(["--once", "-s", `127.0.0.1:${closedPort()},127.0.0.1:${coordinator.port}`, "--interval-ms", "0"]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    expect(run.stdout).toContain(`top  127.0.0.1:${coordinator.port}`);
    expect(run.stdout).toContain(`completed ${TASKS}`);
  }, TEST_TIMEOUT_MS);

  test("--once exits 1 with the error on stderr when nothing listens", async () => {
    const port = closedPort();
    const run = await runTop(["--once", "-p", String(port), "--interval-ms", "0"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`127.0.0.1:${port} unreachable:`);
  }, TEST_TIMEOUT_MS);

  test("bad flags exit 2", async () => {
    const run = await runTop(["--interval-ms", "soon"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--interval-ms");
  }, TEST_TIMEOUT_MS);
});

// ------------------------------------------------------------------ tmux

function tmux(session: string, ...args: string[]): string {
  const socket = join(scratch, `tmux-${session}.sock`);
  tmuxSockets.add(socket);
  const r = Bun.spawnSync([TMUX!, "-S", socket, ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function capture(session: string): string {
  return tmux(session, "capture-pane", "-p", "-t", session);
}

/** The pane's process and whether it shows the alternate screen, via tmux formats. */
function pane(session: string): { dead: boolean; pid: number; alternate: boolean } {
  const [dead, pid, alternate] = tmux(session, "display-message", "-p", "-t", session, "#{pane_dead} #{pane_pid} #{alternate_on}").trim().split(" ");
  return { dead: dead === "1", pid: Number(pid), alternate: alternate === "1" };
}

/** Gone, or a zombie nobody reaped yet (tmux does not always here): either way it has exited. */
function exited(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (existsSync("/proc/self/stat")) return !existsSync(stat) || readFileSync(stat, "utf8").split(") ")[1]?.startsWith("Z") === true;
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * Starts top in a detached 120x40 tmux session that stays (dead) after top
 * exits so we can inspect it, with the pane's output copied to a file.
 */
function startTopInTmux(session: string, args: string[]): number {
  tmux(session, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", [top, ...args].join(" "));
  tmux(session, "pipe-pane", "-o", "-t", session, `cat > ${join(scratch, `${session}.out`)}`);
  tmux(session, "set-option", "-w", "-t", session, "remain-on-exit", "on");
  return pane(session).pid;
}

/** The last of `sequences` in `text`: which state the terminal was left in. */
function lastOf(text: string, sequences: string[]): string | undefined {
  let best: string | undefined;
  let at = -1;
  for (const seq of sequences) {
    const i = text.lastIndexOf(seq);
    if (i > at) [best, at] = [seq, i];
  }
  return best;
}

const SHOW_CURSOR = "\x1b[?25h";
const HIDE_CURSOR = "\x1b[?25l";
const ALT_SCREEN_ON = "\x1b[?1049h";
const ALT_SCREEN_OFF = "\x1b[?1049l";

async function expectQuitRestoresTerminal(session: string, pid: number, keys: string): Promise<void> {
  tmux(session, "send-keys", "-t", session, keys);
  await waitFor(`top in ${session} to exit on ${keys}`, () => (pane(session).dead && exited(pid) ? true : undefined), 10_000);
  expect(pane(session).alternate).toBe(false);
  // tmux's own cursor flag on a dead pane is unreliable here, so read what top wrote last.
  const out = await waitFor("top's output to reach the pipe", () => {
    const text = readFileSync(join(scratch, `${session}.out`), "latin1");
    return text.includes(ALT_SCREEN_OFF) ? text : undefined;
  });
  expect(lastOf(out, [SHOW_CURSOR, HIDE_CURSOR])).toBe(SHOW_CURSOR);
  expect(lastOf(out, [ALT_SCREEN_ON, ALT_SCREEN_OFF])).toBe(ALT_SCREEN_OFF);
  // Back on the main screen, which top never wrote to: the dashboard is gone.
  expect(capture(session)).not.toContain("COORDINATORS");
  tmux(session, "kill-session", "-t", session);
}

describe.skipIf(!TMUX)("top in a real terminal (tmux)", () => {
  test("draws the dashboard, redraws on resize, rides out a coordinator restart, quits on q", async () => {
    // A coordinator of its own: this test kills and restarts it on the same port.
    const own = await cluster.coordinator(["--node-id", "top-e2e-restarted"]);
    cluster.worker([own.port], ["-w", "1", "--node-id", WORKER_NODE, "--heartbeat-ms", "100", "--reconnect-max-ms", "200"]);
    await cluster.workersJoined(own.port, 1);
    const session = "dash";
    const pid = startTopInTmux(session, ["-p", String(own.port), "--interval-ms", "200"]);

    const screen = await waitFor("the dashboard in tmux", () => {
      const s = capture(session);
      // Up to the footer: a capture may land while the terminal is still taking the frame.
      return s.includes("COORDINATORS") && s.includes(WORKER_NODE) && /history\s+peak .*[▁▂▃▄▅▆▇█]/.test(s) && s.includes("q quits") ? s : undefined;
    });
    expect(screen).toContain(`127.0.0.1:${own.port}`);
    expect(screen).toContain("primary");
    expect(screen).toContain("q quits");
    expect(pane(session).alternate).toBe(true);

    // A clean redraw for the new size: the title cut to the new width at the
    // top-left, and the coordinator table down to the columns that fit.
    tmux(session, "resize-window", "-t", session, "-x", "70", "-y", "15");
    const small = await waitFor("a redraw at 70x15", () => {
      const lines = capture(session).split("\n");
      const header = lines.find((l) => l.startsWith("ADDRESS"));
      return lines[0]!.startsWith("top  127.0.0.1") && lines[0]!.trimEnd().endsWith("…") && header !== undefined && !header.includes("NODE") ? lines : undefined;
    });
    expect(small.filter((l) => l.startsWith("top  ")).length).toBe(1);

    // 80x24 keeps the latency columns; 200x50 shows every column; ? opens the help and closes it again.
    tmux(session, "resize-window", "-t", session, "-x", "80", "-y", "24");
    await waitFor("P99 at 80x24", () => (capture(session).split("\n").find((l) => l.startsWith("ADDRESS"))?.includes("P99 MS") ? true : undefined));
    tmux(session, "resize-window", "-t", session, "-x", "200", "-y", "50");
    await waitFor("every column at 200x50", () => {
      const header = capture(session).split("\n").find((l) => l.startsWith("ADDRESS"));
      return header !== undefined && ["NODE", "LEASED", "COMPLETED", "RETRIED", "P99 MS", "UPTIME"].every((c) => header.includes(c)) ? true : undefined;
    });
    tmux(session, "send-keys", "-t", session, "?");
    await waitFor("the help overlay", () => (capture(session).includes("open or close this help") ? true : undefined));
    expect(capture(session)).toContain("Up/Down, 0-9");
    expect(exited(pid)).toBe(false);
    tmux(session, "send-keys", "-t", session, "Escape");
    await waitFor("the tables back after Esc", () => (capture(session).includes("COORDINATORS") ? true : undefined));
    expect(exited(pid)).toBe(false);
    tmux(session, "resize-window", "-t", session, "-x", "120", "-y", "40");

    own.proc.kill("SIGKILL");
    await own.proc.exited;
    await waitFor("the unreachable error on screen", () => (capture(session).includes(`coordinator 127.0.0.1:${own.port} unreachable:`) ? true : undefined));
    expect(exited(pid)).toBe(false);

    const again = cluster.spawn("coordinator", ["-p", String(own.port), "--node-id", "top-e2e-back", "--log-level", "warn"]);
    await waitFor("the restarted coordinator to listen", () => (again.output().includes("listening on") ? true : undefined));
    // The error lines go only when a poll succeeds again; the worker finds the new process too.
    // (Not by node id: on a 120-column screen the NODE column may give way to others.)
    await waitFor("the dashboard to recover", () => {
      const s = capture(session);
      return !s.includes("unreachable") && s.includes("coordinators 1/1 reachable") && /WORKERS \(1 link\)/.test(s) ? true : undefined;
    });

    await expectQuitRestoresTerminal(session, pid, "q");
  }, TEST_TIMEOUT_MS);

  test("opens a shard's detail view (replicas, roles, in sync, epoch, lag) at 80x24 and 200x50, and closes it", async () => {
    // A replica pair behind a router: the router's stats carry both replicas of shard 0.
    const pair = await cluster.replicas(2);
    const { primary, backup } = await cluster.pairInSync(pair);
    const router = await cluster.router([primary.port, backup.port]);
    const session = "detail";
    const pid = startTopInTmux(session, ["-p", String(router.port), "--interval-ms", "200"]);
    tmux(session, "resize-window", "-t", session, "-x", "80", "-y", "24");
    await waitFor("both replicas in the tables", () => (capture(session).includes("coordinators 2/2 reachable") ? true : undefined));
    tmux(session, "send-keys", "-t", session, "Down");
    tmux(session, "send-keys", "-t", session, "Enter");
    const small = await waitFor("the shard view at 80x24", () => {
      const lines = capture(session).trimEnd().split("\n");
      // The whole frame, not half of it: a capture may land while the terminal is still
      // taking the new frame, with the overview's ADDRESS header below the shard heading.
      const header = lines.find((l) => l.startsWith("ADDRESS"));
      const drawn = header !== undefined && header.includes("APPLIED") && lines.some((l) => l.startsWith("SHARD 0   2 replicas"));
      return drawn && lines.some((l) => l.startsWith(`127.0.0.1:${backup.port}`)) ? lines : undefined;
    });
    expect(small.length).toBeLessThanOrEqual(24);
    for (const l of small) expect(l.trimEnd().length).toBeLessThanOrEqual(80);
    const header = small.find((l) => l.startsWith("ADDRESS"))!;
    for (const column of ["ROLE", "EPOCH", "APPLIED", "LAG", "IN SYNC"]) expect(header).toContain(column);
    expect(small.find((l) => l.startsWith(`127.0.0.1:${primary.port}`))).toMatch(/primary\s+\d+\s+[\d,]+\s+-\s+1 in sync/);
    await waitFor("the backup in sync, lag 0", () => (/backup\s+\d+\s+[\d,]+\s+0\s+in sync/.test(capture(session)) ? true : undefined));

    tmux(session, "resize-window", "-t", session, "-x", "200", "-y", "50");
    await waitFor("every replica column at 200x50", () => {
      const h = capture(session).split("\n").find((l) => l.startsWith("ADDRESS"));
      return h !== undefined && ["NODE", "ROLE", "EPOCH", "APPLIED", "LAG", "IN SYNC", "FOLLOWING", "UPTIME"].every((c) => h.includes(c)) ? true : undefined;
    });
    expect(capture(session)).toContain(`127.0.0.1:${primary.port}`);
    tmux(session, "send-keys", "-t", session, "Escape");
    await waitFor("the tables back after Esc", () => (capture(session).includes("COORDINATORS (2)") ? true : undefined));
    expect(exited(pid)).toBe(false);
    tmux(session, "send-keys", "-t", session, "0");
    await waitFor("the shard view on the digit 0", () => (capture(session).includes("SHARD 0   2 replicas") ? true : undefined));
    await expectQuitRestoresTerminal(session, pid, "q");
  }, TEST_TIMEOUT_MS);

  test("keeps running against nothing, showing the error, and quits on Ctrl-C", async () => {
    const session = "down";
    const port = closedPort();
    const pid = startTopInTmux(session, ["-p", String(port), "--interval-ms", "200"]);
    await waitFor("the unreachable error on screen", () => (capture(session).includes(`127.0.0.1:${port} unreachable:`) ? true : undefined));
    // Several failed polls later it is still there, still saying so.
    await waitFor("a few more polls", () => (/over [3-9] polls|over \d\d polls/.test(capture(session)) ? true : undefined));
    expect(exited(pid)).toBe(false);
    expect(capture(session)).toContain("no figures yet");
    await expectQuitRestoresTerminal(session, pid, "C-c");
  }, TEST_TIMEOUT_MS);
});
