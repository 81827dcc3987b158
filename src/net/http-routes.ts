// A small route table for the HTTP ports: path patterns with `:name` segments,
// one handler per method. A known path with the wrong method is told apart from
// an unknown path, so the ports answer 405 with an Allow header, not 404.

export type RouteParams = Record<string, string>;
export type RouteHandler<C> = (params: RouteParams, ctx: C) => Response | Promise<Response>;
export type Route<C> = readonly [pattern: string, methods: Readonly<Partial<Record<string, RouteHandler<C>>>>];

export type RouteMatch<C> =
  | { kind: "found"; handler: RouteHandler<C>; params: RouteParams }
  | { kind: "wrong-method"; allow: string }
  | { kind: "none" };

/** The first route whose pattern fits `path` decides; its methods then decide between found and 405. */
export function matchRoute<C>(routes: readonly Route<C>[], method: string, path: string): RouteMatch<C> {
  const parts = splitPath(path);
  for (const [pattern, methods] of routes) {
    const params = matchPattern(splitPath(pattern), parts);
    if (params === undefined) continue;
    // Own keys only: a method named "constructor" or "toString" must not find Object's.
    const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (handler !== undefined) return { kind: "found", handler, params };
    return { kind: "wrong-method", allow: Object.keys(methods).join(", ") };
  }
  return { kind: "none" };
}

function splitPath(path: string): string[] {
  return path.split("/").filter((p) => p !== "");
}

function matchPattern(pattern: string[], parts: string[]): RouteParams | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: RouteParams = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(":")) params[p.slice(1)] = decodeSegment(parts[i]!);
    else if (p !== parts[i]) return undefined;
  }
  return params;
}

/** A malformed escape is kept as sent: the handler's own check then refuses it by name. */
function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The answers every port gives when no route takes a request, in the API's error shape. */
export function routeMissResponse(match: Exclude<RouteMatch<unknown>, { kind: "found" }>, method: string, path: string): Response {
  if (match.kind === "wrong-method") {
    return Response.json(
      { error: { code: "E_METHOD_NOT_ALLOWED", message: `${method} is not allowed on ${path} (allowed: ${match.allow})` } },
      { status: 405, headers: { allow: match.allow } },
    );
  }
  return Response.json({ error: { code: "E_NOT_FOUND", message: `no route ${method} ${path}` } }, { status: 404 });
}
