/**
 * The edge Worker's HTTP surface: Open Inference Protocol v2 REST on Hono. The error handler here is
 * the one place errors become responses: InferenceErrors keep their status and message (and
 * Retry-After); anything else is logged and answered 500 without internals.
 */
import { Hono } from "hono";
import { errorResponse, InferenceError } from "./protocol/errors";
import { APP_OPTIONS, notFoundOrWrongMethod } from "./protocol/http-surface";
import { controlRoutes } from "./routes/control";
import { inferRoutes } from "./routes/infer";
import { metadataRoutes } from "./routes/metadata";

/** The edge application. */
export const app = new Hono<{ Bindings: Env }>(APP_OPTIONS)
  // Every inference answer says how long the edge held it, refusals included (Server-Timing total).
  .use("/v2/models/*", async (c, next) => {
    const startMs = Date.now();
    await next();
    if (c.req.method === "POST" && !c.res.headers.has("server-timing")) c.res.headers.set("Server-Timing", `total;dur=${(Date.now() - startMs).toFixed(1)}`);
  })
  // Cloudflare (and wrangler dev, which emulates it) gzips JSON for clients that accept it. OIP
  // clients that turn automatic decompression off (tritonclient's async client) decode only infer
  // answers, as Triton compresses only those: every other answer is marked identity, which the
  // platform leaves alone.
  .use("*", async (c, next) => {
    await next();
    const isInferAnswer = c.req.method === "POST" && c.res.status === 200 && c.req.path.endsWith("/infer");
    if (!isInferAnswer && !c.res.headers.has("content-encoding")) c.res.headers.set("Content-Encoding", "identity");
  })
  .route("/", metadataRoutes)
  .route("/", inferRoutes)
  .route("/", controlRoutes)
  .onError((error) => {
    if (!(error instanceof InferenceError)) console.error("unhandled error:", error);
    return errorResponse(error);
  });
app.notFound(notFoundOrWrongMethod(app));
