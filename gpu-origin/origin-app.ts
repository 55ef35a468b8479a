/**
 * The origin's HTTP surface: the same Open Inference Protocol v2 endpoints and error JSON as the
 * edge, on Hono. GET /v2/health/live and /v2/health/ready are open (probes and load balancers);
 * every other endpoint (server and model metadata, model readiness, statistics, infer) needs a
 * valid, fresh, unreplayed hop signature, else 401. The error handler is the one place errors
 * become responses: no hostnames, paths or stack traces reach a client. Infer answers carry
 * `Server-Timing` (auth, decode, queue, infer = session.run, encode, total) and `X-Batch-Size`.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ModelManifest } from "../src/models/manifest";
import { verifyHop } from "../src/origin/hop-signature";
import { badRequest, InferenceError, notFound, tooLarge, unavailable } from "../src/protocol/errors";
import { parseInferRequest } from "../src/protocol/infer-request";
import { inferResponseBody } from "../src/protocol/infer-response";
import type { HostedModel, ModelHost } from "./model-host";
import { ReplayGuard } from "./replay-guard";

/** Server name and version reported by GET /v2. */
export const ORIGIN_SERVER = { name: "gpu-origin", version: "0.1.0", extensions: ["statistics", "hop-signature"] };

/** Deadline of an infer request that gives no parameters.timeout_ms, in ms. */
const DEFAULT_TIMEOUT_MS = 60_000;

/** What the app serves and how. */
export interface OriginAppOptions {
  host: ModelHost;
  /** Shared HMAC secret; undefined only with --insecure (signatures are then not checked). */
  secret: string | undefined;
  provider: string;
  /** Most rows the origin merges into one run (reported in model metadata). */
  maxBatch: number;
  maxBodyBytes: number;
  /** Read on every request: true once SIGTERM arrived. */
  isDraining: () => boolean;
  /** Epoch ms clock with sub-ms resolution. */
  now?: () => number;
}

type Env = { Variables: { body: Uint8Array; startMs: number; authMs: number } };

const decoder = new TextDecoder();

/** Builds the origin application. */
export function createOriginApp(options: OriginAppOptions): Hono<Env> {
  const { host, secret, isDraining } = options;
  const now = options.now ?? (() => performance.timeOrigin + performance.now());
  const replays = new ReplayGuard();

  const model = (c: Context<Env>): HostedModel => {
    const name = c.req.param("model")!;
    const version = c.req.param("version");
    const hosted = host.models.get(name);
    const shown = JSON.stringify(name.slice(0, 64));
    if (!hosted) throw notFound(`unknown model ${shown}`);
    if (version !== undefined && version !== hosted.manifest.version) throw notFound(`model ${shown} has no version ${JSON.stringify(version.slice(0, 32))}`);
    return hosted;
  };

  const isModelReady = (m: HostedModel) => m.status.state === "ready" && !isDraining();

  const infer = async (c: Context<Env>) => {
    const hosted = model(c);
    if (isDraining()) throw unavailable("server is shutting down");
    if (hosted.status.state !== "ready") throw unavailable(`model '${hosted.manifest.name}' is not ready`, 5);
    const decodeStartMs = now();
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(c.get("body")));
    } catch {
      throw badRequest("request body is not valid JSON");
    }
    const request = parseInferRequest(json, hosted.manifest);
    const decodeMs = now() - decodeStartMs;
    const result = await hosted.status.batcher.submit(request, now() + (request.timeoutMs ?? DEFAULT_TIMEOUT_MS));
    const encodeStartMs = now();
    const wanted = new Set(request.outputs);
    const text = JSON.stringify(inferResponseBody(hosted.manifest, request.id, result.outputs.filter((t) => wanted.has(t.name))));
    const endMs = now();
    const timing = { auth: c.get("authMs"), decode: decodeMs, queue: result.queueMs, infer: result.inferMs, encode: endMs - encodeStartMs, total: endMs - c.get("startMs") };
    return c.body(text, 200, {
      "content-type": "application/json",
      "server-timing": Object.entries(timing).map(([k, v]) => `${k};dur=${v.toFixed(3)}`).join(", "),
      "x-batch-size": String(result.batchRows),
    });
  };

  return new Hono<Env>()
    .get("/v2/health/live", (c) => c.json({ live: true }))
    .get("/v2/health/ready", (c) => {
      const isReady = !isDraining() && host.isEveryModelReady();
      return c.json({ ready: isReady }, isReady ? 200 : 503, isReady ? {} : { "Retry-After": "1" });
    })
    .use("*", async (c, next) => {
      c.set("startMs", now());
      if (c.req.method !== "POST") return next();
      return bodyLimit({ maxSize: options.maxBodyBytes, onError: () => { throw tooLarge(`request body larger than ${options.maxBodyBytes} bytes`); } })(c, next);
    })
    .use("*", async (c, next) => {
      const body = c.req.method === "POST" ? new Uint8Array(await c.req.arrayBuffer()) : new Uint8Array(0);
      c.set("body", body);
      const authStartMs = now();
      if (secret !== undefined) {
        const url = new URL(c.req.url);
        const verdict = await verifyHop(secret, { method: c.req.method, path: url.pathname + url.search, body }, (name) => c.req.header(name), Date.now());
        if (!verdict.ok) throw new InferenceError(401, `request refused: ${verdict.reason} hop signature`);
        if (!replays.accept(verdict.nonce, verdict.timestampMs, Date.now())) throw new InferenceError(401, "request refused: replayed hop signature");
      }
      c.set("authMs", now() - authStartMs);
      return next();
    })
    .get("/v2", (c) => c.json(ORIGIN_SERVER))
    .get("/v2/models/:model", (c) => c.json(metadata(model(c).manifest, options.provider, options.maxBatch)))
    .get("/v2/models/:model/versions/:version", (c) => c.json(metadata(model(c).manifest, options.provider, options.maxBatch)))
    .get("/v2/models/:model/ready", (c) => readiness(c, model(c)))
    .get("/v2/models/:model/versions/:version/ready", (c) => readiness(c, model(c)))
    .get("/v2/models/:model/stats", (c) => {
      const m = model(c);
      const stats = m.status.state === "ready" ? m.status.batcher.stats() : undefined;
      return c.json({ model_stats: [{ name: m.manifest.name, version: m.manifest.version, state: m.status.state, ...stats }] });
    })
    .post("/v2/models/:model/infer", infer)
    .post("/v2/models/:model/versions/:version/infer", infer)
    .notFound((c) => c.json({ error: "not found" }, 404))
    .onError((error, c) => {
      if (error instanceof InferenceError) {
        const headers: Record<string, string> = error.retryAfterS !== undefined ? { "Retry-After": String(error.retryAfterS) } : {};
        return c.json({ error: error.message }, error.status, headers);
      }
      console.error("gpu-origin: unhandled error:", error);
      return c.json({ error: "internal error" }, 500);
    });

  function readiness(c: Context<Env>, m: HostedModel) {
    const isReady = isModelReady(m);
    return c.json({ name: m.manifest.name, ready: isReady }, isReady ? 200 : 503);
  }
}

function metadata(m: ModelManifest, provider: string, maxBatch: number) {
  const tensor = (t: ModelManifest["inputs"][number]) => ({ name: t.name, datatype: t.datatype, shape: t.shape });
  return {
    name: m.name,
    versions: [m.version],
    platform: "onnxruntime_onnx",
    inputs: m.inputs.map(tensor),
    outputs: m.outputs.map(tensor),
    parameters: { placement: "origin", provider, max_batch: maxBatch },
  };
}
