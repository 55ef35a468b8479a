/**
 * HTTP behaviour the edge and the origin share beyond their routes, so any Open Inference Protocol
 * client sees the same server on both tiers:
 * - a path the app serves with other methods gets 405 with `Allow` (HEAD rides on GET, as in Hono);
 *   any other path gets 404; both as `{"error": ...}`;
 * - `/v2/` is `/v2` (the spec writes both; the apps are created with `strict: false`).
 */
import type { Context, Hono } from "hono";
import { errorResponse, InferenceError, notFound } from "./errors";

/** Hono options both apps are created with: a trailing slash does not change the route. */
export const APP_OPTIONS = { strict: false } as const;

/** A notFound handler for `app`: 405 with Allow when the path exists under other methods, else 404. */
export function notFoundOrWrongMethod(app: Pick<Hono, "routes">): (c: Context) => Response {
  let patterns: Array<{ path: RegExp; method: string }> | undefined;
  return (c) => {
    patterns ??= app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => ({ method: r.method, path: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:[^/]+/g, "/[^/]+").replace(/\/\*$/, "/.*")}/?$`) }));
    const path = new URL(c.req.url).pathname;
    const allowed = new Set(patterns.filter((p) => p.path.test(path)).map((p) => p.method));
    if (!allowed.size) return errorResponse(notFound("not found"));
    if (allowed.has("GET")) allowed.add("HEAD");
    const allow = [...allowed].sort().join(", ");
    const response = errorResponse(new InferenceError(405, `method ${c.req.method.slice(0, 16)} is not allowed here; use ${allow}`));
    response.headers.set("Allow", allow);
    return response;
  };
}
