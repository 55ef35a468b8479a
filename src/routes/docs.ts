/**
 * API documentation: `GET /openapi.json` describes every route the edge serves (OpenAPI 3.0), and
 * `GET /docs` renders it with Swagger UI, whose files are static assets (the install step copies
 * them from the swagger-ui-dist package to dist/edge-assets/docs/).
 *
 * The Open Inference Protocol part is the protocol's own OpenAPI description
 * (kserve/open-inference-protocol, Apache-2.0; src/protocol/open-inference-rest.json, the JSON of
 * test/spec/open_inference_rest.yaml), with its `${NAME}` path templates written as OpenAPI's
 * `{NAME}` and each model route also without `/versions/{MODEL_VERSION}`, as served here. This
 * project's extensions (binary tensors, statistics, plans and pins, the origin pool, tracing
 * headers) are added beside it; request bodies the edge validates with zod are described from
 * those same schemas. A test checks that every route of the app is documented.
 */
import { Hono } from "hono";
import { z } from "zod";
import { pinUpdateSchema } from "../control/plan";
import { heartbeatSchema } from "../control/replica-registry";
import oip from "../protocol/open-inference-rest.json";
import { BINARY_CONTENT_TYPE, INFERENCE_HEADER_LENGTH } from "../protocol/oip-binary";
import { REQUEST_ID_HEADER } from "../protocol/trace";

type Operation = Record<string, unknown>;
type PathItem = Record<string, unknown> & { parameters?: Array<{ name: string }> };

const json = (schema: object) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = (description: string) => ({ description, content: json(ref("error_response")) });
const modelParam = { name: "MODEL_NAME", in: "path", required: true, schema: { type: "string" } };

/** The protocol's paths with OpenAPI path templates, each model route also unversioned. */
function protocolPaths(): Record<string, PathItem> {
  const paths: Record<string, PathItem> = {};
  for (const [path, item] of Object.entries(oip.paths as Record<string, PathItem>)) {
    const templated = path.replace(/\$\{(\w+)\}/g, "{$1}").replace(/^\/v2\/$/, "/v2");
    paths[templated] = item;
    if (templated.includes("/versions/{MODEL_VERSION}")) {
      paths[templated.replace("/versions/{MODEL_VERSION}", "")] = { ...item, parameters: (item.parameters ?? []).filter((p) => p.name !== "MODEL_VERSION") };
    }
  }
  // The binary tensor extension, as Triton and KServe serve it: a JSON header, then raw tensor bytes.
  const binary = {
    [BINARY_CONTENT_TYPE]: { schema: { type: "string", format: "binary", description: `The JSON header (its length in ${INFERENCE_HEADER_LENGTH}), then each binary tensor's little-endian bytes in header order.` } },
  };
  for (const [path, item] of Object.entries(paths)) {
    if (!path.endsWith("/infer")) continue;
    const post = item.post as Operation & { requestBody: { content: object }; responses: Record<string, { content?: object }> };
    paths[path] = {
      ...item,
      post: {
        ...post,
        parameters: [{ name: INFERENCE_HEADER_LENGTH, in: "header", required: false, description: "Length of the JSON header of a binary-extension body.", schema: { type: "integer", minimum: 2 } }],
        requestBody: { ...post.requestBody, content: { ...post.requestBody.content, ...binary } },
        responses: {
          ...post.responses,
          "200": { ...post.responses["200"], content: { ...post.responses["200"]!.content, ...binary }, headers: servedHeaders },
          "404": error("Unknown model or version."),
          "408": error("The body did not arrive within BODY_TIMEOUT_MS."),
          "413": error("Body over MAX_BODY_BYTES, too many rows, or over the platform's limits where the model runs (the message says how many rows fit)."),
          "415": error("Unknown Content-Encoding."),
          "503": { ...error("Overloaded (refused at admission), deadline exceeded, or not ready."), headers: { "Retry-After": { schema: { type: "integer" } } } },
        },
      },
    };
  }
  return paths;
}

/** Headers on every inference answer. */
const servedHeaders = {
  "Server-Timing": { description: "queue, infer, origin (origin models) and total durations, ms.", schema: { type: "string" } },
  "X-Batch-Size": { description: "Rows in the batch the request ran in.", schema: { type: "integer" } },
  "X-Served-By": { description: "edge, or origin/<replica>.", schema: { type: "string" } },
  "X-Placement": { description: "direct, edge or origin.", schema: { type: "string", enum: ["direct", "edge", "origin"] } },
  "X-Shard": { description: "The buffer shard (buffered placements).", schema: { type: "integer" } },
};

/** This project's extensions. */
function extensionPaths(): Record<string, PathItem> {
  const get = (summary: string, description: string, schema: object, extra: Operation = {}) => ({ get: { summary, description, responses: { "200": { description: "OK", content: json(schema) }, "404": error("Unknown model.") }, ...extra } });
  const signed = { security: [{ hopSignature: [] }], responses: { "401": error("Missing, stale, replayed or wrong hop signature.") } };
  return {
    "/v2/models/{MODEL_NAME}/stats": { parameters: [modelParam], ...get("Statistics", "Per buffer shard: counters (admitted, batches, rows, refusals, expiries), queue, recent batch sizes and window errors, the learnt service line; `direct`: this isolate's own.", ref("stats_response")) },
    ...streamPaths(),
    "/v2/models/{MODEL_NAME}/plan": { parameters: [modelParam], ...get("Live plan", "The controller's published plan (placement, maxBatch, windowMs, shards, poolSize, streamShards) with its version, pins, prediction, measurements and recent decisions.", ref("plan_response")) },
    "/v2/models/{MODEL_NAME}/plan/pins": {
      parameters: [modelParam],
      put: {
        summary: "Pin plan fields",
        description: "Keeps plan fields at the given values (null releases a pin). Needs the ADMIN_TOKEN bearer token.",
        security: [{ adminToken: [] }],
        requestBody: { required: true, content: json(z.toJSONSchema(pinUpdateSchema, { target: "openapi-3.0" })) },
        responses: { "200": { description: "The plan after the change.", content: json(ref("plan_response")) }, "400": error("Invalid pins."), "401": error("Missing or wrong bearer token."), "403": error("The operator API is disabled (no ADMIN_TOKEN).") },
      },
    },
    "/v2/pool": { get: { summary: "Origin pool", description: "The pool's desired size, bounds, demand per model and members; signed (the pool agent's view).", ...signed, responses: { ...signed.responses, "200": { description: "OK", content: json({ type: "object" }) } } } },
    "/v2/pool/heartbeat": {
      post: {
        summary: "Join, stay in or leave the origin pool",
        description: "A replica's signed heartbeat.",
        ...signed,
        requestBody: { required: true, content: json(z.toJSONSchema(heartbeatSchema, { target: "openapi-3.0" })) },
        responses: { ...signed.responses, "204": { description: "Accepted." }, "400": error("Invalid heartbeat.") },
      },
    },
    "/v1/ocr": {
      post: {
        summary: "Read the text in an image (OCR pipeline)",
        description: "The image file (PNG or JPEG) as the body; answers its text lines in reading order, each with its text, confidence and box (four corners, clockwise from top-left, in image pixels). The same pipeline is the model `ppocr` of the Open Inference Protocol routes (input `image`: BYTES, shape [1]; in JSON as base64 with the tensor parameter `content_type: \"base64\"`; outputs `boxes`, `text`, `scores`). Server-Timing gives each stage's time (decode, det, boxes, cls, rec). See docs/ocr.md.",
        requestBody: { required: true, content: { "image/png": { schema: { type: "string", format: "binary" } }, "image/jpeg": { schema: { type: "string", format: "binary" } } } },
        responses: {
          "200": { description: "The text lines.", content: json({ type: "object", properties: { model_name: { type: "string" }, model_version: { type: "string" }, lines: { type: "array", items: { type: "object", properties: { text: { type: "string" }, score: { type: "number" }, box: { type: "array", items: { type: "array", items: { type: "number" } } } } } } } }) },
          "400": error("Empty body, or not a PNG or JPEG image (or a damaged one)."),
          "413": error("An image over the pipeline's bytes or pixels (read from its header, before decoding)."),
          "503": error("A stage is overloaded or could not answer within the deadline."),
        },
      },
    },
    "/openapi.json": { get: { summary: "This document", responses: { "200": { description: "OK", content: json({ type: "object" }) } } } },
    "/docs": { get: { summary: "This document, rendered", responses: { "200": { description: "An HTML page (Swagger UI).", content: { "text/html": { schema: { type: "string" } } } } } } },
    "/metrics": { get: { summary: "Prometheus metrics", description: "The edge's metrics in the Prometheus text format (docs/observability.md): per model, inference requests by status, request, queue and compute duration and batch-size histograms, rejections by reason, queued rows, the SLO and the live plan, summed over every isolate and buffer shard since the deployment began. With `Accept: application/json`, the same families as prom-client's JSON: `{atMs, metrics}`.", responses: { "200": { description: "The exposition text (or JSON).", content: { "text/plain": { schema: { type: "string" } }, "application/json": { schema: { type: "object", properties: { atMs: { type: "number" }, metrics: { type: "array", items: { type: "object" } } } } } } } } } },
    "/dashboard": { get: { summary: "Live dashboard", description: "A page that polls GET /metrics and draws, per model, request rate, latency quantiles against the SLO, batch sizes, queued rows, rejections and the plan (docs/dashboard.md). Its files are /dashboard/dashboard.js, /dashboard/dashboard.css and /dashboard/uPlot.min.css.", responses: { "200": { description: "An HTML page.", content: { "text/html": { schema: { type: "string" } } } } } } },
  };
}

/** Streams (docs/streaming.md): the WebSocket upgrade, versioned and not, and their statistics. */
function streamPaths(): Record<string, PathItem> {
  const open = (parameters: Array<{ name: string }>) => ({
    parameters,
    get: {
      summary: "Open a stream (WebSocket)",
      description:
        "Upgrades to a WebSocket (`Upgrade: websocket`) on one shard of the model's streams. The client sends binary frames of one chunk each (little-endian float32: 512 samples at sr 16000, 256 at sr 8000) or the text messages `{\"type\":\"reset\"}` and `{\"type\":\"close\"}`; the server answers each chunk in order with `{\"seq\": n, \"probability\": p}`, keeping the recurrent state between chunks. Errors are `{\"error\": ...}` then a close: 1003 bad frame, 1007 non-finite sample, 1008 more than 8 chunks unanswered, 1011 model failure, 1013 overloaded (reconnect later); 1000 after `close`. Models that stream (a recurrent state X -> XN): silero-vad. See docs/streaming.md.",
      parameters: [
        { name: "sr", in: "query", required: false, description: "Sample rate: 16000 (default, 512-sample chunks) or 8000 (256).", schema: { type: "integer", enum: [16000, 8000] } },
        { name: "Upgrade", in: "header", required: true, schema: { type: "string", enum: ["websocket"] } },
      ],
      responses: { "101": { description: "Switching protocols: the stream is open." }, "400": error("Not a WebSocket upgrade, a model that does not stream, or a bad query."), "404": error("Unknown model or version."), "503": { ...error("Every shard of the model is full: its real-time streams would miss the SLO with one more."), headers: { "Retry-After": { schema: { type: "integer" } } } } },
    },
  });
  return {
    "/v2/models/{MODEL_NAME}/stream": open([modelParam]),
    "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/stream": open([modelParam, { name: "MODEL_VERSION", in: "path", required: true, schema: { type: "string" } }]),
    "/v2/models/{MODEL_NAME}/stream/stats": {
      parameters: [modelParam],
      get: {
        summary: "Stream statistics",
        description: "Per shard of the model's streams at the query's scalars (sr): open streams, the most it admits now (maxStreams) and the streams it refused at open, steps (batches) by start reason, recent step sizes in rows, refusals and expiries, queued and running chunks, the learnt service line.",
        parameters: [{ name: "sr", in: "query", required: false, schema: { type: "integer", enum: [16000, 8000] } }],
        responses: { "200": { description: "OK", content: json({ type: "object", properties: { name: { type: "string" }, key: { type: "string" }, shards: { type: "array", items: { type: "object" } } } }) }, "400": error("A model that does not stream, or a bad query."), "404": error("Unknown model.") },
      },
    },
  };
}

/** The OpenAPI document of the edge. */
export function openApiDocument(): object {
  return {
    openapi: "3.0.3",
    info: {
      title: "Edge inference runtime",
      version: "0.1.0",
      description:
        "The Open Inference Protocol (KServe v2) REST API at the edge, and this project's extensions. Every answer carries `X-Request-Id` and `traceparent` (W3C Trace Context: the edge's span, continuing the caller's trace). Errors are `{\"error\": \"...\"}`.",
      license: { name: "Open Inference Protocol description: Apache 2.0", url: "https://github.com/kserve/open-inference-protocol" },
    },
    paths: { ...protocolPaths(), ...extensionPaths() },
    components: {
      schemas: {
        ...(oip.components.schemas as Record<string, object>),
        error_response: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
        stats_response: { type: "object", properties: { model_stats: { type: "array", items: { type: "object", properties: { name: { type: "string" }, version: { type: "string" }, shards: { type: "array", items: { type: "object" } }, direct: { type: "object" } } } } } },
        plan_response: { type: "object", properties: { version: { type: "integer" }, plan: { type: "object" }, pins: { type: "object" }, predicted: { type: "object" }, measured: { type: "object" }, decisions: { type: "array", items: { type: "object" } } } },
      },
      headers: {
        [REQUEST_ID_HEADER]: { description: "The request's id: the client's own short token, or a new UUID.", schema: { type: "string" } },
        traceparent: { description: "W3C Trace Context: this server's span in the request's trace.", schema: { type: "string" } },
      },
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN secret." },
        hopSignature: { type: "apiKey", in: "header", name: "x-hop-signature", description: "HMAC-SHA256 hop signature with x-hop-timestamp and x-hop-nonce (src/origin/hop-signature.ts)." },
      },
    },
  };
}

let cached: string | undefined;

/** The page that renders /openapi.json with Swagger UI (its files served from the static assets). */
const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Edge inference runtime: API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="api"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api", deepLinking: true });</script></body>
</html>
`;

/** The files of Swagger UI the page loads. */
const DOCS_FILES = new Set(["swagger-ui.css", "swagger-ui-bundle.js"]);

/** Routes of the API documentation. */
export const docsRoutes = new Hono<{ Bindings: { ASSETS: { fetch(url: URL): Promise<Response> } } }>()
  .get("/openapi.json", (c) => c.body((cached ??= JSON.stringify(openApiDocument())), 200, { "Content-Type": "application/json" }))
  .get("/docs", (c) => c.html(DOCS_PAGE))
  .get("/docs/:file", async (c) => {
    const file = c.req.param("file");
    if (!DOCS_FILES.has(file)) return c.json({ error: `no such file: /docs/${file.slice(0, 64)}` }, 404);
    const asset = await c.env.ASSETS.fetch(new URL(`/docs/${file}`, "https://assets.invalid"));
    // A fetched response's headers are immutable; the app adds its own (request id, trace).
    return new Response(asset.body, asset);
  });
