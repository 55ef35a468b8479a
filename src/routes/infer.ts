/**
 * POST /v2/models/{m}[/versions/{v}]/infer: bound the body (413 before parsing), parse and validate
 * it against the manifest (JSON, or the binary tensor extension when Inference-Header-Content-Length
 * is given), hand it to a batch buffer with its own deadline (the model's maxLatencyMs, or the
 * client's shorter timeout_ms), and answer with the outputs (binary if asked) and how they were served.
 */
import { Hono, type Context } from "hono";
import type { BatchBuffer } from "../buffer/batch-buffer";
import { dispatchToBuffer, pickShard, shedIfBusy } from "../buffer/dispatch";
import { runtimeConfig } from "../config";
import { servingManifest } from "../control/plan-cache";
import { deadlineBudgetMs, maxLatencyMsOf } from "../models/manifest";
import { decodeInferBody } from "../protocol/decode-infer-body";
import { binaryEntries, BINARY_CONTENT_TYPE, INFERENCE_HEADER_LENGTH, packBinary } from "../protocol/oip-binary";
import { inferResponseBody, servedHeaders } from "../protocol/infer-response";
import { readBody } from "../protocol/read-body";
import { lookupModel } from "./lookup";

async function infer(c: Context<{ Bindings: Env }>): Promise<Response> {
  const startMs = Date.now();
  const config = runtimeConfig(c.env);
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
  // The model's manifest under its live plan (placement, batching, shards), refreshed in the background.
  const manifest = servingManifest(c.env, lookupModel(config, c.req.param("model")!, c.req.param("version")).manifest, startMs, waitUntil);
  // A shard that just refused a request due as late as this one could be gets none: refused before reading the body.
  const shard = pickShard(manifest);
  shedIfBusy(manifest, shard, startMs + maxLatencyMsOf(manifest), startMs);
  const request = decodeInferBody(await readBody(c.req.raw, config.bodyLimits), c.req.raw.headers, manifest);
  const deadlineAtMs = startMs + deadlineBudgetMs(manifest, request.timeoutMs);
  const result = await dispatchToBuffer(
    c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>,
    manifest,
    { id: crypto.randomUUID(), model: manifest.name, rows: request.rows, batchKey: request.batchKey, inputs: request.inputs, outputs: request.outputs, deadlineAtMs },
    { signal: c.req.raw.signal, waitUntil },
    shard,
  );
  const headers = servedHeaders(result, Date.now() - startMs);
  if (!request.wantsBinaryOutputs) return c.json(inferResponseBody(manifest, request.id, result.outputs), 200, headers);
  const header = { ...inferResponseBody(manifest, request.id, []), outputs: binaryEntries(result.outputs) };
  const packed = packBinary(header, result.outputs);
  return c.body(packed.body, 200, { ...headers, "Content-Type": BINARY_CONTENT_TYPE, [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) });
}

/** Routes for inference. */
export const inferRoutes = new Hono<{ Bindings: Env }>()
  .post("/v2/models/:model/infer", infer)
  .post("/v2/models/:model/versions/:version/infer", infer);
