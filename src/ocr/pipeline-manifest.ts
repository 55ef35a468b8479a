/**
 * Pipeline manifests (models/<name>/pipeline.json): a model made of served models in sequence, with
 * one end-to-end latency SLO. The only one is `ppocr` (an image in, its text lines out): its
 * stages name the detector, the angle classifier and the recogniser, each served, batched and
 * planned as the model it is. Validated when the module loads, like the model manifests.
 */
import { z } from "zod";
import { ConfigError, describeIssues, tensorSpec, type RequestSpec } from "../models/manifest";
import ppocr from "../../models/ppocr/pipeline.json";

const pipelineSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    version: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/),
    description: z.string().default(""),
    /** One encoded image (BYTES, shape [1]); the outputs have one row per text line. */
    inputs: z.array(tensorSpec).length(1),
    outputs: z.array(tensorSpec).length(3),
    /** The served models that make up the pipeline, by role. */
    stages: z.object({ det: z.string(), cls: z.string(), rec: z.string() }).strict(),
    /** The end-to-end target the planner splits across the stages (src/planner/pipeline.ts): `percentile` of images within `ms`. */
    slo: z.object({ percentile: z.number().gt(0).lt(1), ms: z.number().positive() }).strict(),
    /** The most an image waits (its deadline; a client's timeout_ms may shorten it), in ms. */
    maxLatencyMs: z.number().positive().max(600_000),
    image: z
      .object({
        /** Largest encoded image, in bytes (413 beyond). */
        maxBytes: z.number().int().positive(),
        /** Largest decoded image, in pixels (413 beyond, judged from its header before decoding): decoding takes 10-21 bytes a pixel of the isolate's 128 MB. */
        maxPixels: z.number().int().positive(),
        /** The detector sees the image scaled so its longer side is at most this (PaddleOCR's det_limit_side_len). */
        detLimitSideLen: z.number().int().min(32).max(4096),
      })
      .strict(),
    text: z
      .object({
        /** How far a detected line's box grows beyond the detector's shrunk region (DB's unclip ratio; PaddleOCR's default 1.5 crops so tight that the recogniser drops word spaces: bench/reports/ocr.md). */
        unclipRatio: z.number().min(1).max(4),
        /** A line the classifier calls upside down with at least this probability is turned (PaddleOCR's cls_thresh). */
        clsThreshold: z.number().min(0).max(1),
        /** Lines read with a lower mean symbol probability are dropped (PaddleOCR's drop_score). */
        dropScore: z.number().min(0).max(1),
      })
      .strict(),
  })
  .strict();

/** A validated pipeline manifest, with what request parsing needs (one image per request). */
export type PipelineManifest = z.infer<typeof pipelineSchema> & RequestSpec;

/** Validates a pipeline manifest; throws ConfigError naming the file and field. */
export function parsePipelineManifest(json: unknown, file: string): PipelineManifest {
  const parsed = pipelineSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(describeIssues(file, parsed.error));
  return { ...parsed.data, batching: { maxRowsPerRequest: 1 } };
}

/** Served pipelines by name. */
export const PIPELINES: ReadonlyMap<string, PipelineManifest> = new Map([["ppocr", parsePipelineManifest(ppocr, "models/ppocr/pipeline.json")]]);
