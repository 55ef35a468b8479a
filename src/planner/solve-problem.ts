/**
 * Runs a validated Problem: evaluates its listed configurations, or, without `evaluate`, optimises.
 * The result is the JSON the CLI prints (latencies that are infinite because the servers are
 * overloaded come out as null).
 */
import { toMarkovianArrival } from "./arrival";
import { type LatencyEstimate, estimateLatency } from "./latency-model";
import { type OptimizeResult, type PlacementOption, type SearchSpace, DEFAULT_SEARCH_SPACE, geometricWindows, optimize, upTo } from "./optimizer";
import { withPrices } from "./prices";
import type { Problem } from "./problem";
import type { ServerSpec } from "./queueing";

/** One evaluated configuration, as the contract prints it (latencies in ms; null when unstable). */
export interface Evaluation {
  maxBatch: number;
  windowMs: number;
  /** Percentiles, ms, overheadMs included. */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  meanBatch: number;
  /** Mean latency, ms, overheadMs included (null when unstable). */
  meanLatencyMs: number | null;
}

/** What solving a problem gives: evaluations (with `details` for people) or an optimisation. */
export type Solution = { kind: "evaluations"; evaluations: Evaluation[]; details: LatencyEstimate[] } | { kind: "plan"; result: OptimizeResult };

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Solves a problem (see the module doc). */
export function solveProblem(problem: Problem): Solution {
  const arrival = toMarkovianArrival(problem.arrival);
  const servers: ServerSpec = problem.servers ?? { kind: "unbounded" };
  if (problem.evaluate) {
    const details = problem.evaluate.map((config) =>
      estimateLatency({ arrival, service: problem.serviceMs, servers, maxBatch: config.maxBatch, windowMs: config.windowMs, shards: config.shards ?? problem.shards ?? 1, extraMs: problem.overheadMs ?? 0 }),
    );
    const evaluations = details.map((e) => ({
      maxBatch: e.maxBatch,
      windowMs: e.windowMs,
      latencyMs: { p50: finiteOrNull(e.latencyMs.p50), p95: finiteOrNull(e.latencyMs.p95), p99: finiteOrNull(e.latencyMs.p99) },
      meanBatch: e.meanBatch,
      meanLatencyMs: finiteOrNull(e.meanLatencyMs),
    }));
    return { kind: "evaluations", evaluations, details };
  }
  const placements: { edge?: PlacementOption; origin?: PlacementOption } = {};
  const given = problem.placements ?? { edge: {}, origin: {} };
  if (given.edge) placements.edge = { service: given.edge.serviceMs ?? problem.serviceMs };
  if (given.origin) placements.origin = { service: given.origin.serviceMs ?? problem.serviceMs, extraMs: given.origin.networkMs ?? 0 };
  const result = optimize({
    arrival,
    slo: problem.slo,
    placements,
    space: searchSpace(problem.search),
    prices: withPrices(problem.prices),
    ...(problem.cost ? { costOptions: problem.cost } : {}),
    ...(problem.limits?.maxRequestsPerSPerShard ? { maxRequestsPerSPerShard: problem.limits.maxRequestsPerSPerShard } : {}),
    ...(problem.alternatives !== undefined ? { alternatives: problem.alternatives } : {}),
    ...(problem.costSlack ? { costSlack: problem.costSlack } : {}),
    ...(problem.overheadMs ? { overheadMs: problem.overheadMs } : {}),
    ...(given.origin?.formation ? { originFormation: given.origin.formation } : {}),
  });
  return { kind: "plan", result };
}

function searchSpace(search: Problem["search"]): SearchSpace {
  const ints = (value: number[] | { max: number } | undefined, fallback: number[]): number[] =>
    value === undefined ? fallback : Array.isArray(value) ? [...new Set(value)].sort((a, b) => a - b) : upTo(value.max);
  const windows = search?.windowMs;
  return {
    maxBatch: ints(search?.maxBatch, DEFAULT_SEARCH_SPACE.maxBatch),
    windowMs: windows === undefined ? DEFAULT_SEARCH_SPACE.windowMs : Array.isArray(windows) ? [...new Set(windows)].sort((a, b) => a - b) : geometricWindows(windows.minMs, windows.maxMs, windows.count),
    shards: ints(search?.shards, DEFAULT_SEARCH_SPACE.shards),
    poolSize: ints(search?.poolSize, DEFAULT_SEARCH_SPACE.poolSize),
  };
}
