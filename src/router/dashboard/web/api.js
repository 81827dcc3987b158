// The REST API as the page calls it: the user's token as a bearer, answers as
// JSON, errors as ApiError with the API's {code, message}.
//
// The token lives in sessionStorage: it survives a reload of this tab but not
// closing it, no other tab or site reads it, and unlike a cookie the browser
// never sends it by itself (so no cross-site request can use it). The page
// never writes it into the document.

const TOKEN_KEY = "task-scheduler.token";
/** A request not answered in this long fails, so a stalled router cannot pile up polls. */
const REQUEST_TIMEOUT_MS = 5000;

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** `method path` with the token; resolves with the JSON body of a 2xx, rejects with ApiError otherwise. */
export async function api(method, path) {
  const headers = {};
  const bearer = token.get();
  if (bearer !== "") headers.authorization = `Bearer ${bearer}`;
  let res;
  try {
    res = await fetch(path, { method, headers, cache: "no-store", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new ApiError(0, "E_NETWORK", `${method} ${path}: ${err.name === "TimeoutError" ? "no answer in time" : "the router is not reachable"}`);
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? "E_HTTP", body?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
  return body;
}

const id = (taskId) => encodeURIComponent(String(taskId));

export const cluster = () => api("GET", "/v1/cluster");
export const access = () => api("GET", "/v1/access");
export const task = (taskId) => api("GET", `/v1/tasks/${id(taskId)}`);
export const taskByKey = (key) => api("GET", `/v1/tasks?idempotencyKey=${encodeURIComponent(key)}`);
export const cancel = (taskId) => api("DELETE", `/v1/tasks/${id(taskId)}`);
export const deadLetters = (offset, limit) => api("GET", `/v1/dlq?offset=${offset}&limit=${limit}`);
export const requeue = (taskId) => api("POST", `/v1/dlq/${id(taskId)}/requeue`);
export const purge = (taskId) => api("DELETE", `/v1/dlq/${id(taskId)}`);
export const purgeAll = () => api("DELETE", "/v1/dlq");
