/**
 * The OCR pipeline (`ppocr`, PaddleOCR's TextSystem): an encoded image in, its text lines out.
 *
 *   decode (PNG/JPEG) -> det input (longer side <= detLimitSideLen, multiples of 32)
 *   -> ppocr-det -> DB boxes -> crop and rectify each line
 *   -> ppocr-cls on every line (turn the ones it calls upside down)
 *   -> ppocr-rec per group of lines that share a size class -> greedy CTC over each line's own steps
 *
 * Each stage is a request to that model, served where its live plan places it and batched by its
 * buffers like any client's (runRequest), so lines of concurrent images share batches. The image
 * work between the stages (decoding, DB post-processing, crops) runs here, in the Worker. One
 * deadline bounds the whole image; each stage gets what is left of it. Pure of HTTP: the routes
 * (src/routes/ocr.ts) parse and answer.
 */
import type { RuntimeConfig } from "../config";
import { refreshPlan, servingManifest } from "../control/plan-cache";
import type { DispatchContext } from "../buffer/dispatch";
import { classWidthOf } from "../batching/size-classes";
import { ctcDecodeSteps, ctcSymbols } from "../models/ctc";
import { checkPlatformLimits } from "../edge/limits";
import { recordRequest } from "../edge/request-metrics";
import type { ModelManifest } from "../models/manifest";
import { InferenceError } from "../protocol/errors";
import { batchKeyOf } from "../protocol/infer-request";
import type { Tensor } from "../protocol/tensor";
import { routeRequest, runRequest } from "../buffer/run-request";
import { detectBoxes } from "./db-postprocess";
import { detInput } from "./det-input";
import { decodeImage } from "./image";
import { clsInput, cropLine, recInput, recWidthOf, rotate180 } from "./line-crop";
import type { PipelineManifest } from "./pipeline-manifest";
import dictionary from "../../models/ppocr-rec/ppocr_keys_v1.txt";

/** One recognised text line: its box (four corners, clockwise from top-left, image pixels), text and confidence. */
export interface OcrLine {
  box: Array<[number, number]>;
  text: string;
  score: number;
}

/** Milliseconds each part of an image took (stages include their queueing and hop). */
export interface OcrTimings {
  decodeMs: number;
  detMs: number;
  boxesMs: number;
  clsMs: number;
  recMs: number;
}

/** What a pipeline run needs of its request: the Worker's env and config, the image's deadline and trace, and its dispatch context. */
export interface PipelineContext extends DispatchContext {
  env: Env;
  config: RuntimeConfig;
  deadlineAtMs: number;
  traceparent: string;
}

let symbols: string[] | undefined;

/** Reads the text lines of an encoded image. Throws InferenceError (400/413 for the image, a stage's own errors otherwise). */
export async function recognise(pipeline: PipelineManifest, image: Uint8Array, context: PipelineContext): Promise<{ lines: OcrLine[]; timings: OcrTimings }> {
  let atMs = performance.now();
  const lap = () => -atMs + (atMs = performance.now());
  const decoded = decodeImage(image, { maxPixels: pipeline.image.maxPixels });
  const det = detInput(decoded, pipeline.image.detLimitSideLen);
  const decodeMs = lap();
  const [probabilities] = await runStage(pipeline.stages.det, context, [[1, 3, det.height, det.width], det.data], undefined, "UINT8");
  const detMs = lap();
  const boxes = detectBoxes(probabilities!.data as Float32Array, det.height, det.width, decoded, { unclipRatio: pipeline.text.unclipRatio });
  const crops = boxes.map((box) => cropLine(decoded, box.points));
  const boxesMs = lap();
  if (!crops.length) return { lines: [], timings: { decodeMs, detMs, boxesMs, clsMs: 0, recMs: 0 } };

  // Angle: every line in one request per maxRowsPerRequest; a line called upside down is turned.
  const cls = modelOf(context, pipeline.stages.cls);
  const angles = await Promise.all(chunks(crops.map((_, i) => i), cls.batching.maxRowsPerRequest).map(async (lines) => {
    const [out] = await runStage(cls.name, context, [[lines.length, 3, 48, 192], clsInput(lines.map((i) => crops[i]!))]);
    return lines.map((line, row) => ({ line, upsideDown: out!.data[row * 2 + 1]! as number }));
  }));
  for (const { line, upsideDown } of angles.flat()) if (upsideDown > pipeline.text.clsThreshold) crops[line] = rotate180(crops[line]!);
  const clsMs = lap();

  // Text: lines that share a size class share a request (at the widest line's width; the buffer pads
  // it to the class), and each line is decoded over its own steps only, so padding never reads as text.
  const rec = modelOf(context, pipeline.stages.rec);
  const classes = rec.batching.sizeClasses;
  const widths = crops.map(recWidthOf);
  const byClass = new Map<number, number[]>();
  widths.forEach((w, i) => {
    const key = classes ? classWidthOf(classes, w) : w;
    if (byClass.has(key)) byClass.get(key)!.push(i);
    else byClass.set(key, [i]);
  });
  symbols ??= ctcSymbols(dictionary);
  const texts = new Array<{ text: string; confidence: number }>(crops.length);
  const stride = classes?.outputs[rec.outputs[0]!.name]?.stride ?? 8;
  const recRequests = [...byClass.entries()].flatMap(([classWidth, group]) => chunks(group, rowsThatFit(context, rec, [3, 48, classWidth])));
  await Promise.all(recRequests.map(async (lines) => {
    const width = Math.max(...lines.map((i) => widths[i]!));
    // Each step's best symbol and its probability (derived next to the session), not the 6625 probabilities per step.
    const [best, bestProbability] = await runStage(rec.name, context, [[lines.length, 3, 48, width], recInput(lines.map((i) => crops[i]!), width)], ["argmax", "max"]);
    const steps = best!.shape[1]!;
    lines.forEach((line, row) => {
      const rowOf = (t: Tensor) => (t.data as Int32Array | Float32Array).subarray(row * steps, (row + 1) * steps);
      texts[line] = ctcDecodeSteps(rowOf(best!), rowOf(bestProbability!), Math.min(steps, Math.ceil(widths[line]! / stride)), symbols!);
    });
  }));
  const recMs = lap();
  const lines = boxes
    .map((box, i) => ({ box: box.points.map(([x, y]) => [x, y] as [number, number]), text: texts[i]!.text, score: texts[i]!.confidence }))
    .filter((line) => line.score >= pipeline.text.dropScore && line.text.trim() !== "");
  return { lines, timings: { decodeMs, detMs, boxesMs, clsMs, recMs } };
}

/** The served manifest (live plan) of a stage's model. */
function modelOf(context: PipelineContext, name: string) {
  return servingManifest(context.config.models.get(name)!.manifest);
}

/** Runs one request of `model` with one input ([shape, data], FP32 or UINT8 pixels) through the model's own serving path; resolves with its outputs (`outputs`, default the session's). */
async function runStage(model: string, context: PipelineContext, [shape, data]: [number[], Float32Array | Uint8Array], outputs?: string[], datatype: "FP32" | "UINT8" = "FP32"): Promise<Tensor[]> {
  const entry = context.config.models.get(model)!;
  const manifest = servingManifest(entry.manifest);
  const nowMs = Date.now();
  const inputs: Tensor[] = [{ name: manifest.inputs[0]!.name, datatype, shape, data }];
  const route = routeRequest(entry, manifest, context.config, context.deadlineAtMs, nowMs, context.waitUntil);
  const call = { inputs, outputs: outputs ?? manifest.outputs.map((o) => o.name), rows: shape[0]!, batchKey: batchKeyOf(manifest.inputs, inputs, manifest.batching.sizeClasses), deadlineAtMs: context.deadlineAtMs, traceparent: context.traceparent };
  // Counted in the stage model's metrics like a client's request (when METRICS is on).
  const record = (status: number, extra: object) => context.config.metrics && recordRequest(context.env, { model, status, totalMs: Date.now() - nowMs, ...extra }, context.waitUntil);
  try {
    const { outputs, ok: _, ...served } = await runRequest(context.env, entry, manifest, route, call, context);
    record(200, { served, placement: served.placement });
    return outputs;
  } catch (error) {
    if (error instanceof InferenceError) record(error.status, error.rejection ? { rejection: error.rejection } : {});
    throw error;
  } finally {
    const refresh = refreshPlan(context.env, model, Date.now());
    if (refresh) context.waitUntil(refresh);
  }
}

/**
 * Most rows (up to maxRowsPerRequest) of one request of rows shaped `row` that the platform's limits
 * take where `manifest`'s model runs (a 1280-wide rec row returns 4 MiB of probabilities: eight
 * would pass the 32 MiB RPC limit).
 */
function rowsThatFit(context: PipelineContext, manifest: ModelManifest, row: number[]): number {
  const entry = context.config.models.get(manifest.name)!;
  const runsAt = manifest.placement === "direct" ? "edge" : manifest.placement;
  const byteLength = 4 * row.reduce((a, b) => a * b, 1);
  for (let rows = manifest.batching.maxRowsPerRequest; rows > 1; rows--) {
    try {
      checkPlatformLimits(entry.footprint, runsAt, manifest, [{ name: manifest.inputs[0]!.name, shape: [rows, ...row], byteLength: rows * byteLength }], rows);
      return rows;
    } catch {
      // fewer rows
    }
  }
  return 1;
}

/** `items` in runs of at most `size`. */
function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
