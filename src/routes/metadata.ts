/**
 * Server and model metadata, health and readiness (Open Inference Protocol), plus the statistics
 * extension: per-shard buffer counters and recent samples, summed over the model's shards.
 */
import { Hono } from "hono";
import type { BatchBuffer } from "../buffer/batch-buffer";
import { runtimeConfig } from "../config";
import { knownPlan } from "../control/plan-cache";
import type { ModelManifest } from "../models/manifest";
import { modelMetadata } from "../protocol/model-metadata";
import { lookupModel } from "./lookup";

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
  .get("/v2/health/ready", (c) => {
    runtimeConfig(c.env); // throws (500) if configuration is invalid: not ready
    return c.json({ ready: true });
  })
  .get("/v2", (c) => c.json(SERVER))
  .get("/v2/models/:model", (c) => c.json(metadataOf(lookupModel(runtimeConfig(c.env), c.req.param("model"), undefined).manifest)))
  .get("/v2/models/:model/versions/:version", (c) => c.json(metadataOf(lookupModel(runtimeConfig(c.env), c.req.param("model"), c.req.param("version")).manifest)))
  .get("/v2/models/:model/ready", (c) => c.json({ name: lookupModel(runtimeConfig(c.env), c.req.param("model"), undefined).manifest.name, ready: true }))
  .get("/v2/models/:model/versions/:version/ready", (c) => c.json({ name: lookupModel(runtimeConfig(c.env), c.req.param("model"), c.req.param("version")).manifest.name, ready: true }))
  .get("/v2/models/:model/stats", async (c) => {
    const { manifest } = lookupModel(runtimeConfig(c.env), c.req.param("model"), undefined);
    const namespace = c.env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>;
    // The manifest's shards, or the live plan's when it has more.
    const count = Math.max(manifest.batching.shards, knownPlan(manifest.name)?.plan.shards ?? 0);
    const shards = await Promise.all(Array.from({ length: count }, (_, shard) => namespace.get(namespace.idFromName(`${manifest.name}#${shard}`)).stats()));
    return c.json({ model_stats: [{ name: manifest.name, version: manifest.version, shards }] });
  });
