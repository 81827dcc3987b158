// What the user may do, and doing it. Buttons name the role they need
// (data-needs); those the token lacks are disabled. The server checks again on
// every request: a forced click gets its 403, shown here like any other error.

import * as rest from "./api.js";

let permissions = new Set();

/** Asks the router what the current token allows, and disables what it does not. */
export async function loadPermissions() {
  try {
    permissions = new Set((await rest.access()).permissions);
  } catch (err) {
    permissions = new Set();
    if (!(err instanceof rest.ApiError)) throw err;
  }
  applyPermissions(document);
  return permissions;
}

/** Disables, under `root`, every button whose role the token lacks (and says why on hover). */
export function applyPermissions(root) {
  for (const button of root.querySelectorAll("[data-needs]")) {
    const needed = button.getAttribute("data-needs");
    if (permissions.has(needed)) {
      if (button.title.startsWith("needs")) button.title = "";
      // A button disabled for another reason (a finished task's cancel) keeps that.
      if (button.dataset.lacked === "1") button.disabled = false;
      delete button.dataset.lacked;
    } else {
      button.disabled = true;
      button.dataset.lacked = "1";
      button.title = `needs a token with the ${needed} role`;
    }
  }
}

export const accessLabel = () =>
  permissions.has("admin") ? "admin" : permissions.has("submit") ? "submit" : permissions.has("read") ? "read-only" : "no access";

/** Runs `request`, says how it went in the action status line, then calls `after` (a refresh). */
export async function act(what, request, after) {
  const status = document.getElementById("action-status");
  status.className = "status";
  status.textContent = `${what}…`;
  try {
    await request();
    status.textContent = `${what}: done`;
  } catch (err) {
    status.className = "status error";
    status.textContent = err instanceof rest.ApiError ? `${what}: refused (${err.status} ${err.code}): ${err.message}` : `${what}: ${err.message}`;
  }
  await after?.();
}
