/**
 * The origin's HTTP surface: the same Open Inference Protocol v2 endpoints and error JSON as the
 * edge, on Hono. GET /v2/health/live and /v2/health/ready are open (probes and load balancers);
 * every other endpoint (server and model metadata, model readiness, statistics, infer) needs a
 * valid, fresh, unreplayed hop signature, else 401. The error handler is the one place errors
 * become responses: no hostnames, paths or stack traces reach a client. Infer takes JSON or the
 * binary tensor extension (Inference-Header-Content-Length) and answers in binary when asked
 * (parameters.binary_data_output, or an output's binary_data). Infer answers carry
 * `Server-Timing` (read = body, auth, decode, queue, infer = session.run, encode, total) and `X-Batch-Size`.
 * Every answer carries `X-Request-Id` and this server's span in the request's trace (`traceparent`:
 * the edge sends each batch's, src/protocol/trace.ts); each infer request is logged as one JSON line.
 * GET /metrics (open, like health) is the Prometheus exposition of origin-metrics.ts.
 */
import { createHash } from "node:crypto";
import { Hono, type Context } from "hono";
import { pickOutputs } from "../src/models/derived-outputs";
import { maxLatencyMsOf } from "../src/models/manifest";
import { verifyHop } from "../src/origin/hop-signature";
import { BINARY_CONTENT_TYPE, binaryEntries, INFERENCE_HEADER_LENGTH, packBinary } from "../src/protocol/oip-binary";
import { InferenceError, notFound, unavailable, type RejectionReason } from "../src/protocol/errors";
import { answerError, APP_OPTIONS, notFoundOrWrongMethod, requestIdentity } from "../src/protocol/http-surface";
import { decodeInferBody } from "../src/protocol/decode-infer-body";
import { modelMetadata } from "../src/protocol/model-metadata";
import { inferResponseBody } from "../src/protocol/infer-response";
import type { HostedModel, ModelHost } from "./model-host";
import { decodeContent, readRawBody, type BodyLimits } from "../src/protocol/read-body";
import { ReplayGuard } from "../src/origin/replay-guard";
import { OriginMetrics } from "./origin-metrics";
import type { TraceContext } from "../src/protocol/trace";

/** Server name and version reported by GET /v2. */
export const ORIGIN_SERVER = { name: "gpu-origin", version: "0.1.0", extensions: ["statistics", "hop-signature"] };

/** What the app serves and how. */
export interface OriginAppOptions {
  host: ModelHost;
  /** Shared HMAC secret; undefined only with --insecure (signatures are then not checked). */
  secret: string | undefined;
  provider: string;
  /** Most rows the origin merges into one run (reported in model metadata). */
  maxBatch: number;
  /** Largest body and longest time to receive it. */
  bodyLimits: BodyLimits;
  /** Read on every request: true once SIGTERM arrived. */
  isDraining: () => boolean;
  /** Epoch ms clock with sub-ms resolution. */
  now?: () => number;
}

type Env = { Variables: { body: Uint8Array; startMs: number; readMs: number; authMs: number; requestId: string; trace: TraceContext; served?: { model: string; batchId: number; batchRows: number; queueMs: number; inferMs: number }; error?: string; rejection?: RejectionReason } };


/** node:crypto's SHA-256: ~3x WebCrypto's in Node for MB-sized tensor bodies (no copy to the thread pool). */
const nodeSha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest();

/** Builds the origin application. */
export function createOriginApp(options: OriginAppOptions): Hono<Env> {
  const { host, secret, isDraining } = options;
  const now = options.now ?? (() => performance.timeOrigin + performance.now());
  const replays = new ReplayGuard();
  const metrics = new OriginMetrics(host);

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
    const request = decodeInferBody(c.get("body"), c.req.raw.headers, hosted.manifest);
    const decodeMs = now() - decodeStartMs;
    // The edge has applied the model's limits: its timeout_ms is the batch's whole budget here.
    const result = await hosted.status.batcher.submit(request, now() + (request.timeoutMs ?? maxLatencyMsOf(hosted.manifest)));
    const encodeStartMs = now();
    const outputs = pickOutputs(hosted.manifest, result.outputs, request.outputs);
    c.set("served", { model: hosted.manifest.name, batchId: result.batchId, batchRows: result.batchRows, queueMs: result.queueMs, inferMs: result.inferMs });
    const headers: Record<string, string> = { "x-batch-size": String(result.batchRows) };
    let body: string | Uint8Array;
    if (request.wantsBinaryOutputs) {
      const packed = packBinary({ model_name: hosted.manifest.name, model_version: hosted.manifest.version, ...(request.id !== undefined && { id: request.id }), outputs: binaryEntries(outputs) }, outputs);
      body = packed.body;
      headers["content-type"] = BINARY_CONTENT_TYPE;
      headers[INFERENCE_HEADER_LENGTH] = String(packed.headerLength);
    } else {
      body = JSON.stringify(inferResponseBody(hosted.manifest, request.id, outputs));
      headers["content-type"] = "application/json";
    }
    const endMs = now();
    const timing = { read: c.get("readMs"), auth: c.get("authMs"), decode: decodeMs, queue: result.queueMs, infer: result.inferMs, encode: endMs - encodeStartMs, total: endMs - c.get("startMs") };
    headers["server-timing"] = Object.entries(timing).map(([k, v]) => `${k};dur=${v.toFixed(3)}`).join(", ");
    return c.body(body as Uint8Array<ArrayBuffer>, 200, headers);
  };

  const app = new Hono<Env>(APP_OPTIONS)
    .use(
      "*",
      requestIdentity<Env>(now, (c, line, totalMs) => {
        // A model the server does not host is counted as "(unknown)": client-chosen names are not labels.
        const named = /^\/v2\/models\/([^/]+)/.exec(c.req.path)?.[1];
        // (c.req.path is already percent-decoded.)
        const model = c.get("served")?.model ?? (named !== undefined && host.models.has(named) ? named : "(unknown)");
        metrics.observe({ model, status: c.res.status, totalMs, ...(c.get("served") && { served: c.get("served")! }), ...(c.get("rejection") && { rejection: c.get("rejection")! }) });
        return { ...line, totalMs: Math.round(totalMs * 1000) / 1000 };
      }),
    )
    .get("/v2/health/live", (c) => c.json({ live: true }))
    // Prometheus metrics, open like the health probes (expose the port on the cluster network only).
    .get("/metrics", async (c) => {
      const { text, contentType } = await metrics.render();
      return c.body(text, 200, { "Content-Type": contentType });
    })
    .get("/v2/health/ready", (c) => {
      const isReady = !isDraining() && host.isEveryModelReady();
      return c.json({ ready: isReady }, isReady ? 200 : 503, isReady ? {} : { "Retry-After": "1" });
    })
    .use("*", async (c, next) => {
      c.set("startMs", now());
      // The hop signature covers the bytes as sent: checked before a compressed body is decoded.
      const body = c.req.method === "POST" ? await readRawBody(c.req.raw, options.bodyLimits) : new Uint8Array(0);
      const authStartMs = now();
      c.set("readMs", authStartMs - c.get("startMs"));
      if (secret !== undefined) {
        const url = new URL(c.req.url);
        const parts = { method: c.req.method, host: url.host, path: url.pathname + url.search, body, inferenceHeaderLength: c.req.header(INFERENCE_HEADER_LENGTH) };
        const verdict = await verifyHop(secret, parts, (name) => c.req.header(name), Date.now(), { sha256: nodeSha256 });
        if (!verdict.ok) throw new InferenceError(401, `request refused: ${verdict.reason} hop signature`);
        if (!replays.accept(verdict.nonce, verdict.timestampMs, Date.now())) throw new InferenceError(401, "request refused: replayed hop signature");
      }
      c.set("authMs", now() - authStartMs);
      c.set("body", c.req.method === "POST" ? decodeContent(body, c.req.raw.headers, options.bodyLimits.maxBytes) : body);
      return next();
    })
    .get("/v2", (c) => c.json(ORIGIN_SERVER))
    .get("/v2/models/:model", (c) => c.json(metadataOf(c)))
    .get("/v2/models/:model/versions/:version", (c) => c.json(metadataOf(c)))
    .get("/v2/models/:model/ready", (c) => readiness(c, model(c)))
    .get("/v2/models/:model/versions/:version/ready", (c) => readiness(c, model(c)))
    .get("/v2/models/:model/stats", (c) => {
      const m = model(c);
      const stats = m.status.state === "ready" ? m.status.batcher.stats() : undefined;
      return c.json({ model_stats: [{ name: m.manifest.name, version: m.manifest.version, state: m.status.state, ...stats }] });
    })
    .post("/v2/models/:model/infer", infer)
    .post("/v2/models/:model/versions/:version/infer", infer)
    .onError(answerError<Env>("gpu-origin"));
  return app.notFound(notFoundOrWrongMethod(app));

  function metadataOf(c: Context<Env>) {
    return modelMetadata(model(c).manifest, { placement: "origin", provider: options.provider, max_batch: options.maxBatch });
  }

  function readiness(c: Context<Env>, m: HostedModel) {
    const isReady = isModelReady(m);
    return c.json({ name: m.manifest.name, ready: isReady }, isReady ? 200 : 503);
  }
}

