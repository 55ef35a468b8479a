/**
 * Server and model metadata, health and readiness (Open Inference Protocol), plus the statistics
 * extension: per-shard buffer counters and recent samples, and this isolate's direct ones.
 * Readiness warms: a model is ready once the sessions that serve it under its live plan are created
 * and warm (this isolate's for "direct", its buffer shards' for "edge"), so a readiness probe warms
 * the edge before traffic reaches it; a model placed on the origin once the pool has a member. A
 * model that is not ready is answered 503 {"name", "ready": false, "error"}.
 */
import { Hono, type Context } from "hono";
import type { BatchBuffer } from "../buffer/batch-buffer";
import { directStats, warmDirect } from "../buffer/direct";
import { bufferStub } from "../buffer/dispatch";
import { runtimeConfig } from "../config";
import { registryOf } from "../control/model-controller";
import { knownPlan, refreshPlan, servingManifest } from "../control/plan-cache";
import type { CatalogEntry } from "../models/catalog";
import type { ModelManifest } from "../models/manifest";
import { warmUpInputs } from "../edge/ort-web-runner";
import { decodeInferBody } from "../protocol/decode-infer-body";
import { inferResponseBody } from "../protocol/infer-response";
import { modelMetadata } from "../protocol/model-metadata";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../protocol/oip-binary";
import { PIPELINES } from "../ocr/pipeline-manifest";
import { lookupModel } from "./lookup";
import { checkVersion, pipelineMetadata } from "./ocr";

/** Server name and version reported by GET /v2. */
export const SERVER = { name: "edge-inference", version: "0.1.0", extensions: ["statistics"] };

const metadataOf = (m: ModelManifest) => modelMetadata(m, edgeParameters(m));

/** How the edge serves a model, in its metadata's parameters. */
function edgeParameters(m: ModelManifest) {
  return { placement: m.placement, slo_percentile: m.slo.percentile, slo_ms: m.slo.ms, max_batch: m.batching.maxBatch, window_ms: m.batching.windowMs, shards: m.batching.shards };
}

/** Routes for /v2 metadata, health and statistics. */
export const metadataRoutes = new Hono<{ Bindings: Env }>()
  .get("/v2/health/live", (c) => c.json({ live: true }))
  .get("/v2/health/ready", async (c) => {
    const config = runtimeConfig(c.env); // throws (500) if configuration is invalid: not ready
    await Promise.all([...config.models.values()].map((entry) => warmModel(c, entry)));
    return c.json({ ready: true });
  })
  .get("/v2", (c) => c.json(SERVER))
  .get("/v2/models/:model", (c) => c.json(describe(c, undefined)))
  .get("/v2/models/:model/versions/:version", (c) => c.json(describe(c, c.req.param("version"))))
  .get("/v2/models/:model/ready", (c) => modelReady(c, undefined))
  .get("/v2/models/:model/versions/:version/ready", (c) => modelReady(c, c.req.param("version")))
  .get("/v2/models/:model/stats", async (c) => {
    const { manifest } = lookupModel(runtimeConfig(c.env), c.req.param("model"), undefined);
    const namespace = c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>;
    // The manifest's shards, or the live plan's when it has more.
    const count = Math.max(manifest.batching.shards, knownPlan(manifest.name)?.plan.shards ?? 0);
    const shards = await Promise.all(Array.from({ length: count }, (_, shard) => bufferStub(namespace, manifest.name, shard).stats()));
    const direct = directStats(manifest.name);
    return c.json({ model_stats: [{ name: manifest.name, version: manifest.version, shards, ...(direct && { direct }) }] });
  });

/** A model's metadata, or a pipeline's (src/routes/ocr.ts). */
function describe(c: Context<{ Bindings: Env }>, version: string | undefined) {
  const pipeline = PIPELINES.get(c.req.param("model")!);
  if (pipeline) return pipelineMetadata(pipeline, version);
  return metadataOf(lookupModel(runtimeConfig(c.env), c.req.param("model")!, version).manifest);
}

/**
 * GET .../ready: the model is ready once the sessions that will serve it are warm (warmModel) and,
 * placed on the origin, the pool has a member; a pipeline once each of its stages is.
 */
async function modelReady(c: Context<{ Bindings: Env }>, version: string | undefined): Promise<Response> {
  const config = runtimeConfig(c.env);
  const pipeline = PIPELINES.get(c.req.param("model")!);
  if (pipeline) checkVersion(pipeline, version);
  const entries = pipeline ? Object.values(pipeline.stages).map((stage) => config.models.get(stage)!) : [lookupModel(config, c.req.param("model")!, version)];
  const name = pipeline?.name ?? entries[0]!.manifest.name;
  const placements = await Promise.all(entries.map((entry) => warmModel(c, entry)));
  if (placements.includes("origin") && (await registryOf(c.env).members()).length === 0) {
    return c.json({ name, ready: false, error: `${name} is not ready: no origin replica has joined the pool` }, 503, { "Retry-After": "1" });
  }
  return c.json({ name, ready: true });
}

/**
 * Warms the sessions that will serve `entry`'s model under its live plan: this isolate's when it is
 * placed "direct", each planned buffer shard's when "edge" (so the first request after start is not
 * a cold start); an origin-placed model has none here.
 */
async function warmModel(c: Context<{ Bindings: Env }>, entry: CatalogEntry): Promise<ModelManifest["placement"]> {
  // A readiness probe learns the live plan first (it is not on any request's path).
  await refreshPlan(c.env, entry.manifest.name, Date.now());
  const manifest = servingManifest(entry.manifest);
  if (manifest.placement === "direct") await warmDirect(entry, manifest, runtimeConfig(c.env));
  // The request path too, so that the first request meets compiled code: parse a request of zeros
  // as JSON and as binary here, run it through each buffer shard (outside its queue; each shard runs
  // it once), and encode the answer both ways. Nothing counts it. Once per isolate and placement.
  const warmKey = `${manifest.name}\n${manifest.placement}\n${manifest.batching.shards}`;
  if (pathWarmed.has(warmKey)) return manifest.placement;
  const zeros = warmUpInputs(manifest);
  const packed = packBinary({ inputs: zeros.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })) }, zeros);
  const { inputs } = decodeInferBody(packed.body, new Headers({ [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) }), manifest);
  const json = JSON.stringify({ inputs: zeros.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: Array.from(t.data as ArrayLike<number | bigint>, Number) })) });
  decodeInferBody(new TextEncoder().encode(json), new Headers({ "content-type": "application/json" }), manifest);
  if (manifest.placement !== "edge") return manifest.placement;
  const namespace = c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>;
  const answers = await Promise.all(Array.from({ length: manifest.batching.shards }, (_, shard) => bufferStub(namespace, manifest.name, shard).warm(manifest.name, shard, inputs)));
  JSON.stringify(inferResponseBody(manifest, "warm-up", answers[0]!));
  packBinary({}, answers[0]!);
  pathWarmed.add(warmKey);
  return manifest.placement;
}

/** Models (by name, placement and shards) whose request path this isolate has warmed. */
const pathWarmed = new Set<string>();
