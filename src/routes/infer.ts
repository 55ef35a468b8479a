/**
 * POST /v2/models/{m}[/versions/{v}]/infer: bound the body (413 before parsing), parse and validate
 * it against the manifest (JSON, or the binary tensor extension when Inference-Header-Content-Length
 * is given), refuse it with 413 when it is over the platform's limits where it would run, run it with its own deadline (the model's maxLatencyMs, or the client's shorter
 * timeout_ms) where its live plan places it: in this isolate ("direct", once its session is warm)
 * or through a batch buffer ("edge", "origin"), and answer with the outputs (binary if asked) and
 * how they were served.
 */
import { Hono, type Context } from "hono";
import { routeRequest, runRequest } from "../buffer/run-request";
import { headerLimitsPeek } from "../edge/limits";
import { runtimeConfig, type RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import { refreshPlan, servingManifest } from "../control/plan-cache";
import { deadlineBudgetMs, maxLatencyMsOf } from "../models/manifest";
import { PIPELINES } from "../ocr/pipeline-manifest";
import { decodeInferBody } from "../protocol/decode-infer-body";
import { INFERENCE_HEADER_LENGTH } from "../protocol/oip-binary";
import { inferAnswer, servedHeaders } from "../protocol/infer-response";
import { readBody } from "../protocol/read-body";
import { formatTraceparent } from "../protocol/trace";
import type { EdgeEnv } from "../app";
import { lookupModel } from "./lookup";
import { inferPipeline } from "./ocr";

async function infer(c: Context<EdgeEnv>): Promise<Response> {
  const startMs = Date.now();
  const pipeline = PIPELINES.get(c.req.param("model")!);
  if (pipeline) return inferPipeline(c, pipeline, startMs);
  const config = runtimeConfig(c.env);
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
  const entry = lookupModel(config, c.req.param("model")!, c.req.param("version"));
  const response = await answer(c, entry, config, startMs, waitUntil);
  // The plan is refreshed in the background once a request has its answer (an error answer ends the
  // request at once: a 408's body read, still pending, must not fail inside a request kept open).
  const refresh = refreshPlan(c.env, entry.manifest.name, Date.now());
  if (refresh) waitUntil(refresh);
  return response;
}

async function answer(c: Context<EdgeEnv>, entry: CatalogEntry, config: RuntimeConfig, startMs: number, waitUntil: (promise: Promise<unknown>) => void): Promise<Response> {
  // The model's manifest under its live plan (placement, batching, shards).
  const manifest = servingManifest(entry.manifest);
  const route = routeRequest(entry, manifest, config, startMs + maxLatencyMsOf(manifest), startMs, waitUntil);
  // Over the platform's limits where it would run (RPC payload, isolate memory): 413 before any Durable
  // Object call; a binary request is judged from its header, before its tensor bytes are read.
  const peek = headerLimitsPeek(entry.footprint, route.runsAt, manifest, c.req.header(INFERENCE_HEADER_LENGTH));
  const request = decodeInferBody(await readBody(c.req.raw, config.bodyLimits, peek), c.req.raw.headers, manifest);
  const call = { ...request, deadlineAtMs: startMs + deadlineBudgetMs(manifest, request.timeoutMs), traceparent: formatTraceparent(c.get("trace")) };
  const result = await runRequest(c.env, entry, manifest, route, call, { signal: c.req.raw.signal, waitUntil });
  const { outputs: _, ok: __, ...served } = result;
  c.set("served", served);
  return inferAnswer(c, manifest, request.id, result.outputs, request.wantsBinaryOutputs, servedHeaders(result, Date.now() - startMs));
}

/** Routes for inference. */
export const inferRoutes = new Hono<EdgeEnv>()
  .post("/v2/models/:model/infer", infer)
  .post("/v2/models/:model/versions/:version/infer", infer);
