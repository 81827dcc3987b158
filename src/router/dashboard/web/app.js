// The dashboard page: polls GET /v1/cluster once a second (never the task
// table: stats are counters and a page of at most DLQ_PAGE dead letters), and
// redraws the tables and charts from it. Every update goes through
// onClusterView(), so a server-sent event stream can feed it instead of the
// poll without touching the views.

import * as rest from "./api.js";
import { accessLabel, act, applyPermissions, loadPermissions } from "./actions.js";
import { drawChart } from "./chart.js";
import { el, renderDeadLetters, renderQueues, renderShards, renderTask, renderWorkers, sampleOf, shardsWithoutPrimary } from "./views.js";

const POLL_MS = 1000;
/** Five minutes of samples at one a second. */
const SAMPLES_MAX = 300;
const DLQ_PAGE = 20;
/** The dead-letter page is fetched on every this-many polls (and after each action): it changes less often than counters. */
const DLQ_EVERY_POLLS = 3;
const COLORS = { completed: "#1f77b4", failed: "#d62728", submitted: "#8c8c8c", p50: "#2ca02c", p99: "#ff7f0e" };

const $ = (id) => document.getElementById(id);
const samples = [];
let dlqOffset = 0;
let polls = 0;
let shownTask;
let nextPoll;
let polling = false;
let pollAgain = false;

/** One view of the cluster (from a poll, or later from an event): redraws everything that depends on it. */
function onClusterView(view, atMs) {
  performance.mark("update-start");
  $("router").textContent = `router ${view.router.nodeId}, up ${Math.round(view.router.uptimeMs / 1000)} s, ${view.router.clients} client(s)`;
  const missing = shardsWithoutPrimary(view);
  $("shard-warning").textContent = missing.length > 0 ? `no primary for shard ${missing.join(", ")}` : "";
  renderShards($("shards").tBodies[0], view);
  renderQueues($("queues").tBodies[0], view);
  renderWorkers($("workers").tBodies[0], view);
  samples.push(sampleOf(view, atMs));
  if (samples.length > SAMPLES_MAX) samples.shift();
  drawCharts();
  performance.measure("update", "update-start");
}

/** Per-second rates from consecutive samples (counters can drop when a primary changes: shown as a gap). */
function rates(key) {
  return samples.slice(1).map((s, i) => {
    const prev = samples[i];
    const perS = ((s[key] - prev[key]) * 1000) / Math.max(1, s.atMs - prev.atMs);
    return perS >= 0 ? perS : NaN;
  });
}

function drawCharts() {
  const span = samples.length > 1 ? (samples.at(-1).atMs - samples[0].atMs) / 1000 : 0;
  const completed = rates("completed");
  drawChart($("throughput-chart"), [
    { color: COLORS.submitted, values: rates("submitted") },
    { color: COLORS.failed, values: rates("failed") },
    { color: COLORS.completed, values: completed },
  ], span, "tasks/s");
  const last = completed.at(-1);
  $("throughput-now").textContent = Number.isFinite(last) ? `${Math.round(last)} completed/s` : "";
  $("throughput-chart").dataset.completed = String(samples.at(-1)?.completed ?? 0);
  drawChart($("latency-chart"), [
    { color: COLORS.p50, values: samples.map((s) => s.p50) },
    { color: COLORS.p99, values: samples.map((s) => s.p99) },
  ], span, "ms");
  const s = samples.at(-1);
  $("latency-now").textContent = s ? `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms (slowest shard, last few seconds)` : "";
}

/** Two decimals below 10 ms, whole milliseconds above: the figures are rounded on the coordinator anyway. */
const ms = (v) => (v < 10 ? v.toFixed(2) : String(Math.round(v)));

async function refreshDeadLetters() {
  const page = await rest.deadLetters(dlqOffset, DLQ_PAGE);
  if (page.tasks.length === 0 && dlqOffset > 0 && page.total > 0) {
    dlqOffset = Math.max(0, page.total - DLQ_PAGE);
    return refreshDeadLetters();
  }
  const tbody = $("dlq").tBodies[0];
  renderDeadLetters(tbody, page, {
    requeue: (id) => act(`requeue task ${id}`, () => rest.requeue(id), refreshDeadLetters),
    purge: (id) => act(`purge task ${id}`, () => rest.purge(id), refreshDeadLetters),
  });
  applyPermissions(tbody);
  $("dlq-total").textContent = page.total === 0 ? "(empty)" : `(${dlqOffset + 1}–${dlqOffset + page.tasks.length} of ${page.total})`;
  $("dlq-prev").disabled = dlqOffset === 0;
  $("dlq-next").disabled = dlqOffset + DLQ_PAGE >= page.total;
}

/** One poll now (the next one a second after it): at most one in flight, however often it is asked for. */
async function poll() {
  if (polling) return void (pollAgain = true);
  polling = true;
  clearTimeout(nextPoll);
  const status = $("poll-status");
  try {
    onClusterView(await rest.cluster(), Date.now());
    if (polls++ % DLQ_EVERY_POLLS === 0) await refreshDeadLetters();
    status.className = "status";
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.className = "status error";
    status.textContent = err.status === 401 || err.status === 403 ? `${err.message}: paste a token with the read role` : err.message;
  }
  polling = false;
  if (pollAgain) {
    pollAgain = false;
    return poll();
  }
  // Scheduled after the answer, so a slow router never has two polls of ours waiting.
  nextPoll = setTimeout(poll, POLL_MS);
}

async function showTask(query) {
  const container = $("task");
  const q = query.trim();
  if (q === "") return container.replaceChildren();
  try {
    const info = /^\d+$/.test(q) ? await rest.task(q) : await rest.taskByKey(q);
    shownTask = info.taskId;
    renderTask(container, info, (id) => act(`cancel task ${id}`, () => rest.cancel(id), () => showTask(String(id))));
    applyPermissions(container);
  } catch (err) {
    shownTask = undefined;
    container.replaceChildren(el("p", { class: "status error" }, err.message));
  }
}

/** A new token (or none): what it allows, and everything shown fetched again with it at once. */
async function useToken() {
  await loadPermissions();
  $("access").textContent = accessLabel();
  polls = 0;
  await poll();
  if (shownTask !== undefined) await showTask(String(shownTask));
}

function wire() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("token-input");
    if (input.value.trim() !== "") rest.token.set(input.value.trim());
    // Cleared at once: the token is never left in the document.
    input.value = "";
    void useToken();
  });
  $("token-forget").addEventListener("click", () => {
    rest.token.forget();
    void useToken();
  });
  $("task-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void showTask($("task-query").value);
  });
  $("dlq-prev").addEventListener("click", () => {
    dlqOffset = Math.max(0, dlqOffset - DLQ_PAGE);
    void refreshDeadLetters();
  });
  $("dlq-next").addEventListener("click", () => {
    dlqOffset += DLQ_PAGE;
    void refreshDeadLetters();
  });
  $("dlq-purge-all").addEventListener("click", () => {
    if (confirm("Purge every task in the dead-letter queue? They cannot be requeued afterwards.")) void act("purge the dead-letter queue", rest.purgeAll, refreshDeadLetters);
  });
}

wire();
void useToken();
