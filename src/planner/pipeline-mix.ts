/**
 * The images a pipeline plan is made for: a mix (lines per image, line widths, det input), samples
 * drawn from it, the ppocr pipeline's defaults and spec (models/ppocr/pipeline.json), and the
 * stages' models from the catalog. Pure.
 */
import type { CatalogEntry } from "../models/catalog";
import type { PipelineCpu, PipelineImage, PipelineModels, PipelineStage, StageModel } from "./pipeline-simulation";
import { createRng } from "./simulator";

/** The mix images are drawn from. */
export interface ImageMix {
  /** Lines per image, with weights. */
  linesPerImage: { lines: number; weight: number }[];
  /** Line widths (as PP-OCR prepares a crop, height 48), with counts: each line draws one. */
  lineWidths: { width: number; count: number }[];
  /** Det input pixels of every image (e.g. 640 * 640). */
  detPixels: number;
}

/** `count` images from `mix`, arriving as Poisson at `ratePerS` (or at the given `arrivalsMs`), seeded. */
export function sampleImages(mix: ImageMix, arrivals: { ratePerS: number } | { arrivalsMs: ArrayLike<number> }, count: number, seed: number): PipelineImage[] {
  const rng = createRng(seed);
  const pick = <T>(items: T[], weightOf: (x: T) => number): T => {
    const total = items.reduce((s, x) => s + weightOf(x), 0);
    let u = rng() * total;
    for (const x of items) if ((u -= weightOf(x)) < 0) return x;
    return items[items.length - 1]!;
  };
  const images: PipelineImage[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    if ("ratePerS" in arrivals) t += (-Math.log(1 - rng()) / arrivals.ratePerS) * 1000;
    else if (i >= arrivals.arrivalsMs.length) break;
    else t = arrivals.arrivalsMs[i]!;
    const lines = pick(mix.linesPerImage, (x) => x.weight).lines;
    images.push({ arrivalMs: t, detPixels: mix.detPixels, lineWidths: Array.from({ length: lines }, () => pick(mix.lineWidths, (x) => x.count).width) });
  }
  return images;
}

/**
 * Defaults of the ppocr pipeline until models/ppocr/pipeline.json gives them (readPipelineSpec
 * reads that file's fields over these): SLO p95 <= 3000 ms; det input 640 x 640; post-processing
 * 30 ms per image and 2 ms per line; lines per image an assumed mix of short fields to full pages
 * (mean 10.15); line widths the measured mix of bench/reports/size-classes.json (300 text lines of
 * bench/lib/text-line-mix.ts rendered in four faces, seed 1: median 392 px, mean 461 px).
 */
export const PPOCR_PIPELINE_DEFAULTS = {
  slo: { percentile: 0.95, ms: 3000 },
  cpu: { cpuMs: 30, cpuPerLineMs: 2 } as PipelineCpu,
  mix: {
    detPixels: 640 * 640,
    linesPerImage: [
      { lines: 2, weight: 0.2 },
      { lines: 5, weight: 0.25 },
      { lines: 10, weight: 0.3 },
      { lines: 20, weight: 0.2 },
      { lines: 30, weight: 0.05 },
    ],
    lineWidths: widthCounts(
      [48, 56, 64, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168, 176, 184, 192, 200, 208, 216, 224, 232, 240, 248, 256, 264, 272, 280, 288, 296, 304, 320, 328, 336, 344, 352, 360, 368, 376, 384, 392, 400, 408, 416, 424, 448, 456, 464, 472, 480, 488, 504, 512, 520, 528, 536, 544, 552, 560, 568, 576, 584, 592, 600, 608, 616, 632, 640, 656, 664, 672, 680, 688, 704, 712, 728, 736, 744, 768, 776, 784, 792, 800, 808, 816, 824, 840, 864, 888, 928, 968, 976, 984, 992, 1008, 1032, 1040, 1064, 1072, 1080, 1088, 1104, 1144, 1152, 1208, 1232, 1248, 1256, 1264, 1280],
      [2, 1, 3, 1, 1, 4, 4, 2, 5, 6, 5, 10, 3, 4, 6, 4, 5, 2, 3, 2, 4, 1, 5, 4, 4, 6, 3, 5, 4, 5, 3, 4, 6, 5, 2, 2, 3, 3, 4, 1, 5, 2, 3, 6, 6, 7, 4, 4, 3, 2, 1, 2, 1, 4, 1, 2, 1, 1, 4, 3, 2, 3, 4, 2, 1, 3, 1, 2, 2, 3, 1, 1, 3, 6, 2, 2, 1, 1, 3, 3, 2, 1, 2, 1, 3, 1, 3, 1, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 5],
    ),
  } as ImageMix,
};

function widthCounts(widths: number[], counts: number[]): { width: number; count: number }[] {
  return widths.map((width, i) => ({ width, count: counts[i]! }));
}

/** The pipeline's SLO, CPU constants and mix. */
export interface PipelineSpec {
  slo: { percentile: number; ms: number };
  cpu: PipelineCpu;
  mix: ImageMix;
}

/**
 * A pipeline spec from JSON (models/ppocr/pipeline.json) over the defaults: its `slo`
 * {percentile, ms}, and from its `planning` object (or the top level) any of `cpuMs`,
 * `cpuPerLineMs` (or `cpu` {cpuMs, cpuPerLineMs}), `detPixels` (or `detInput` [height, width]),
 * `linesPerImage` [{lines, weight}], `lineWidths` [{width, count}]. Throws a RangeError naming a
 * field that is there but malformed.
 */
export function readPipelineSpec(json: unknown, defaults: PipelineSpec = PPOCR_PIPELINE_DEFAULTS): PipelineSpec {
  const top = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const o = (typeof top.planning === "object" && top.planning !== null ? top.planning : top) as Record<string, unknown>;
  const num = (x: unknown, field: string, ok: (v: number) => boolean = (v) => v >= 0): number => {
    if (typeof x !== "number" || !Number.isFinite(x) || !ok(x)) throw new RangeError(`pipeline spec: ${field}: must be a valid number`);
    return x;
  };
  const spec: PipelineSpec = { slo: { ...defaults.slo }, cpu: { ...defaults.cpu }, mix: { ...defaults.mix } };
  const slo = (top.slo ?? o.slo) as Record<string, unknown> | undefined;
  if (slo !== undefined) {
    if (slo.percentile !== undefined) spec.slo.percentile = num(slo.percentile, "slo.percentile", (v) => v > 0 && v < 1);
    if (slo.ms !== undefined) spec.slo.ms = num(slo.ms, "slo.ms", (v) => v > 0);
  }
  const cpu = (o.cpu ?? o) as Record<string, unknown>;
  if (cpu.cpuMs !== undefined) spec.cpu.cpuMs = num(cpu.cpuMs, "cpuMs");
  if (cpu.cpuPerLineMs !== undefined) spec.cpu.cpuPerLineMs = num(cpu.cpuPerLineMs, "cpuPerLineMs");
  if (o.detPixels !== undefined) spec.mix.detPixels = num(o.detPixels, "detPixels", (v) => v > 0);
  if (Array.isArray(o.detInput) && o.detInput.length === 2) spec.mix.detPixels = num(o.detInput[0], "detInput[0]", (v) => v > 0) * num(o.detInput[1], "detInput[1]", (v) => v > 0);
  if (o.linesPerImage !== undefined) {
    if (!Array.isArray(o.linesPerImage) || !o.linesPerImage.length) throw new RangeError("pipeline spec: linesPerImage: must be a non-empty list of {lines, weight}");
    spec.mix.linesPerImage = o.linesPerImage.map((x: { lines?: unknown; weight?: unknown }, i) => ({ lines: num(x.lines, `linesPerImage[${i}].lines`, Number.isInteger), weight: num(x.weight, `linesPerImage[${i}].weight`) }));
  }
  if (o.lineWidths !== undefined) {
    if (!Array.isArray(o.lineWidths) || !o.lineWidths.length) throw new RangeError("pipeline spec: lineWidths: must be a non-empty list of {width, count}");
    spec.mix.lineWidths = o.lineWidths.map((x: { width?: unknown; count?: unknown }, i) => ({ width: num(x.width, `lineWidths[${i}].width`, (v) => v > 0), count: num(x.count, `lineWidths[${i}].count`) }));
  }
  return spec;
}

/**
 * Per-row size at which each stage's profile was measured (src/cli/profile.ts): det at 640 x 640,
 * rec at width 320, cls at its fixed 48 x 192 (no scaling).
 */
export const PPOCR_PROFILED_SIZE: Record<PipelineStage, number> = { det: 640 * 640, cls: 1, rec: 320 };

/** rec's narrowest request width in the ppocr Worker (src/ocr/line-crop.ts REC_MIN_WIDTH). */
export const PPOCR_REC_MIN_WIDTH = 320;

/** The ppocr stages' models from the catalog (src/models/catalog.ts CATALOG); `names`: the pipeline manifest's stages. */
export function ppocrStageModels(catalog: ReadonlyMap<string, CatalogEntry>, names: Record<PipelineStage, string> = { det: "ppocr-det", cls: "ppocr-cls", rec: "ppocr-rec" }): PipelineModels {
  const stage = (stageName: PipelineStage, name: string): StageModel => {
    const entry = catalog.get(name);
    if (!entry) throw new RangeError(`no model ${name} in the catalog`);
    const b = entry.manifest.batching;
    const placements = (["edge", "origin"] as const).filter((p) => entry.service[p] && (p === "origin" || !entry.originOnly));
    return {
      model: name,
      service: entry.service,
      profiledSize: PPOCR_PROFILED_SIZE[stageName],
      overheadMs: entry.overheadMs,
      // Every stage here is buffered, and the simulation takes a request's CPU as latency, not service.
      hopMs: entry.hopMs + entry.pathCpu.edge.perRequestMs + entry.pathCpu.edge.perBatchMs,
      maxBatch: b.maxBatch,
      maxRowsPerRequest: b.maxRowsPerRequest,
      maxQueueRows: b.maxQueueRows,
      placements,
    };
  };
  const rec = catalog.get(names.rec);
  const recInput = rec?.manifest.inputs.find((i) => i.name === (rec.manifest.batching.sizeClasses?.input ?? "x"));
  const recMaxWidth = recInput?.maxShape?.[rec?.manifest.batching.sizeClasses?.axis ?? 3];
  const widths = rec?.manifest.batching.sizeClasses?.widths;
  return { det: stage("det", names.det), cls: stage("cls", names.cls), rec: stage("rec", names.rec), ...(widths && { recClassWidths: widths }), ...(recMaxWidth && { recMaxWidth }), recMinWidth: PPOCR_REC_MIN_WIDTH };
}
