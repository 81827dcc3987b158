// Tables and panels from the API's JSON. Every value goes in as text
// (textContent), never as HTML: task types, payloads, results and errors are
// user data, and this is what keeps a task named <script> from running.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, String(v));
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== undefined && c !== null).map((c) => (typeof c === "string" ? c : c instanceof Node ? c : String(c))));
  return node;
}

const num = (v) => el("td", { class: "num" }, v === undefined ? "" : String(v));
const text = (v) => el("td", {}, v === undefined || v === null ? "" : String(v));

export function duration(ms) {
  if (!Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

const time = (at) => (at > 0 ? new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");

/** The coordinators the router reached, grouped by shard, primaries first. */
export function byShard(view) {
  const rows = view.coordinators.map((c) => ({ address: c.address, reachable: c.reachable, error: c.error, stats: c.stats }));
  const shardOf = (r) => r.stats?.shard ?? Infinity;
  return rows.sort((a, b) => shardOf(a) - shardOf(b) || Number(b.stats?.primary ?? false) - Number(a.stats?.primary ?? false));
}

/** Shards (from the coordinators reached) that have no primary now. */
export function shardsWithoutPrimary(view) {
  const shards = new Set();
  const led = new Set();
  for (const c of view.coordinators) {
    if (c.stats === undefined) continue;
    shards.add(c.stats.shard);
    if (c.stats.primary) led.add(c.stats.shard);
  }
  return [...shards].filter((s) => !led.has(s)).sort((a, b) => a - b);
}

export function renderShards(tbody, view) {
  const primaryApplied = new Map();
  for (const c of view.coordinators) if (c.stats?.primary) primaryApplied.set(c.stats.shard, c.stats.replication.appliedIndex);
  tbody.replaceChildren(...byShard(view).map((row) => {
    const s = row.stats;
    if (s === undefined) return el("tr", { class: "bad" }, text("?"), text(row.address), el("td", { colSpan: 9 }, `unreachable: ${row.error ?? "no answer"}`));
    const r = s.replication;
    // A backup's lag: log entries its primary applied that it has not; a primary's: entries not yet acknowledged by its backups.
    const lag = s.primary ? r.appliedIndex - r.committedIndex : (primaryApplied.get(s.shard) ?? r.appliedIndex) - r.appliedIndex;
    const isr = r.isr?.join(", ") ?? (s.primary ? `${r.backupsInSync} backup(s)${r.alone ? ", alone" : ""}` : r.following ? `follows ${r.following}` : "");
    return el("tr", { class: s.primary ? "" : "backup" },
      num(s.shard), text(row.address), text(s.nodeId), text(r.role), num(s.epoch), num(r.appliedIndex), num(s.primary ? r.committedIndex : ""),
      num(lag), num(s.primary ? r.backupsInSync : ""), text(r.notLeading ? `${isr} (not leading: ${r.notLeading})` : isr), text(duration(s.uptimeMs)));
  }));
}

const primaries = (view) => byShard(view).filter((r) => r.stats?.primary).map((r) => r.stats);

/** "0: 12, 5: 3": queued tasks per priority (0 is the highest). */
const byPriority = (counts) => (counts ?? []).map((c) => `${c.priority}: ${c.queued}`).join(", ");

export function renderQueues(tbody, view) {
  tbody.replaceChildren(...primaries(view).map((s) => el("tr", {},
    num(s.shard), num(s.queued), num(s.leased), num(s.delayed), num(s.waiting), num(s.unmatched), num(s.dead),
    num(s.completed), num(s.failed), num(s.cancelled), num(s.retained), text(byPriority(s.queuedByPriority)))));
}

export function renderWorkers(tbody, view) {
  const rows = primaries(view).flatMap((s) => s.workers.map((w) => el("tr", {},
    num(s.shard), text(w.nodeId), num(w.id), num(w.slots), num(w.slots - w.free), num(w.done), num(w.failed),
    text(duration(w.heartbeatAgeMs)), text(w.tags.join(", ")), text(w.types === undefined ? "any" : w.types.join(", ")))));
  tbody.replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: 10 }, "no worker connected"))]));
}

/** Totals over the primaries: one sample of the charts. */
export function sampleOf(view, atMs) {
  const ps = primaries(view);
  const sum = (k) => ps.reduce((n, s) => n + s[k], 0);
  return {
    atMs,
    completed: sum("completed"),
    failed: sum("failed"),
    submitted: sum("submitted"),
    // The slowest shard's figures: an average would hide the one that is in trouble.
    p50: Math.max(0, ...ps.map((s) => s.latencyMs.p50)),
    p99: Math.max(0, ...ps.map((s) => s.latencyMs.p99)),
  };
}

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** One task, its attempts and errors; `onCancel` is bound to the cancel button. */
export function renderTask(container, info, onCancel) {
  const fields = [
    ["task", info.taskId], ["type", info.type], ["state", info.state], ["attempt", `${info.attempt} of ${info.maxAttempts}`],
    ["priority", info.priority], ["submitted", time(info.submittedAt)], ["finished", time(info.finishedAt)],
    ["run at", time(info.runAt)], ["deadline", time(info.deadline)], ["tags", info.tags.join(", ")],
    ["depends on", info.dependsOn.join(", ")], ["progress", info.progress === undefined ? "" : `${Math.round(info.progress * 100)} %`],
    ["last error", info.error ?? ""], ["result", info.result === undefined ? "" : JSON.stringify(info.result)],
  ];
  const cancel = el("button", { type: "button", class: "danger", "data-needs": "submit", disabled: TERMINAL.has(info.state), onclick: () => onCancel(info.taskId) }, "Cancel task");
  const errors = info.errors.length === 0 ? el("p", { class: "muted" }, "no failed attempt")
    : el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "attempt"), el("th", {}, "worker"), el("th", {}, "at"), el("th", {}, "error"))),
      el("tbody", {}, ...info.errors.map((e) => el("tr", {}, num(e.attempt), num(e.workerId), text(time(e.at)), el("td", { class: "error" }, `${e.code}: ${e.message}`)))));
  container.replaceChildren(
    el("dl", {}, ...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, el("pre", {}, String(v)))])),
    el("p", {}, cancel), el("h3", {}, "Failed attempts"), errors);
}

/** A page of the dead-letter queue; each row's buttons call `actions.requeue(id)` / `actions.purge(id)`. */
export function renderDeadLetters(tbody, page, actions) {
  const rows = page.tasks.map((t) => el("tr", { "data-task": t.taskId },
    num(t.taskId), text(t.type), num(t.attempt), el("td", { class: "error" }, t.error ?? ""), text(time(t.finishedAt)),
    el("td", {},
      el("button", { type: "button", class: "requeue", "data-needs": "admin", onclick: () => actions.requeue(t.taskId) }, "Requeue"), " ",
      el("button", { type: "button", class: "purge danger", "data-needs": "admin", onclick: () => actions.purge(t.taskId) }, "Purge"))));
  tbody.replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: 6 }, "empty"))]));
}
