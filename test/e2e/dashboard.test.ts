// The router's web dashboard in a real headless browser (Debian's chromium,
// driven by puppeteer-core) against a live cluster with tokens: the shard
// table, a chart that moves while a client runs, a dead letter requeued from
// the page until it completes, a task error shown as text (not run as HTML),
// and a read token that can neither click requeue nor force it past the server.
//   DASHBOARD_SCREENSHOTS=1 bun test --timeout 120000 test/e2e/dashboard.test.ts   (rewrites docs/dashboard*.png)

import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { Cluster, freePort, waitFor } from "./harness.ts";
import { TOKENS, writeTokensFile } from "./tokens.ts";

// What the functions run inside the page use of the browser (the project's TypeScript has no DOM library).
declare const document: { getElementById(id: string): { textContent: string | null } | null; querySelector(selector: string): unknown; querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };
declare const window: { __injected?: number };
type Canvas = { toDataURL(): string; dataset: Record<string, string> };
type Button = { disabled: boolean; click(): void };

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM): the dashboard's browser test is skipped`;
if (missing !== undefined) console.warn(missing);
const DOCS = resolve(import.meta.dir, "../../docs");
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS === "1";
const FAIL_ONCE = resolve(import.meta.dir, "fixtures/dashboard-handlers.ts");
/** A task error that would run script if the page ever put it in as HTML. */
const HOSTILE_ERROR = `<img src=x onerror="window.__injected=1"><script>window.__injected=2</script>`;

let cluster: Cluster;
let browser: Browser;
let base = "";
let routerPort = 0;
let dir = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dashboard-test-"));
  const tokens = join(dir, "tokens");
  writeTokensFile(tokens);
  cluster = new Cluster({
    serverArgs: ["--tokens", tokens], workerArgs: ["--token", TOKENS.worker], clientArgs: ["--token", TOKENS.submit], sdk: { token: TOKENS.replica },
  });
  // Shard 0 a replica pair, shard 1 one coordinator: the table shows a primary, a backup and lag.
  const pair = await cluster.replicas(2, ["--shard", "0"]);
  const shard1 = await cluster.coordinator(["--shard", "1"]);
  const ports = [...pair.map((p) => p.port), shard1.port];
  cluster.worker(ports, ["-w", "4", "--handlers", FAIL_ONCE]);
  const httpPort = freePort();
  const router = await cluster.router(ports, ["--http-port", String(httpPort)]);
  base = `http://127.0.0.1:${httpPort}`;
  routerPort = router.port;
  await cluster.workersJoined(router.port, 2);
  await cluster.pairInSync(pair);
  if (missing !== undefined) return;
  const puppeteer = await import("puppeteer-core");
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stopAll();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

/** A page with `token` in use, failing the test on any script error or CSP violation it reports. */
async function openDashboard(token: string, access: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${String(err)}`));
  page.on("console", (m) => {
    // Refusals (before the token is in, or a forced click) are the API's answers, shown by the page: not problems.
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe("/ui");
  await page.type("#token-input", token);
  await page.click("#token-form button[type=submit]");
  await page.waitForFunction((label) => document.getElementById("access")!.textContent === label, { timeout: 10_000 }, access);
  // The token is used at once: the refusal of the first poll (sent without it) gives way to an update.
  await page.waitForFunction(() => document.getElementById("poll-status")!.textContent!.startsWith("updated"), { timeout: 10_000 });
  return { page, problems };
}

/** Submits a `fail-once` task over REST; it fails with `message` and lands in the dead-letter queue. */
async function deadLetter(message: string, idempotencyKey?: string): Promise<number> {
  const marker = join(dir, `marker-${Math.random().toString(36).slice(2)}`);
  const r = await fetch(`${base}/v1/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKENS.submit}` },
    body: JSON.stringify({ type: "fail-once", payload: { marker, message }, maxAttempts: 1, idempotencyKey }),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { taskId: number }).taskId;
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

test("the page's files: no token needed, their types, a strict CSP, revalidated by ETag; what a token allows", async () => {
  const home = await fetch(`${base}/`, { redirect: "manual" });
  expect([home.status, home.headers.get("location")]).toEqual([308, "/ui"]);
  const files: Array<[string, string]> = [
    ["/ui", "text/html"], ["/ui/", "text/html"], ["/ui/style.css", "text/css"],
    ...["app", "api", "chart", "views", "actions"].map((m): [string, string] => [`/ui/${m}.js`, "text/javascript"]),
  ];
  for (const [path, type] of files) {
    const r = await fetch(base + path);
    expect([path, r.status, r.headers.get("content-type")]).toEqual([path, 200, `${type}; charset=utf-8`]);
    expect(r.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(r.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("cache-control")).toBe("no-cache");
    const again = await fetch(base + path, { headers: { "if-none-match": r.headers.get("etag")! } });
    expect([path, again.status]).toEqual([path, 304]);
  }
  // No script or style is inline: the CSP would block it, and it is where injected markup would hide.
  const page = await (await fetch(`${base}/ui`)).text();
  expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=/i);
  expect((await fetch(`${base}/ui/secret.js`)).status).toBe(404);
  const post = await fetch(`${base}/ui`, { method: "POST" });
  expect([post.status, post.headers.get("allow")]).toEqual([405, "GET"]);

  const access = async (token?: string) => {
    const r = await fetch(`${base}/v1/access`, token === undefined ? {} : bearer(token));
    return r.status === 200 ? ((await r.json()) as { permissions: string[] }).permissions : r.status;
  };
  expect(await access(TOKENS.read)).toEqual(["read"]);
  expect(await access(TOKENS.submit)).toEqual(["read", "submit"]);
  expect(await access(TOKENS.admin)).toEqual(["read", "submit", "admin"]);
  expect(await access()).toBe(401);
  expect(await access("not-a-token-of-this-cluster")).toBe(401);
  expect(await access(TOKENS.worker)).toBe(403);
});

const dlqRow = (id: number) => `#dlq tr[data-task="${id}"]`;
const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent ?? "");

test.skipIf(missing !== undefined)("an admin sees the shards, a chart moving under load, requeues a dead letter until it completes, and cancels a queued task", async () => {
  const { page, problems } = await openDashboard(TOKENS.admin, "admin");
  // Three coordinators: a primary for each shard and shard 0's backup.
  await page.waitForFunction(() => document.querySelectorAll("#shards tbody tr").length === 3, { timeout: 10_000 });
  const roles = await page.$$eval("#shards tbody tr", (rows) => rows.map((r) => [r.cells[0]!.textContent, r.cells[3]!.textContent]));
  expect(roles).toEqual([["0", "primary"], ["0", "backup"], ["1", "primary"]]);
  await page.waitForFunction(() => document.querySelectorAll("#workers tbody tr").length === 2, { timeout: 10_000 });

  // A bounded open-loop run (1,500 tasks over 5 s): the throughput chart redraws with what it completes.
  const chart = () => page.$eval("#throughput-chart", (c) => ({ image: (c as unknown as Canvas).toDataURL(), completed: Number((c as unknown as Canvas).dataset.completed) }));
  const before = await chart();
  const run = cluster.client(["-p", String(routerPort), "--rate", "300", "--duration-s", "5", "-n", "1500", "--json"], 60_000);
  const moved = await waitFor("the throughput chart to move", async () => {
    const now = await chart();
    return now.completed >= before.completed + 300 && now.image !== before.image ? now : undefined;
  }, 20_000);
  expect(moved.completed).toBeGreaterThan(before.completed);
  expect((await run).code).toBe(0);
  await waitFor("the page to count the whole run", async () => ((await chart()).completed >= before.completed + 1500 ? true : undefined), 10_000);

  // A task whose error is hostile HTML: dead-lettered, shown as text, requeued from the page, completed.
  const id = await deadLetter(HOSTILE_ERROR);
  await page.waitForSelector(dlqRow(id), { timeout: 15_000 });
  expect(await text(page, `${dlqRow(id)} td.error`)).toContain(HOSTILE_ERROR);
  expect(await page.$$eval("#dlq img, #dlq script", (found) => found.length)).toBe(0);
  expect(await page.evaluate(() => window.__injected)).toBeUndefined();
  if (SCREENSHOTS) await page.screenshot({ path: join(DOCS, "dashboard.png"), fullPage: true });
  await page.click(`${dlqRow(id)} button.requeue`);
  await page.waitForFunction((sel) => document.querySelector(sel) === null, { timeout: 10_000 }, dlqRow(id));
  expect(await text(page, "#action-status")).toBe(`requeue task ${id}: done`);
  // Found by id: completed on its second run, the first run's error kept among its attempts, as text.
  await page.type("#task-query", String(id));
  const state = await waitFor("the requeued task to complete", async () => {
    await page.click("#task-form button[type=submit]");
    const shown = await page.$eval("#task", (t) => t.textContent ?? "");
    return shown.includes("completed") ? shown : undefined;
  }, 15_000);
  expect(state).toContain(HOSTILE_ERROR);
  expect(await page.$$eval("#task img, #task script", (found) => found.length)).toBe(0);
  expect(await page.evaluate(() => window.__injected)).toBeUndefined();

  // A task no worker runs waits in its shard's queue under its priority; cancelled from the page.
  const submitted = await fetch(`${base}/v1/tasks`, { method: "POST", ...bearer(TOKENS.submit), body: JSON.stringify({ type: "nobody-runs-this", priority: 7 }) });
  const waiting = ((await submitted.json()) as { taskId: number }).taskId;
  const queuedAt7 = () => Array.from(document.querySelectorAll("#queues tbody td:last-child")).some((cell) => /\b7: 1\b/.test(cell.textContent ?? ""));
  await page.waitForFunction(queuedAt7, { timeout: 10_000 });
  await page.$eval("#task-query", (input) => ((input as unknown as { value: string }).value = ""));
  await page.type("#task-query", String(waiting));
  await page.click("#task-form button[type=submit]");
  await page.waitForFunction((id) => document.getElementById("task")!.textContent!.includes(`${id}`) && document.querySelector("#task button.danger") !== null, { timeout: 10_000 }, waiting);
  await page.click("#task button.danger");
  await page.waitForFunction((id) => document.getElementById("action-status")!.textContent === `cancel task ${id}: done`, { timeout: 10_000 }, waiting);
  await page.waitForFunction(() => document.getElementById("task")!.textContent!.includes("cancelled"), { timeout: 10_000 });
  await page.waitForFunction(`!(${queuedAt7.toString()})()`, { timeout: 10_000 });
  expect(problems).toEqual([]);
  await page.close();
}, 90_000);

test.skipIf(missing !== undefined)("a read token sees the dead letter but cannot requeue it: the button is disabled and the server refuses a forced click", async () => {
  const key = `read-only-view-${Date.now()}`;
  const id = await deadLetter("fails for the read-only view", key);
  const { page, problems } = await openDashboard(TOKENS.read, "read-only");
  await page.waitForSelector(dlqRow(id), { timeout: 15_000 });
  // Found by its idempotency key, whichever shard holds it.
  await page.type("#task-query", key);
  await page.click("#task-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#task dl") !== null, { timeout: 10_000 });
  expect(await page.$eval("#task dd", (d) => d.textContent)).toBe(String(id));
  const button = `${dlqRow(id)} button.requeue`;
  expect(await page.$eval(button, (b) => (b as unknown as Button).disabled)).toBe(true);
  expect(await page.$eval("#dlq-purge-all", (b) => (b as unknown as Button).disabled)).toBe(true);
  if (SCREENSHOTS) await page.screenshot({ path: join(DOCS, "dashboard-read-only.png"), fullPage: true });
  // Forced: the request goes out with the read token, and the server's 403 is what the page shows.
  await page.$eval(button, (b) => {
    (b as unknown as Button).disabled = false;
    (b as unknown as Button).click();
  });
  await page.waitForFunction(() => document.getElementById("action-status")!.textContent!.includes("refused"), { timeout: 10_000 });
  expect(await text(page, "#action-status")).toContain("403 E_UNAUTHORIZED");
  expect(await text(page, "#action-status")).toContain("admin role");
  const stillDead = await fetch(`${base}/v1/dlq/${id}`, { headers: { authorization: `Bearer ${TOKENS.read}` } });
  expect(stillDead.status).toBe(200);
  // The token is never in the document.
  expect(await page.content()).not.toContain(TOKENS.read);
  expect(problems).toEqual([]);
  await page.close();
}, 60_000);
