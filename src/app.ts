/**
 * The edge Worker's HTTP surface: Open Inference Protocol v2 REST on Hono. The error handler here is
 * the one place errors become responses: InferenceErrors keep their status and message (and
 * Retry-After); anything else is logged and answered 500 without internals.
 *
 * Every answer carries the request's id (`X-Request-Id`, the client's or a new one) and its span in
 * the request's trace (`traceparent`, src/protocol/trace.ts), which the buffers and the origin
 * continue; each inference request is logged as one JSON line (LOG_REQUESTS).
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { runtimeConfig } from "./config";
import { admitKey, presentedKey } from "./edge/access";
import { recordRequest } from "./edge/request-metrics";
import { PIPELINES } from "./ocr/pipeline-manifest";
import type { RejectionReason } from "./protocol/errors";
import { answerError, APP_OPTIONS, notFoundOrWrongMethod, requestIdentity } from "./protocol/http-surface";
import { drainBody } from "./protocol/read-body";
import type { ServedInfo } from "./protocol/infer-response";
import type { TraceContext } from "./protocol/trace";
import { controlRoutes } from "./routes/control";
import { dashboardRoutes } from "./routes/dashboard";
import { docsRoutes } from "./routes/docs";
import { inferRoutes } from "./routes/infer";
import { metadataRoutes } from "./routes/metadata";
import { metricsRoutes } from "./routes/metrics";
import { OCR_UPLOAD_PATH, ocrRoutes } from "./routes/ocr";
import { streamRoutes } from "./routes/stream";

/** The Worker's bindings, and what a request's handlers share: its id, its trace, how it was served. */
export type EdgeEnv = { Bindings: Env; Variables: { requestId: string; trace: TraceContext; served?: ServedInfo; error?: string; rejection?: RejectionReason; apiKey?: string } };

/** The model a path is about: /v2/models/{m}/..., or the OCR pipeline for /v1/ocr (percent-decoded). */
const modelOfPath = (path: string) => (path === OCR_UPLOAD_PATH ? "ppocr" : (path.split("/")[3] ?? ""));

/** Admits a model route's request (/v2/models/{m}..., /v1/ocr) by its API key when API_KEYS is set (401, 403, 429 otherwise). */
const requireKey: MiddlewareHandler<EdgeEnv> = async (c, next) => {
  const { apiKeys } = runtimeConfig(c.env);
  if (apiKeys && !c.req.path.endsWith("/plan/pins")) c.set("apiKey", await admitKey(apiKeys, presentedKey((name) => c.req.header(name)), modelOfPath(c.req.path), c.env.KEY_RATE_LIMITER, (task) => c.executionCtx.waitUntil(task)));
  await next();
};

const answerEdgeError = answerError<EdgeEnv>("edge");

/** Errors and 404/405s are answered once the body no handler read is read: a client still sending is not reset (drainBody). */
const drainUnread = (c: Context<EdgeEnv>) => drainBody(c.req.raw, runtimeConfig(c.env).bodyLimits);

/** The edge application. */
export const app = new Hono<EdgeEnv>(APP_OPTIONS)
  .use(
    "*",
    requestIdentity<EdgeEnv>(Date.now, (c, line, totalMs) => {
      // Every inference answer says how long the edge held it, refusals included (Server-Timing total).
      if (!c.res.headers.has("server-timing")) c.res.headers.set("Server-Timing", `total;dur=${totalMs.toFixed(1)}`);
      const config = runtimeConfig(c.env);
      // Metrics of served models and pipelines only: a name a client made up is not a label. (The path is percent-decoded.)
      const model = modelOfPath(c.req.path);
      if (config.metrics && (config.models.has(model) || PIPELINES.has(model))) {
        const served = c.get("served");
        // A 408's body read is still pending: keeping that request open for a delivery would let the
        // read fail inside it, so its records go with the next request's delivery.
        const waitUntil = c.res.status === 408 ? undefined : (task: Promise<unknown>) => c.executionCtx.waitUntil(task);
        recordRequest(c.env, { model, status: c.res.status, totalMs, ...(served && { served, placement: served.placement }), ...(c.get("rejection") && { rejection: c.get("rejection")! }) }, waitUntil);
      }
      return config.logRequests ? { ...line, ...(c.get("apiKey") !== undefined && { apiKey: c.get("apiKey") }) } : undefined;
    }, (path) => path.endsWith("/infer") || path === OCR_UPLOAD_PATH),
  )
  // API keys, when API_KEYS is set (src/edge/access.ts): every model route but the pins (ADMIN_TOKEN).
  .use("/v2/models/*", requireKey)
  .use(OCR_UPLOAD_PATH, requireKey)
  // Cloudflare (and wrangler dev, which emulates it) gzips JSON for clients that accept it. OIP
  // clients that turn automatic decompression off (tritonclient's async client) decode only infer
  // answers, as Triton compresses only those: every other answer is marked identity, which the
  // platform leaves alone.
  .use("*", async (c, next) => {
    await next();
    const isInferAnswer = c.req.method === "POST" && c.res.status === 200 && c.req.path.endsWith("/infer");
    if (!isInferAnswer && !c.res.headers.has("content-encoding")) c.res.headers.set("Content-Encoding", "identity");
  })
  .route("/", ocrRoutes)
  .route("/", metadataRoutes)
  .route("/", inferRoutes)
  .route("/", streamRoutes)
  .route("/", controlRoutes)
  .route("/", docsRoutes)
  .route("/", metricsRoutes)
  .route("/", dashboardRoutes)
  .onError(async (error, c) => {
    await drainUnread(c);
    return answerEdgeError(error, c);
  });
const notFoundAnswer = notFoundOrWrongMethod(app);
app.notFound(async (c) => {
  await drainUnread(c);
  return notFoundAnswer(c);
});
