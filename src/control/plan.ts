/**
 * A model's live plan: the fields the control plane decides (where batches run, how they are formed,
 * how many buffer shards and origin replicas), the version that orders them, and the pins that hold
 * fields at an operator's value. The running system reads only `effectiveManifest`: a manifest with
 * the plan's fields in place, so every consumer keeps reading a manifest.
 */
import { z } from "zod";
import { batchingSpec, PLACEMENTS, type ModelManifest, type Placement } from "../models/manifest";

/** The fields of a plan the controller decides. */
export interface LivePlan {
  placement: Placement;
  /** Most rows one batch holds. */
  maxBatch: number;
  /** Longest wait of a batch's oldest request for company, ms. */
  windowMs: number;
  /** Buffer Durable Objects the model's requests spread over. */
  shards: number;
  /** Origin replicas this model needs (0 at the edge). */
  poolSize: number;
  /** Stream Durable Objects new streams spread over, per set of stream scalars (src/control/stream-load.ts). */
  streamShards: number;
}

/** The plan fields an operator may pin. */
export const PLAN_FIELDS = ["placement", "maxBatch", "windowMs", "shards", "poolSize", "streamShards"] as const;

/** Pins: each given field holds at its value whatever the controller decides. */
export const pinsSchema = z
  .strictObject({
    placement: z.enum(PLACEMENTS),
    maxBatch: batchingSpec.shape.maxBatch,
    windowMs: batchingSpec.shape.windowMs,
    shards: batchingSpec.shape.shards,
    poolSize: z.int().min(0).max(1024),
    streamShards: batchingSpec.shape.shards,
  })
  .partial();

/** Pinned plan fields. */
export type Pins = z.infer<typeof pinsSchema>;

/** A pin update through the API: a value pins a field, null releases it, absent leaves it. */
export const pinUpdateSchema = z
  .strictObject({
    placement: pinsSchema.shape.placement.unwrap().nullable(),
    maxBatch: pinsSchema.shape.maxBatch.unwrap().nullable(),
    windowMs: pinsSchema.shape.windowMs.unwrap().nullable(),
    shards: pinsSchema.shape.shards.unwrap().nullable(),
    poolSize: pinsSchema.shape.poolSize.unwrap().nullable(),
    streamShards: pinsSchema.shape.streamShards.unwrap().nullable(),
  })
  .partial();

/** A pin update: a value pins the field, null releases it, absent leaves it. */
export type PinUpdate = { [K in keyof Pins]?: Pins[K] | null };

/** What the controller predicts for a plan at the load it planned for. */
export interface Prediction {
  /** Latency at the SLO's percentile, ms (null when the plan cannot keep up). */
  sloLatencyMs: number | null;
  p95Ms: number | null;
  costPerHourUsd: number;
  /** Arrival rate the prediction is for, requests per second. */
  ratePerS: number;
}

/** The plan as published: what routing, buffers and the pool apply. */
export interface PublishedPlan {
  /** Increases by one on every applied change. */
  version: number;
  plan: LivePlan;
  /** When this version was decided, epoch ms. */
  decidedAtMs: number;
}

/** The plan a manifest describes (before any controller decision); origin models start with one replica, streams with the manifest's shards. */
export function manifestPlan(manifest: ModelManifest): LivePlan {
  const { maxBatch, windowMs, shards } = manifest.batching;
  return { placement: manifest.placement, maxBatch, windowMs, shards, poolSize: manifest.placement === "origin" ? 1 : 0, streamShards: shards };
}

/** The pins a manifest sets: its `pinned` fields at its own values. */
export function manifestPins(manifest: ModelManifest): Pins {
  const plan = manifestPlan(manifest);
  return Object.fromEntries(manifest.pinned.map((field) => [field, plan[field]]));
}

/** `plan` with the pinned fields put back. */
export function withPins(plan: LivePlan, pins: Pins): LivePlan {
  return { ...plan, ...pins };
}

/** Applies a pin update to the current pins. */
export function updatePins(pins: Pins, update: PinUpdate): Pins {
  const next: Record<string, unknown> = { ...pins };
  for (const field of PLAN_FIELDS) {
    if (update[field] === null) delete next[field];
    else if (update[field] !== undefined) next[field] = update[field];
  }
  return next as Pins;
}

/**
 * The manifest the runtime serves with under `plan`: its placement and batching fields replaced,
 * maxBatch as planned (rows), so maxBatch 1 runs each request alone. A request may still carry up
 * to maxRowsPerRequest rows (the protocol limit stays): the scheduler runs one larger than maxBatch
 * alone, as the planner has it. The queue holds at least one batch.
 */
export function effectiveManifest(manifest: ModelManifest, plan: LivePlan | undefined): ModelManifest {
  if (!plan) return manifest;
  const { batching } = manifest;
  const { maxBatch } = plan;
  if (plan.placement === manifest.placement && maxBatch === batching.maxBatch && plan.windowMs === batching.windowMs && plan.shards === batching.shards) return manifest;
  return { ...manifest, placement: plan.placement, batching: { ...batching, maxBatch, windowMs: plan.windowMs, shards: plan.shards, maxQueueRows: Math.max(batching.maxQueueRows, maxBatch) } };
}

/** Whether two plans differ in any field. */
export function isSamePlan(a: LivePlan, b: LivePlan): boolean {
  return PLAN_FIELDS.every((f) => a[f] === b[f]);
}
