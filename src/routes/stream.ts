/**
 * GET /v2/models/{m}[/versions/{v}]/stream: opens a stream of chunks (docs/streaming.md). The
 * Worker checks the model, the query (the stream's scalars, e.g. sr) and the upgrade, picks one of
 * the model's planned shards at random and hands the request to that shard's StreamBuffer, which
 * accepts the WebSocket; from then on the socket talks to that Durable Object only, so a stream
 * stays on its shard. A full shard refuses (admission, src/stream/stream-buffer.ts) and the next
 * shard is asked. Refusals are `{"error": ...}`: 404 unknown model, 400 a model that does not
 * stream, a bad query or a request that is not a WebSocket upgrade, 503 every shard full.
 *
 * GET /v2/models/{m}/stream/stats[?sr=...]: per shard of those streams, the step counters (a batch
 * is one step, or part of a step larger than maxBatch), recent step sizes, the open streams, the
 * most the shard admits now and the streams it refused.
 */
import { Hono, type Context } from "hono";
import type { EdgeEnv } from "../app";
import { pickShard } from "../buffer/dispatch";
import { runtimeConfig } from "../config";
import { knownPlan, refreshPlan, servingManifest } from "../control/plan-cache";
import { badRequest } from "../protocol/errors";
import { streamStub, type StreamBuffer } from "../stream/stream-buffer";
import { streamSpecOf } from "../stream/stream-protocol";
import { lookupModel } from "./lookup";

const namespaceOf = (env: Env) => env.STREAM_BUFFER as DurableObjectNamespace<StreamBuffer>;

async function openStream(c: Context<EdgeEnv>): Promise<Response> {
  const config = runtimeConfig(c.env);
  const entry = lookupModel(config, c.req.param("model")!, c.req.param("version"));
  const manifest = servingManifest(entry.manifest);
  const spec = streamSpecOf(manifest, c.req.query());
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw badRequest("expected a WebSocket upgrade (Upgrade: websocket)");
  // A shard that is full (503) hands the stream to the next one, from a random first.
  const first = pickShard(manifest);
  let response!: Response;
  for (let i = 0; i < manifest.batching.shards; i++) {
    response = await streamStub(namespaceOf(c.env), manifest.name, spec.key, (first + i) % manifest.batching.shards, config.bufferLocationHint).fetch(c.req.raw);
    if (response.status !== 503) break;
  }
  const refresh = refreshPlan(c.env, manifest.name, Date.now());
  if (refresh) c.executionCtx.waitUntil(refresh);
  // A fetched response's headers are immutable; the app adds its own (request id, trace).
  return response.webSocket ? new Response(null, { status: 101, webSocket: response.webSocket }) : new Response(response.body, response);
}

async function streamStats(c: Context<EdgeEnv>): Promise<Response> {
  const { manifest } = lookupModel(runtimeConfig(c.env), c.req.param("model")!, undefined);
  const spec = streamSpecOf(manifest, c.req.query());
  // The manifest's shards, or the live plan's when it has more.
  const count = Math.max(manifest.batching.shards, knownPlan(manifest.name)?.plan.shards ?? 0);
  const shards = await Promise.all(Array.from({ length: count }, (_, shard) => streamStub(namespaceOf(c.env), manifest.name, spec.key, shard).stats()));
  return c.json({ name: manifest.name, key: spec.key, shards });
}

/** Routes for streams. */
export const streamRoutes = new Hono<EdgeEnv>()
  .get("/v2/models/:model/stream", openStream)
  .get("/v2/models/:model/versions/:version/stream", openStream)
  .get("/v2/models/:model/stream/stats", streamStats);
