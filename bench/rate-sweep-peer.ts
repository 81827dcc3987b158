// One JetStream set-up (bench/peers/jetstream, memory / file / r3) kept up for
// a whole rate sweep: its run.sh with --serve starts the nats-server(s) and
// the worker once, then runs one open loop per rate we write on its stdin and
// answers with one JSON line in our client's --json shape. So the sweep can
// alternate its runs with ours at every rate, each side's servers staying warm.

import { resolve } from "node:path";

export type JetStreamMode = "memory" | "file" | "r3";

const RUN_SH = resolve(import.meta.dir, "peers/jetstream/run.sh");
/** nats-server(s) up (an R3 cluster elects a leader), the worker consuming, 10,000 warm-up jobs done. */
const START_MS = 90_000;
/** After each run's own deadline: its worker check, and the drain of a run its servers could not keep up with. */
const RUN_GRACE_MS = 30_000;
const STOP_MS = 15_000;

/** The lines of a byte stream, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: Timer | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what()}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export class JetStreamPeer {
  private readonly proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  private readonly stdout: AsyncGenerator<string>;
  private stderr = "";
  private readonly runDeadlineS: number;

  private constructor(readonly mode: JetStreamMode, durationS: number, warmupS: number) {
    // The peer's own bound on each run: its warm-up and measured schedule, then as long again for a backlog to drain.
    this.runDeadlineS = Math.ceil(2 * (durationS + warmupS)) + 10;
    const proc = Bun.spawn(["bash", RUN_SH, "--mode", mode, "--workload", "open", "--serve", "--duration-s", String(durationS), "--warmup-s", String(warmupS), "--deadline-s", String(this.runDeadlineS)], {
      stdin: "pipe", stdout: "pipe", stderr: "pipe",
    });
    this.proc = proc;
    this.stdout = lines(proc.stdout);
    void (async () => {
      for await (const line of lines(proc.stderr)) this.stderr = `${this.stderr}${line}\n`.slice(-4_000);
    })();
  }

  /** Starts the set-up; resolves once it says "ready" (servers, worker and warm-up done). */
  static async start(mode: JetStreamMode, durationS: number, warmupS: number): Promise<JetStreamPeer> {
    const peer = new JetStreamPeer(mode, durationS, warmupS);
    try {
      const first = await within(peer.nextLine(), START_MS, () => peer.describe("start"));
      if (first !== "ready") throw new Error(`${peer.describe("start")}: said ${JSON.stringify(first.slice(0, 200))} instead of ready`);
    } catch (err) {
      await peer.stop();
      throw err;
    }
    return peer;
  }

  /** The version line it printed: nats-server's, the set-up and the runtime. */
  get info(): string | undefined {
    return this.stderr.split("\n").find((l) => l.startsWith("jetstream:"));
  }

  /** One open-loop run at `rate`: its warm-up, then the measured schedule; the report of the measured part. */
  async run(rate: number): Promise<Record<string, any>> {
    this.proc.stdin.write(`${rate}\n`);
    this.proc.stdin.flush();
    const line = await within(this.nextLine(), this.runDeadlineS * 1000 + RUN_GRACE_MS, () => this.describe(`run at ${rate}/s`));
    try {
      return JSON.parse(line) as Record<string, any>;
    } catch {
      throw new Error(`${this.describe(`run at ${rate}/s`)}: not a JSON report: ${line.slice(0, 200)}`);
    }
  }

  /** Ends its input (it stops its worker and servers); SIGTERM, then SIGKILL, when it does not end. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    try {
      this.proc.stdin.end();
    } catch {
      // Its stdin is already closed: it is on its way out.
    }
    const exited = this.proc.exited.then(() => true);
    const waitUpTo = (ms: number) => Promise.race([exited, Bun.sleep(ms).then(() => false)]);
    if (await waitUpTo(STOP_MS)) return;
    this.proc.kill("SIGTERM");
    if (await waitUpTo(STOP_MS)) return;
    this.proc.kill("SIGKILL");
    await exited;
  }

  private async nextLine(): Promise<string> {
    const next = await this.stdout.next();
    if (next.done) {
      await this.proc.exited;
      throw new Error(`${this.describe("output")}: ended (exit ${this.proc.exitCode})`);
    }
    return next.value;
  }

  private describe(what: string): string {
    const tail = this.stderr.trim().split("\n").slice(-3).join(" | ");
    return `jetstream ${this.mode} ${what}${tail === "" ? "" : ` [${tail}]`}`;
  }
}
