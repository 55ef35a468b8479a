/**
 * Metrics of one closed-loop benchmark run from its raw records (pure): SLO attainment overall and
 * per minute, p99, replica-seconds, pool changes per phase, rolling percentiles per second, and the
 * step response (time to the first scale-up decision, to the pool reaching it, to the SLO holding
 * again). Times are seconds from the start of the run's load.
 */
import { quantile } from "./stats";

/** One request as the client saw it. */
export interface RequestRecord {
  /** Scheduled send time, s. */
  sentS: number;
  /** HTTP status; 0 for a network error or client timeout. */
  status: number;
  /** From the scheduled send time to the answer, ms. */
  latencyMs: number;
  batchSize: number;
}

/** The pool size seen at a time. */
export interface PoolSample {
  atS: number;
  size: number;
}

/** A plan change, as the controller logged it. */
export interface DecisionRecord {
  atS: number;
  version: number;
  reason: string;
  before: { poolSize: number; shards: number; maxBatch: number; windowMs: number };
  after: { poolSize: number; shards: number; maxBatch: number; windowMs: number };
  /** The controller's inputs and prediction, as it logged them. */
  inputs?: unknown;
  predicted?: unknown;
}

/** Whether a request met the SLO: answered 200 within `sloMs`. */
export const isWithinSlo = (r: RequestRecord, sloMs: number) => r.status === 200 && r.latencyMs <= sloMs;

/** Share of requests within the SLO (1 when there are none). */
export function attainment(records: readonly RequestRecord[], sloMs: number): number {
  return records.length ? records.filter((r) => isWithinSlo(r, sloMs)).length / records.length : 1;
}

/** Attainment per whole minute of send time (the last, partial minute included). */
export function attainmentPerMinute(records: readonly RequestRecord[], sloMs: number, durationS: number): number[] {
  const minutes = Math.max(1, Math.ceil(durationS / 60));
  return Array.from({ length: minutes }, (_, m) => attainment(records.filter((r) => r.sentS >= m * 60 && r.sentS < (m + 1) * 60), sloMs));
}

/** The q-quantile of latency with failed requests counted as infinitely late. */
export function latencyQuantile(records: readonly RequestRecord[], q: number): number {
  return quantile(records.map((r) => (r.status === 200 ? r.latencyMs : Infinity)), q);
}

/** Integral of the pool size over [0, durationS], replica-seconds (samples hold until the next). */
export function replicaSeconds(samples: readonly PoolSample[], durationS: number): number {
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const from = Math.max(0, samples[i]!.atS);
    const to = Math.min(durationS, samples[i + 1]?.atS ?? durationS);
    if (to > from) total += samples[i]!.size * (to - from);
  }
  return total;
}

/** Number of pool-size changes with a sample time in [fromS, toS). */
export function poolChanges(samples: readonly PoolSample[], fromS: number, toS: number): number {
  let changes = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i]!.atS >= fromS && samples[i]!.atS < toS && samples[i]!.size !== samples[i - 1]!.size) changes++;
  return changes;
}

/** Per second t: requests sent in [t - windowS, t) per s, and their q-quantile latency (failures as Infinity; NaN when none). */
export function rollingPerSecond(records: readonly RequestRecord[], durationS: number, windowS: number, q: number): Array<{ atS: number; ratePerS: number; quantileMs: number }> {
  const sorted = [...records].sort((a, b) => a.sentS - b.sentS);
  const out: Array<{ atS: number; ratePerS: number; quantileMs: number }> = [];
  for (let t = 1; t <= Math.ceil(durationS); t++) {
    const win = sorted.filter((r) => r.sentS >= t - windowS && r.sentS < t);
    const ratePerS = sorted.filter((r) => r.sentS >= t - 1 && r.sentS < t).length;
    out.push({ atS: t, ratePerS, quantileMs: win.length ? latencyQuantile(win, q) : NaN });
  }
  return out;
}

/** How the run answered a step up in load at `stepS` (the high phase lasting until `endS`). */
export interface StepResponse {
  /** From the step to the first decision that raised the pool (or, for an edge model, changed the plan), s; null if none. */
  decisionS: number | null;
  /** From the step until the pool first reached that decision's size, s; null if never. */
  poolReachedS: number | null;
  /** From the step until the first 10 s window after which every 10 s window of the phase meets the SLO (p99 within it), s; 0 when it always held; null when it never did. */
  sloHoldsAgainS: number | null;
  /** Decision to pool reached: one replica start as this run saw it, s. */
  replicaStartS: number | null;
}

/** The response to a step at `stepS`; `percentile` and `sloMs` are the model's SLO. */
export function stepResponse(records: readonly RequestRecord[], pool: readonly PoolSample[], decisions: readonly DecisionRecord[], stepS: number, endS: number, percentile: number, sloMs: number, isOrigin: boolean): StepResponse {
  const firstUp = decisions
    .filter((d) => d.atS >= stepS && d.atS < endS && (isOrigin ? d.after.poolSize > d.before.poolSize : true))
    .sort((a, b) => a.atS - b.atS)[0];
  const reached = firstUp && isOrigin ? pool.find((p) => p.atS >= firstUp.atS && p.size >= firstUp.after.poolSize) : undefined;
  const windowS = 10;
  let lastBad = -1;
  for (let k = 0; stepS + k + windowS <= endS; k++) {
    const win = records.filter((r) => r.sentS >= stepS + k && r.sentS < stepS + k + windowS);
    if (win.length && latencyQuantile(win, percentile) > sloMs) lastBad = k;
  }
  const sloHoldsAgainS = lastBad < 0 ? 0 : stepS + lastBad + 1 + windowS <= endS ? lastBad + 1 : null;
  return {
    decisionS: firstUp ? firstUp.atS - stepS : null,
    poolReachedS: reached ? reached.atS - stepS : null,
    sloHoldsAgainS,
    replicaStartS: firstUp && reached ? reached.atS - firstUp.atS : null,
  };
}
