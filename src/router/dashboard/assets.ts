// The dashboard's files, embedded in the router binary at build time (Bun's
// text imports), so the page needs no server of its own, no CDN and no build
// step of its own. Each is served with its type, an ETag and a strict CSP.

import indexHtml from "./web/index.html" with { type: "text" };
import styleCss from "./web/style.css" with { type: "text" };
import appJs from "./web/app.js" with { type: "text" };
import apiJs from "./web/api.js" with { type: "text" };
import chartJs from "./web/chart.js" with { type: "text" };
import viewsJs from "./web/views.js" with { type: "text" };
import actionsJs from "./web/actions.js" with { type: "text" };

export interface Asset {
  body: string;
  contentType: string;
  /** A digest of the body: the browser revalidates, and gets 304 while the binary is the same. */
  etag: string;
}

const JS = "text/javascript; charset=utf-8";

function asset(body: unknown, contentType: string): Asset {
  // bun-types calls an .html import an HTMLBundle; with type "text" it is the file's text.
  const text = String(body);
  return { body: text, contentType, etag: `"${Bun.hash(text).toString(36)}"` };
}

/** The files under /ui/, by name. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["index.html", asset(indexHtml, "text/html; charset=utf-8")],
  ["style.css", asset(styleCss, "text/css; charset=utf-8")],
  ["app.js", asset(appJs, JS)],
  ["api.js", asset(apiJs, JS)],
  ["chart.js", asset(chartJs, JS)],
  ["views.js", asset(viewsJs, JS)],
  ["actions.js", asset(actionsJs, JS)],
]);
