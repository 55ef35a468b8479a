/**
 * GET /v2/models/{m}[/versions/{v}]/stream: opens a stream of chunks (docs/streaming.md). The
 * Worker checks the model, the query (the stream's scalars, e.g. sr) and the upgrade, picks one of
 * the plan's stream shards (`streamShards`, which the controller sizes to the stream load:
 * src/control/stream-load.ts) at random and hands the request to that shard's StreamBuffer, which
 * accepts the WebSocket; from then on the socket talks to that Durable Object only, so a stream
 * stays on its shard. A full shard refuses (admission, src/stream/stream-buffer.ts) and the next
 * shard is asked. Refusals are `{"error": ...}`: 404 unknown model, 400 a model that does not
 * stream, a bad query or a request that is not a WebSocket upgrade, 503 every shard full.
 *
 * GET /v2/models/{m}/stream/stats[?sr=...]: per shard of those streams (the plan's, and any beyond
 * them that still has streams), the step counters (a batch is one step, or part of a step larger
 * than maxBatch), recent step sizes, the open streams, the most the shard admits now and the
 * streams it refused.
 */
import { Hono, type Context } from "hono";
import type { EdgeEnv } from "../app";
import { runtimeConfig } from "../config";
import { knownPlan, refreshPlan, servingManifest } from "../control/plan-cache";
import { badRequest } from "../protocol/errors";
import type { ModelManifest } from "../models/manifest";
import { STREAM_SHARD_HEADER, streamStub, type StreamBuffer } from "../stream/stream-buffer";
import { streamSpecOf } from "../stream/stream-protocol";
import { lookupModel } from "./lookup";

const namespaceOf = (env: Env) => env.STREAM_BUFFER as DurableObjectNamespace<StreamBuffer>;

async function openStream(c: Context<EdgeEnv>): Promise<Response> {
  const config = runtimeConfig(c.env);
  const entry = lookupModel(config, c.req.param("model")!, c.req.param("version"));
  const manifest = servingManifest(entry.manifest);
  const spec = streamSpecOf(manifest, c.req.query());
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw badRequest("expected a WebSocket upgrade (Upgrade: websocket)");
  // New streams spread over the plan's stream shards; a full one (503) hands the stream to the next, from a random first.
  const shards = streamShardsOf(manifest);
  const first = Math.floor(Math.random() * shards);
  let response!: Response;
  for (let i = 0; i < shards; i++) {
    const shard = (first + i) % shards;
    const request = new Request(c.req.raw);
    request.headers.set(STREAM_SHARD_HEADER, String(shard));
    response = await streamStub(namespaceOf(c.env), manifest.name, spec.key, shard, config.bufferLocationHint).fetch(request);
    if (response.status !== 503) break;
  }
  const refresh = refreshPlan(c.env, manifest.name, Date.now());
  if (refresh) c.executionCtx.waitUntil(refresh);
  // A fetched response's headers are immutable; the app adds its own (request id, trace).
  return response.webSocket ? new Response(null, { status: 101, webSocket: response.webSocket }) : new Response(response.body, response);
}

/** The stream shards new streams of `manifest`'s model spread over: the live plan's, the manifest's until one is known. */
function streamShardsOf(manifest: ModelManifest): number {
  return knownPlan(manifest.name)?.plan.streamShards ?? manifest.batching.shards;
}

async function streamStats(c: Context<EdgeEnv>): Promise<Response> {
  const config = runtimeConfig(c.env);
  const { manifest } = lookupModel(config, c.req.param("model")!, undefined);
  const spec = streamSpecOf(manifest, c.req.query());
  // The plan's stream shards, and beyond them up to the last that still has streams (open before the plan had fewer).
  const planned = streamShardsOf(manifest);
  const limit = Math.max(planned, config.control.maxShards);
  const shards = await Promise.all(Array.from({ length: limit }, (_, shard) => streamStub(namespaceOf(c.env), manifest.name, spec.key, shard).stats()));
  while (shards.length > planned && !shards.at(-1)!.streams) shards.pop();
  const refresh = refreshPlan(c.env, manifest.name, Date.now());
  if (refresh) c.executionCtx.waitUntil(refresh);
  return c.json({ name: manifest.name, key: spec.key, shards });
}

/** Routes for streams. */
export const streamRoutes = new Hono<EdgeEnv>()
  .get("/v2/models/:model/stream", openStream)
  .get("/v2/models/:model/versions/:version/stream", openStream)
  .get("/v2/models/:model/stream/stats", streamStats);
