/**
 * The steps of the pipeline planner's greedy search (src/planner/pipeline.ts): what one step from a
 * configuration may change, when a plan counts as feasible and as cheaper, and the MODEL_OVERRIDES
 * a configuration applies as. Pure.
 */
import { type PipelineConfig, type PipelineEvaluator, type PipelineModels, type PipelinePrediction, type PipelineStage, type StageConfig, type StageModel, type StagePlacement, PIPELINE_STAGES } from "./pipeline-simulation";

/** The maxBatch values a step moves along (up to the model's own maxBatch, which is one too). */
export const PIPELINE_MAX_BATCHES = [1, 2, 4, 8, 16, 32, 64];
/** The windows a step moves along, ms. */
export const PIPELINE_WINDOWS_MS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500];
/** Highest busy share of a server in a plan (the controller's PLAN_UTILISATION, src/control/replan.ts). */
export const DEFAULT_MAX_UTILISATION = 0.85;
/** Servers of the lowest-latency start: each at most this busy. */
export const START_UTILISATION = 0.5;

/** A step of the greedy search: the configuration it leads to and what it changes. */
export interface PipelineStep {
  stage: PipelineStage;
  move: "maxBatch" | "window" | "shards" | "pool" | "placement";
  config: PipelineConfig;
}

/** Relative cost decrease a step must bring to count as cheaper. */
const CHEAPER = 1e-6;

/** Whether cost `a` is cheaper than `b` by more than rounding. */
export function isCheaper(a: number, b: number): boolean {
  return a < b * (1 - CHEAPER) - 1e-12;
}

/** The search's fixed knobs (limits, sample stream rates) that steps need. */
export interface StepContext {
  models: PipelineModels;
  maxShards: number;
  maxPoolSize: number;
  /** Fewest shards per stage (requests per second over the per-shard cap). */
  minShards: Record<PipelineStage, number>;
  /** Rows per second and mean per-row size per stage (for the shards a move to the edge needs). */
  rowsPerS: Record<PipelineStage, number>;
  meanSize: Record<PipelineStage, number>;
}

/** The step context of a sample: its rows per second and mean row sizes, and the limits (default 16 shards, 64 replicas, 1000 requests/s per shard). */
export function pipelineStepContext(evaluator: PipelineEvaluator, limits: { maxShards?: number; maxPoolSize?: number; maxRequestsPerSPerShard?: number } = {}): StepContext {
  const imagesPerS = (evaluator.images.length / evaluator.spanMs) * 1000;
  const rowsPerS: Record<PipelineStage, number> = { det: imagesPerS, cls: imagesPerS * evaluator.meanLines, rec: imagesPerS * evaluator.meanLines };
  const meanSize: Record<PipelineStage, number> = { det: evaluator.meanRowSize("det"), cls: evaluator.meanRowSize("cls"), rec: evaluator.meanRowSize("rec") };
  // Requests per second at one row per request bound the shards from below (the per-shard cap).
  const perShardCap = limits.maxRequestsPerSPerShard ?? 1000;
  const minShards = Object.fromEntries(PIPELINE_STAGES.map((s) => [s, Math.max(1, Math.ceil(rowsPerS[s] / perShardCap))])) as Record<PipelineStage, number>;
  return { models: evaluator.models, maxShards: limits.maxShards ?? 16, maxPoolSize: limits.maxPoolSize ?? 64, minShards, rowsPerS, meanSize };
}

/** Whether a prediction meets the SLO with no server busier than `maxUtilisation` (the planner's feasibility). */
export function meetsPipelineSlo(prediction: PipelinePrediction, slo: { ms: number }, maxUtilisation = DEFAULT_MAX_UTILISATION): boolean {
  return prediction.percentileMs <= slo.ms && PIPELINE_STAGES.every((s) => prediction.stages[s].utilisation <= maxUtilisation);
}

/** Every single greedy step from `config` (see the module doc). */
export function pipelineSteps(config: PipelineConfig, context: StepContext): PipelineStep[] {
  const steps: PipelineStep[] = [];
  const withStage = (stage: PipelineStage, c: StageConfig): PipelineConfig => ({ ...config, [stage]: c });
  for (const stage of PIPELINE_STAGES) {
    const c = config[stage];
    const model = context.models[stage];
    const nextBatch = [...PIPELINE_MAX_BATCHES, model.maxBatch].filter((b) => b > c.maxBatch && b <= model.maxBatch).sort((a, b) => a - b)[0];
    if (nextBatch !== undefined) steps.push({ stage, move: "maxBatch", config: withStage(stage, { ...c, maxBatch: nextBatch, maxRowsPerRequest: Math.min(model.maxRowsPerRequest, nextBatch) }) });
    const nextWindow = PIPELINE_WINDOWS_MS.find((w) => w > c.windowMs);
    // A window does nothing at maxBatch 1 (every request is due at once).
    if (nextWindow !== undefined && c.maxBatch > 1) steps.push({ stage, move: "window", config: withStage(stage, { ...c, windowMs: nextWindow }) });
    if (c.placement === "edge" && c.shards > context.minShards[stage]) steps.push({ stage, move: "shards", config: withStage(stage, { ...c, shards: c.shards - 1 }) });
    if (c.placement === "origin" && c.poolSize > 1) steps.push({ stage, move: "pool", config: withStage(stage, { ...c, poolSize: c.poolSize - 1 }) });
    if (c.placement === "origin" && model.placements.includes("edge")) {
      const shards = Math.min(context.maxShards, Math.max(context.minShards[stage], serversFor(model, "edge", context.rowsPerS[stage], context.meanSize[stage], c.maxBatch, START_UTILISATION)));
      steps.push({ stage, move: "placement", config: withStage(stage, { ...c, placement: "edge", shards, poolSize: 0 }) });
    }
  }
  return steps;
}

/** Servers that keep each at most `utilisation` busy with batches of `batchRows` rows (at least 1). */
export function serversFor(model: StageModel, placement: StagePlacement, rowsPerS: number, meanSize: number, batchRows: number, utilisation: number): number {
  const line = model.service[placement]!;
  const perRowMs = line.baseMs / Math.max(1, batchRows) + (line.perRowMs * meanSize) / model.profiledSize;
  return Math.max(1, Math.ceil((rowsPerS * perRowMs) / 1000 / utilisation));
}

/** MODEL_OVERRIDES entries by model name (src/config.ts): placement and batching. */
export type PipelineOverrides = Record<string, { placement: StagePlacement; batching: { maxBatch: number; windowMs: number; shards: number; maxRowsPerRequest: number } }>;

/** The MODEL_OVERRIDES entries of a configuration. */
export function pipelineOverrides(config: PipelineConfig, models: PipelineModels): PipelineOverrides {
  return Object.fromEntries(
    PIPELINE_STAGES.map((stage) => {
      const c = config[stage];
      const rows = Math.max(1, Math.min(c.maxRowsPerRequest ?? models[stage].maxRowsPerRequest, c.maxBatch));
      return [models[stage].model, { placement: c.placement, batching: { maxBatch: c.maxBatch, windowMs: c.windowMs, shards: c.shards, maxRowsPerRequest: rows } }];
    }),
  );
}

/** InferLine's planner over the pipeline (see the module doc). */
