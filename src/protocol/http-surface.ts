/**
 * HTTP behaviour the edge and the origin share beyond their routes, so any Open Inference Protocol
 * client sees the same server on both tiers:
 * - a path the app serves with other methods gets 405 with `Allow` (HEAD rides on GET, as in Hono);
 *   any other path gets 404; both as `{"error": ...}`;
 * - `/v2/` is `/v2` (the spec writes both; the apps are created with `strict: false`).
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { errorResponse, InferenceError, notFound, type RejectionReason } from "./errors";
import { formatTraceparent, REQUEST_ID_HEADER, requestIdOf, traceOf, type TraceContext } from "./trace";

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

/** What both servers' handlers share of a request: its id and trace, and, for its log line, how it was served and why it failed. */
export type IdentityVariables = { requestId: string; trace: TraceContext; served?: object; error?: string; rejection?: RejectionReason };

/**
 * Middleware of the edge and the origin alike: gives each request its id and its span in its trace
 * (src/protocol/trace.ts), echoes both on the answer, and writes an inference request's log line: one
 * JSON object with the id, trace, path, status and time held, what the handlers put in `served`, and
 * `error`; `finish` adds a server's own fields (or drops the line: undefined) once it is answered.
 * Inference requests are POSTs to a path that `isInference` accepts (default: one ending in /infer).
 */
export function requestIdentity<E extends { Variables: IdentityVariables }>(
  now: () => number,
  finish: (c: Context<E>, line: Record<string, unknown>, totalMs: number) => Record<string, unknown> | undefined,
  isInference = (path: string) => path.endsWith("/infer"),
): MiddlewareHandler<E> {
  return async (c, next) => {
    const startMs = now();
    const requestId = requestIdOf(c.req.header(REQUEST_ID_HEADER));
    const trace = traceOf(c.req.header("traceparent"));
    c.set("requestId", requestId);
    c.set("trace", trace);
    await next();
    c.res.headers.set("X-Request-Id", requestId);
    c.res.headers.set("traceparent", formatTraceparent(trace));
    if (c.req.method !== "POST" || !isInference(c.req.path)) return;
    const totalMs = now() - startMs;
    const base = { event: "infer", requestId, traceId: trace.traceId, spanId: trace.spanId, ...(trace.parentSpanId && { parentSpanId: trace.parentSpanId }), path: c.req.path, status: c.res.status, totalMs, ...c.get("served"), ...(c.get("error") !== undefined && { error: c.get("error") }) };
    const line = finish(c, base, totalMs);
    if (line) console.log(JSON.stringify(line));
  };
}

/**
 * The error handler of the edge and the origin alike, the one place errors become answers:
 * InferenceErrors keep their status and message (and Retry-After); anything else is logged
 * (prefixed by `server`) and answered 500 without internals. The request's log line and metrics get
 * the message and the scheduler's reason (`rejection`).
 */
export function answerError<E extends { Variables: IdentityVariables }>(server: string): (error: Error, c: Context<E>) => Response {
  return (error, c) => {
    if (!(error instanceof InferenceError)) console.error(`${server}: unhandled error:`, error);
    c.set("error", error instanceof InferenceError ? error.message : "internal error");
    if (error instanceof InferenceError && error.rejection) c.set("rejection", error.rejection);
    return errorResponse(error);
  };
}
