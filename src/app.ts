/**
 * The edge Worker's HTTP surface: Open Inference Protocol v2 REST on Hono. The error handler here is
 * the one place errors become responses: InferenceErrors keep their status and message (and
 * Retry-After); anything else is logged and answered 500 without internals.
 */
import { Hono } from "hono";
import { errorResponse, InferenceError } from "./protocol/errors";
import { inferRoutes } from "./routes/infer";
import { metadataRoutes } from "./routes/metadata";

/** The edge application. */
export const app = new Hono<{ Bindings: Env }>()
  .route("/", metadataRoutes)
  .route("/", inferRoutes)
  .notFound((c) => c.json({ error: "not found" }, 404))
  .onError((error) => {
    if (!(error instanceof InferenceError)) console.error("unhandled error:", error);
    return errorResponse(error);
  });
