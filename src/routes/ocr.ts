/**
 * The OCR pipeline's routes (src/ocr/pipeline.ts):
 * - `POST /v2/models/ppocr[/versions/4]/infer`: Open Inference Protocol; input `image` (BYTES,
 *   shape [1]: the PNG or JPEG file, binary extension or JSON with `content_type: "base64"`),
 *   outputs `boxes` [lines, 4, 2], `text` [lines] and `scores` [lines], binary when asked;
 * - `POST /v1/ocr`: the image file as the body; answers `{ "lines": [{ "text", "score", "box" }] }`;
 * - `GET /v2/models/ppocr[...]` metadata and readiness.
 * Undecodable images get 400, oversized ones 413 (bytes, or pixels read from the header). The
 * answer's Server-Timing gives each part of the image's time.
 */
import { Hono, type Context } from "hono";
import type { EdgeEnv } from "../app";
import { runtimeConfig } from "../config";
import { recognise, type OcrLine, type OcrTimings } from "../ocr/pipeline";
import { PIPELINES, type PipelineManifest } from "../ocr/pipeline-manifest";
import { decodeInferBody } from "../protocol/decode-infer-body";
import { packBytes, unpackBytes } from "../protocol/datatypes";
import { badRequest, notFound, tooLarge } from "../protocol/errors";
import { inferAnswer } from "../protocol/infer-response";
import { modelMetadata } from "../protocol/model-metadata";
import { readBody } from "../protocol/read-body";
import type { Tensor } from "../protocol/tensor";
import { formatTraceparent } from "../protocol/trace";

const encoder = new TextEncoder();

/** The plain upload route of the pipeline `ppocr`. */
export const OCR_UPLOAD_PATH = "/v1/ocr";

/** Base64 in JSON takes 4 bytes per 3, plus the envelope. */
const jsonBodyBytes = (pipeline: PipelineManifest) => Math.ceil((pipeline.image.maxBytes * 4) / 3) + 64 * 1024;

/** 404 unless the path's version (if any) is the pipeline's. */
export function checkVersion(pipeline: PipelineManifest, version: string | undefined): void {
  if (version !== undefined && version !== pipeline.version) throw notFound(`model ${JSON.stringify(pipeline.name)} has no version ${JSON.stringify(version.slice(0, 32))}`);
}

/** Runs the pipeline on `image` within the request's deadline (the manifest's, or the client's shorter timeout_ms). */
async function run(c: Context<EdgeEnv>, pipeline: PipelineManifest, image: Uint8Array, startMs: number, timeoutMs?: number): Promise<{ lines: OcrLine[]; timings: OcrTimings }> {
  if (image.length > pipeline.image.maxBytes) throw tooLarge(`image: ${image.length} bytes, at most ${pipeline.image.maxBytes}`);
  const deadlineAtMs = startMs + Math.min(pipeline.maxLatencyMs, timeoutMs ?? Infinity);
  const result = await recognise(pipeline, image, { env: c.env, config: runtimeConfig(c.env), deadlineAtMs, traceparent: formatTraceparent(c.get("trace")), signal: c.req.raw.signal, waitUntil: (task) => c.executionCtx.waitUntil(task) });
  const t = result.timings;
  c.header("Server-Timing", `decode;dur=${t.decodeMs.toFixed(1)}, det;dur=${t.detMs.toFixed(1)}, boxes;dur=${t.boxesMs.toFixed(1)}, cls;dur=${t.clsMs.toFixed(1)}, rec;dur=${t.recMs.toFixed(1)}, total;dur=${(Date.now() - startMs).toFixed(1)}`);
  c.header("X-Text-Lines", String(result.lines.length));
  return result;
}

/** POST /v2/models/{pipeline}[/versions/{v}]/infer (the infer route hands pipelines here): the Open Inference Protocol request and answer. */
export async function inferPipeline(c: Context<EdgeEnv>, pipeline: PipelineManifest, startMs: number): Promise<Response> {
  checkVersion(pipeline, c.req.param("version"));
  const config = runtimeConfig(c.env);
  const body = await readBody(c.req.raw, { ...config.bodyLimits, maxBytes: Math.min(config.bodyLimits.maxBytes, jsonBodyBytes(pipeline)) });
  const request = decodeInferBody(body, c.req.raw.headers, pipeline);
  const images = unpackBytes(request.inputs[0]!.data as Uint8Array);
  if (images.length !== 1) throw badRequest(`input 'image': one image per request (shape [1]), got ${images.length}`);
  const { lines } = await run(c, pipeline, images[0]!, startMs, request.timeoutMs);
  const n = lines.length;
  const outputs: Tensor[] = [
    { name: "boxes", datatype: "FP32", shape: [n, 4, 2], data: Float32Array.from(lines.flatMap((l) => l.box.flat())) },
    { name: "text", datatype: "BYTES", shape: [n], data: packBytes(lines.map((l) => encoder.encode(l.text))) },
    { name: "scores", datatype: "FP32", shape: [n], data: Float32Array.from(lines, (l) => l.score) },
  ].filter((t) => request.outputs.includes(t.name)) as Tensor[];
  return inferAnswer(c, pipeline, request.id, outputs, request.wantsBinaryOutputs);
}

/** POST /v1/ocr: the image file as the body, the lines as JSON. */
async function upload(c: Context<EdgeEnv>): Promise<Response> {
  const startMs = Date.now();
  const pipeline = PIPELINES.get("ppocr")!;
  const config = runtimeConfig(c.env);
  const image = await readBody(c.req.raw, { ...config.bodyLimits, maxBytes: Math.min(config.bodyLimits.maxBytes, pipeline.image.maxBytes) });
  if (!image.length) throw badRequest("send the image (PNG or JPEG) as the request body");
  const { lines } = await run(c, pipeline, image, startMs);
  return c.json({ model_name: pipeline.name, model_version: pipeline.version, lines });
}

/** Metadata of a pipeline, as a model's (platform "pipeline", with its stages and SLO); 404 for another version. */
export function pipelineMetadata(pipeline: PipelineManifest, version: string | undefined) {
  checkVersion(pipeline, version);
  return modelMetadata(pipeline, { stages: Object.values(pipeline.stages).join(","), slo_percentile: pipeline.slo.percentile, slo_ms: pipeline.slo.ms }, "pipeline");
}

/** POST /v1/ocr (the pipelines' OIP routes are the models' own: src/routes/infer.ts, metadata.ts). */
export const ocrRoutes = new Hono<EdgeEnv>().post(OCR_UPLOAD_PATH, upload);
