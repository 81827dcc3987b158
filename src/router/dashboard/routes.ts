// The dashboard's routes on the router's HTTP port: `/` leads to `/ui`, which
// serves the page; its scripts and style are under `/ui/`. The
// files hold no cluster data, so they need no token: the page asks the REST
// API for everything with the token the user pastes in.

import type { Route } from "../../net/http-routes.ts";
import { ASSETS, type Asset } from "./assets.ts";

/**
 * Only our own files run or load (no inline script or style, no other origin),
 * the page cannot be framed (clickjacking its requeue and purge buttons), and
 * forms and <base> cannot send the user elsewhere.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** Whether a path is the dashboard's (served without a token). */
export function isDashboardPath(parts: readonly string[]): boolean {
  return parts.length === 0 || parts[0] === "ui";
}

function serve(asset: Asset, req: Request): Response {
  // no-cache: the browser keeps the file but asks each time, so a new router binary's page is seen at once.
  const headers = { ...SECURITY_HEADERS, "content-type": asset.contentType, "cache-control": "no-cache", etag: asset.etag };
  if (req.headers.get("if-none-match") === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { headers });
}

const toPage = () => new Response(null, { status: 308, headers: { location: "/ui", ...SECURITY_HEADERS } });

function notFound(name: string): Response {
  return Response.json({ error: { code: "E_NOT_FOUND", message: `no dashboard file ${name}` } }, { status: 404, headers: SECURITY_HEADERS });
}

/** The dashboard's routes, for the router's HTTP route table (any context: they need none). */
export const DASHBOARD_ROUTES: readonly Route<{ req: Request }>[] = [
  ["/", { GET: toPage }],
  // The route table ignores a trailing slash: /ui/ is the page too.
  ["/ui", { GET: (_p, ctx) => serve(ASSETS.get("index.html")!, ctx.req) }],
  ["/ui/:file", {
    GET: (p, ctx) => {
      const asset = ASSETS.get(p.file!);
      return asset === undefined ? notFound(p.file!) : serve(asset, ctx.req);
    },
  }],
];
