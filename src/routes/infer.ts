/**
 * POST /v2/models/{m}[/versions/{v}]/infer: bound the body (413 before parsing), parse and validate
 * it against the manifest, hand it to a batch buffer with a deadline from the SLO (or the client's
 * shorter timeout_ms), and answer with the outputs and how they were served.
 */
import { Hono, type Context } from "hono";
import type { BatchBuffer } from "../buffer/batch-buffer";
import { dispatchToBuffer } from "../buffer/dispatch";
import { runtimeConfig } from "../config";
import { badRequest } from "../protocol/errors";
import { parseInferRequest } from "../protocol/infer-request";
import { inferResponseBody, servedHeaders } from "../protocol/infer-response";
import { lookupModel } from "./lookup";
import { readBodyText } from "./read-body";

async function infer(c: Context<{ Bindings: Env }>): Promise<Response> {
  const startMs = Date.now();
  const config = runtimeConfig(c.env);
  const { manifest } = lookupModel(config, c.req.param("model")!, c.req.param("version"));
  const text = await readBodyText(c.req.raw, config.maxBodyBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  const request = parseInferRequest(body, manifest);
  const budgetMs = Math.min(manifest.slo.ms, request.timeoutMs ?? Infinity);
  const result = await dispatchToBuffer(
    c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>,
    manifest,
    { id: crypto.randomUUID(), model: manifest.name, rows: request.rows, batchKey: request.batchKey, inputs: request.inputs, outputs: request.outputs, deadlineAtMs: startMs + budgetMs },
    { signal: c.req.raw.signal, waitUntil: (promise) => c.executionCtx.waitUntil(promise) },
  );
  return c.json(inferResponseBody(manifest, request.id, result.outputs), 200, servedHeaders(result, Date.now() - startMs));
}

/** Routes for inference. */
export const inferRoutes = new Hono<{ Bindings: Env }>()
  .post("/v2/models/:model/infer", infer)
  .post("/v2/models/:model/versions/:version/infer", infer);
