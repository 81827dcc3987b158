// The web dashboard's cost in a real browser (Debian's chromium): page load,
// and the browser's scripting time per poll, on a two-shard cluster holding
// 100,000 finished tasks while an open-loop client offers 1,000 tasks/s. Also
// the size and the router's answer time of GET /v1/cluster, what each poll asks.
// Needs `bun run build` and chromium.
//
//   bun bench/dashboard.ts [--retained 100000] [--rate 1000] [--seconds 30]

import { parseArgs } from "node:util";
import { Cluster, freePort, waitFor } from "../test/e2e/harness.ts";

const { values } = parseArgs({ options: { retained: { type: "string", default: "100000" }, rate: { type: "string", default: "1000" }, seconds: { type: "string", default: "30" } } });
const RETAINED = Number(values.retained);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

const cluster = new Cluster();
try {
  const shards = await Promise.all([0, 1].map((s) => cluster.coordinator(["--shard", String(s), "--retained-max", String(RETAINED)])));
  const ports = shards.map((s) => s.port);
  cluster.worker(ports, ["-w", "2"]);
  const httpPort = freePort();
  const router = await cluster.router(ports, ["--http-port", String(httpPort)]);
  await cluster.workersJoined(router.port, 2);
  const base = `http://127.0.0.1:${httpPort}`;

  console.log(`filling: ${RETAINED} noop tasks`);
  const fill = await cluster.client(["-p", String(router.port), "-n", String(RETAINED), "-c", "256", "--json"], 600_000);
  if (fill.code !== 0) throw new Error(`the fill run failed: ${fill.stderr}`);
  const retained = async () => (await cluster.stats(router.port)).coordinators.reduce((n, c) => n + (c.stats?.retained ?? 0), 0);
  await waitFor(`${RETAINED} tasks retained`, async () => ((await retained()) >= RETAINED ? true : undefined));

  console.log(`load: ${RATE} tasks/s for ${SECONDS + 20} s`);
  const load = cluster.client(["-p", String(router.port), "--rate", String(RATE), "--duration-s", String(SECONDS + 20), "--json"], (SECONDS + 120) * 1000);

  // What one poll asks of the router.
  const answers: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    bytes = (await (await fetch(`${base}/v1/cluster`)).arrayBuffer()).byteLength;
    answers.push(performance.now() - started);
  }

  const puppeteer = await import("puppeteer-core");
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    const loads: number[] = [];
    for (let i = 0; i < 5; i++) {
      await page.goto(`${base}/ui`);
      // Page load: from navigation to the end of the first drawn update (tables and charts filled).
      await page.waitForFunction(() => performance.getEntriesByName("update").length > 0, { timeout: 10_000 });
      // Plain numbers: a PerformanceEntry does not survive the trip out of the page.
      loads.push(await page.evaluate(() => {
        const first = performance.getEntriesByName("update")[0]!;
        return first.startTime + first.duration;
      }));
    }
    await Bun.sleep(3000);
    const before = await page.metrics();
    const updatesBefore = await page.evaluate(() => performance.getEntriesByName("update").length);
    await Bun.sleep(SECONDS * 1000);
    const after = await page.metrics();
    const updates = await page.evaluate(() => performance.getEntriesByName("update").map((e) => e.duration));
    const polls = updates.length - updatesBefore;
    const renders = updates.slice(updatesBefore);
    const result = {
      retained: await retained(),
      offeredPerS: RATE,
      clusterAnswerBytes: bytes,
      clusterAnswerMsMedian: round(median(answers)),
      pageLoadMsMedian: round(median(loads)),
      pageLoadMsRuns: loads.map((x) => round(x, 0)),
      polls,
      scriptMsPerPoll: round((((after.ScriptDuration ?? 0) - (before.ScriptDuration ?? 0)) * 1000) / polls),
      taskMsPerPoll: round((((after.TaskDuration ?? 0) - (before.TaskDuration ?? 0)) * 1000) / polls),
      renderMsMedian: round(median(renders)),
      renderMsMax: round(Math.max(...renders)),
      jsHeapMb: round((after.JSHeapUsedSize ?? 0) / 2 ** 20, 1),
      domNodes: after.Nodes,
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await browser.close();
  }
  const run = await load;
  const report = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "{}");
  console.log(`load run: exit ${run.code}, ${report.throughput} tasks/s completed, p99 ${report.latencyMs?.p99} ms`);
} finally {
  await cluster.stopAll();
}
