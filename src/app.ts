/**
 * The edge Worker's HTTP surface: Open Inference Protocol v2 REST on Hono. The error handler here is
 * the one place errors become responses: InferenceErrors keep their status and message (and
 * Retry-After); anything else is logged and answered 500 without internals.
 */
import { Hono } from "hono";
import { errorResponse, InferenceError } from "./protocol/errors";
import { controlRoutes } from "./routes/control";
import { inferRoutes } from "./routes/infer";
import { metadataRoutes } from "./routes/metadata";

/** The edge application. */
export const app = new Hono<{ Bindings: Env }>()
  // Every inference answer says how long the edge held it, refusals included (Server-Timing total).
  .use("/v2/models/*", async (c, next) => {
    const startMs = Date.now();
    await next();
    if (c.req.method === "POST" && !c.res.headers.has("server-timing")) c.res.headers.set("Server-Timing", `total;dur=${(Date.now() - startMs).toFixed(1)}`);
  })
  .route("/", metadataRoutes)
  .route("/", inferRoutes)
  .route("/", controlRoutes)
  .notFound((c) => c.json({ error: "not found" }, 404))
  .onError((error) => {
    if (!(error instanceof InferenceError)) console.error("unhandled error:", error);
    return errorResponse(error);
  });
