/**
 * What the dashboard draws for one model, derived from the snapshots it kept: request and
 * rejection rates from counter increases between polls, p50/p95/p99 of the request duration from
 * the histogram's bucket increases over a sliding window (histogramQuantile), the SLO, queued rows,
 * the plan's step lines, and the batch sizes of the window. A missing series gives null points (a
 * gap), never an error. Pure: snapshots and the window in, arrays out.
 */
import { histogramQuantile } from "./histogram-quantile";
import { bucketIncreases, stepIncreases, windowBuckets, windowStart } from "./increase";
import { modelSamples, modelSum, type Snapshot } from "./metrics-snapshot";

/** A drawn value; null is a gap. */
export type Point = number | null;

/** The refusal reasons the edge counts (eir_inference_rejections_total). */
export const REJECTION_REASONS = ["queue_full", "late", "expired", "cancelled"] as const;

/** One reason of REJECTION_REASONS. */
export type RejectionReason = (typeof REJECTION_REASONS)[number];

/** The plan's numbers over time. */
export interface PlanSeries {
  version: Point[];
  shards: Point[];
  maxBatchRows: Point[];
  windowMs: Point[];
  poolReplicas: Point[];
}

/** Every series of one model's charts, aligned on `timesS` (epoch seconds, uPlot's x). */
export interface ModelSeries {
  timesS: number[];
  requestsPerS: Point[];
  non2xxPerS: Point[];
  p50Ms: Point[];
  p95Ms: Point[];
  p99Ms: Point[];
  sloMs: Point[];
  /** e.g. "SLO p95"; "SLO" when the percentile is unknown. */
  sloLabel: string;
  queueRows: Point[];
  rejectionsPerS: Record<RejectionReason, Point[]>;
  plan: PlanSeries;
  /** The placement at each snapshot (direct, edge, origin), null when unknown. */
  placement: Array<string | null>;
  /** Requests by the rows of the batch they ran in, over the window ending at the last snapshot (buckets up to the last one used, at least five). */
  batch: { labels: string[]; counts: number[] };
  /** Requests counted between the first and the last kept snapshot. */
  requestsInHistory: number;
}

const REQUESTS = "eir_inference_requests_total";
const DURATION = "eir_inference_request_duration_seconds";
const BATCH = "eir_inference_batch_size";

/** The largest of `family`'s samples for `model` (a gauge the edge reports once per model), or null. */
function gauge(snapshot: Snapshot, family: string, model: string, scale = 1): Point {
  const samples = modelSamples(snapshot, family, model);
  return samples.length ? Math.max(...samples.map((s) => s.value)) * scale : null;
}

/** Increases per step divided by the step's seconds; the first point (no step) is null. */
function perSecond(increases: readonly number[], timesMs: readonly number[]): Point[] {
  return increases.map((inc, i) => (i === 0 || timesMs[i]! <= timesMs[i - 1]! ? null : inc / ((timesMs[i]! - timesMs[i - 1]!) / 1000)));
}

/** The request duration quantiles (ms) at each snapshot, over the window ending there. */
function quantiles(snapshots: readonly Snapshot[], model: string, windowMs: number): { p50Ms: Point[]; p95Ms: Point[]; p99Ms: Point[] } {
  const increases = bucketIncreases(snapshots, DURATION, model);
  const timesMs = snapshots.map((s) => s.atMs);
  const at = (q: number) =>
    snapshots.map((_, i) => {
      const value = histogramQuantile(q, windowBuckets(increases, windowStart(timesMs, i, windowMs), i));
      return Number.isFinite(value) ? value * 1000 : null;
    });
  return { p50Ms: at(0.5), p95Ms: at(0.95), p99Ms: at(0.99) };
}

/** A bucket's label: the batch rows it holds, (previous bound, bound]. */
function bucketLabel(previous: number, bound: number): string {
  if (bound === Infinity) return `>${previous}`;
  return bound - previous <= 1 ? String(bound) : `${previous + 1}–${bound}`;
}

/** Requests per batch-size bucket over the window ending at the last snapshot, up to the last bucket used. */
function batchDistribution(snapshots: readonly Snapshot[], model: string, windowMs: number): ModelSeries["batch"] {
  const last = snapshots.length - 1;
  const buckets = windowBuckets(bucketIncreases(snapshots, BATCH, model), windowStart(snapshots.map((s) => s.atMs), last, windowMs), last);
  let previous = { bound: 0, count: 0 };
  const labels: string[] = [];
  const counts: number[] = [];
  for (const { upperBound, count } of buckets) {
    labels.push(bucketLabel(previous.bound, upperBound));
    counts.push(Math.max(0, count - previous.count));
    previous = { bound: upperBound, count: Math.max(count, previous.count) };
  }
  // Buckets past the last one used are left out (the first five, up to 16 rows, always shown): 256-row batches are rare.
  const shown = Math.max(Math.min(5, counts.length), counts.findLastIndex((n) => n > 0) + 1);
  return { labels: labels.slice(0, shown), counts: counts.slice(0, shown) };
}

/** The placement whose eir_plan_placement sample is set. */
function placementAt(snapshot: Snapshot, model: string): string | null {
  const set = modelSamples(snapshot, "eir_plan_placement", model).find((s) => s.value >= 1);
  return typeof set?.labels.placement === "string" ? set.labels.placement : null;
}

/** The SLO's label from the last snapshot's percentile label. */
function sloLabel(snapshots: readonly Snapshot[], model: string): string {
  const last = snapshots[snapshots.length - 1];
  const percentile = last ? modelSamples(last, "eir_slo_seconds", model)[0]?.labels.percentile : undefined;
  return percentile === undefined ? "SLO" : `SLO p${String(percentile)}`;
}

/** Every series of `model`'s charts from `snapshots` (oldest first), quantiles and batch sizes over `windowMs`. */
export function modelSeries(snapshots: readonly Snapshot[], model: string, windowMs: number): ModelSeries {
  const timesMs = snapshots.map((s) => s.atMs);
  const requests = (keep: (status: string) => boolean) => stepIncreases(snapshots.length, (i) => modelSamples(snapshots[i]!, REQUESTS, model).filter((s) => keep(String(s.labels.status ?? ""))));
  const allRequests = requests(() => true);
  const rejections = (reason: RejectionReason) => perSecond(stepIncreases(snapshots.length, (i) => modelSamples(snapshots[i]!, "eir_inference_rejections_total", model).filter((s) => s.labels.reason === reason)), timesMs);
  const gauges = (family: string, scale = 1) => snapshots.map((s) => gauge(s, family, model, scale));
  return {
    timesS: timesMs.map((ms) => ms / 1000),
    requestsPerS: perSecond(allRequests, timesMs),
    non2xxPerS: perSecond(requests((status) => !status.startsWith("2")), timesMs),
    ...quantiles(snapshots, model, windowMs),
    sloMs: gauges("eir_slo_seconds", 1000),
    sloLabel: sloLabel(snapshots, model),
    queueRows: snapshots.map((s) => modelSum(s, "eir_inference_queue_rows", model) ?? null),
    rejectionsPerS: { queue_full: rejections("queue_full"), late: rejections("late"), expired: rejections("expired"), cancelled: rejections("cancelled") },
    plan: {
      version: gauges("eir_plan_version"),
      shards: gauges("eir_plan_shards"),
      maxBatchRows: gauges("eir_plan_max_batch_rows"),
      windowMs: gauges("eir_plan_window_seconds", 1000),
      poolReplicas: gauges("eir_plan_pool_replicas"),
    },
    placement: snapshots.map((s) => placementAt(s, model)),
    batch: snapshots.length ? batchDistribution(snapshots, model, windowMs) : { labels: [], counts: [] },
    requestsInHistory: allRequests.reduce((sum, n) => sum + n, 0),
  };
}
