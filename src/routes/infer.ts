/**
 * POST /v2/models/{m}[/versions/{v}]/infer: bound the body (413 before parsing), parse and validate
 * it against the manifest (JSON, or the binary tensor extension when Inference-Header-Content-Length
 * is given), hand it to a batch buffer with a deadline from the SLO (or the client's shorter
 * timeout_ms), and answer with the outputs (binary if asked) and how they were served.
 */
import { Hono, type Context } from "hono";
import type { BatchBuffer } from "../buffer/batch-buffer";
import { dispatchToBuffer } from "../buffer/dispatch";
import { runtimeConfig } from "../config";
import { BinaryFormatError, binaryEntries, BINARY_CONTENT_TYPE, INFERENCE_HEADER_LENGTH, packBinary, unpackBinary } from "../protocol/oip-binary";
import { badRequest } from "../protocol/errors";
import { parseInferRequest } from "../protocol/infer-request";
import { inferResponseBody, servedHeaders } from "../protocol/infer-response";
import { lookupModel } from "./lookup";
import { readBody } from "./read-body";

async function infer(c: Context<{ Bindings: Env }>): Promise<Response> {
  const startMs = Date.now();
  const config = runtimeConfig(c.env);
  const { manifest } = lookupModel(config, c.req.param("model")!, c.req.param("version"));
  const { body, payload } = decodeBody(await readBody(c.req.raw, config.maxBodyBytes), c.req.header(INFERENCE_HEADER_LENGTH));
  const request = parseInferRequest(body, manifest, payload);
  const budgetMs = Math.min(manifest.slo.ms, request.timeoutMs ?? Infinity);
  const result = await dispatchToBuffer(
    c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>,
    manifest,
    { id: crypto.randomUUID(), model: manifest.name, rows: request.rows, batchKey: request.batchKey, inputs: request.inputs, outputs: request.outputs, deadlineAtMs: startMs + budgetMs },
    { signal: c.req.raw.signal, waitUntil: (promise) => c.executionCtx.waitUntil(promise) },
  );
  const headers = servedHeaders(result, Date.now() - startMs);
  if (!request.wantsBinaryOutputs) return c.json(inferResponseBody(manifest, request.id, result.outputs), 200, headers);
  const header = { ...inferResponseBody(manifest, request.id, []), outputs: binaryEntries(result.outputs) };
  const packed = packBinary(header, result.outputs);
  return c.body(packed.body, 200, { ...headers, "Content-Type": BINARY_CONTENT_TYPE, [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) });
}

/** The JSON body, or the binary extension's JSON header and the tensor bytes after it. */
function decodeBody(bytes: Uint8Array, headerLength: string | undefined): { body: unknown; payload?: Uint8Array } {
  if (headerLength !== undefined) {
    try {
      const { header, payload } = unpackBinary(bytes, headerLength);
      return { body: header, payload };
    } catch (error) {
      if (error instanceof BinaryFormatError) throw badRequest(`invalid binary request: ${error.message}`);
      throw error;
    }
  }
  try {
    return { body: JSON.parse(new TextDecoder().decode(bytes)) };
  } catch {
    throw badRequest("request body is not valid JSON");
  }
}

/** Routes for inference. */
export const inferRoutes = new Hono<{ Bindings: Env }>()
  .post("/v2/models/:model/infer", infer)
  .post("/v2/models/:model/versions/:version/infer", infer);
