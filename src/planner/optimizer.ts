/**
 * The optimizer: the cheapest plan (placement, maxBatch, windowMs, shards, origin pool size) whose
 * chosen latency percentile meets the SLO, plus the next-best alternatives.
 *
 * Best-first search over all configurations. Batch size distributions depend only on (shards,
 * window, maxBatch); they come from one set of counting matrices per (shards, window) covering every
 * maxBatch. From them follow, cheaply, stability, a lower bound of the cost (no queueing) and a
 * necessary latency condition (a request waits at least the service of its batch). The survivors go
 * into a heap by cost; the heap's top is checked against the full latency model (counting matrices
 * on a grid over the window, cached per (shards, window)), its exact cost computed and re-queued. The
 * first checked, feasible configuration popped is optimal: every other one costs at least as much.
 * An origin configuration that fails with c replicas is re-queued with c + 1 unless even unbounded
 * servers miss the SLO (more replicas cannot help then).
 * Alternatives: the next cheapest feasible plans with another (placement, shards, pool size).
 */
import { type MarkovianArrival, nextArrivalPhaseMatrix, splitAcrossShards } from "./arrival";
import { type BatchSizeDistribution, batchSizeSweep } from "./batch-size";
import { type CostBreakdown, type CostOptions, type Placement, costPerHour } from "./cost-model";
import { countingGrid, countingMatrices } from "./counting-process";
import { DEFAULT_GRID_STEPS, latencyDistribution, latencyModel } from "./latency-model";
import { MinHeap } from "./min-heap";
import { DEFAULT_PRICES, type Prices } from "./prices";
import type { ServerSpec } from "./queueing";
import { type RequestWaitTable, windowWaitTables } from "./request-wait";
import { type ServiceSpec, serviceTable } from "./service-time";

/** How a placement serves: its service time per batch and a fixed overhead per batch (network), ms. */
export interface PlacementOption {
  service: ServiceSpec;
  /** Added to every request's latency, ms (e.g. the edge-origin round trip); default 0. */
  extraMs?: number;
}

/** The values searched; each list is tried in full. */
export interface SearchSpace {
  maxBatch: number[];
  windowMs: number[];
  shards: number[];
  poolSize: number[];
}

/** `count` windows spaced geometrically from minMs to maxMs, rounded to 0.01 ms. */
export function geometricWindows(minMs: number, maxMs: number, count: number): number[] {
  if (count === 1) return [minMs];
  return Array.from({ length: count }, (_, i) => Math.round(minMs * (maxMs / minMs) ** (i / (count - 1)) * 100) / 100);
}

/** The integers 1 .. max. */
export function upTo(max: number): number[] {
  return Array.from({ length: max }, (_, i) => i + 1);
}

/** The default search: maxBatch 1-64, 50 windows 1-500 ms, 1-16 shards, 1-64 origin replicas. */
export const DEFAULT_SEARCH_SPACE: SearchSpace = { maxBatch: upTo(64), windowMs: geometricWindows(1, 500, 50), shards: upTo(16), poolSize: upTo(64) };

/** Default cap on requests per second through one shard (a Durable Object's soft limit is ~1000/s). */
export const DEFAULT_MAX_REQUESTS_PER_S_PER_SHARD = 1000;

/** What to optimise. */
export interface OptimizeInput {
  arrival: MarkovianArrival;
  slo: { percentile: number; ms: number };
  /** The placements to consider; at least one. */
  placements: { edge?: PlacementOption; origin?: PlacementOption };
  space?: Partial<SearchSpace>;
  prices?: Prices;
  costOptions?: CostOptions;
  maxRequestsPerSPerShard?: number;
  /** How many alternatives to return; default 4. */
  alternatives?: number;
  gridSteps?: number;
}

/** A plan and its predictions. */
export interface Plan {
  placement: Placement;
  maxBatch: number;
  windowMs: number;
  shards: number;
  /** Origin replicas; 0 at the edge. */
  poolSize: number;
  latencyMs: { p50: number; p95: number; p99: number };
  /** The latency at the SLO's percentile, ms. */
  sloLatencyMs: number;
  meanBatch: number;
  /** Per-server utilisation (a shard's DO at the edge, a replica at the origin). */
  utilisation: number;
  cost: CostBreakdown;
}

/** The optimizer's answer. */
export interface OptimizeResult {
  /** The cheapest feasible plan, or null when none meets the SLO. */
  plan: Plan | null;
  alternatives: Plan[];
  /** Why there is no plan (when plan is null). */
  reason?: string;
  stats: { configurations: number; candidates: number; latencyChecks: number };
}

interface Candidate {
  placement: Placement;
  shards: number;
  windowIndex: number;
  maxBatch: number;
  poolSize: number;
  batches: BatchSizeDistribution;
  costUsdPerHour: number;
  isChecked: boolean;
  plan?: Plan;
}

/** Finds the cheapest plan meeting the SLO; see the module doc for the search. */
export function optimize(input: OptimizeInput): OptimizeResult {
  const space: SearchSpace = { ...DEFAULT_SEARCH_SPACE, ...input.space };
  const prices = input.prices ?? DEFAULT_PRICES;
  const steps = input.gridSteps ?? DEFAULT_GRID_STEPS;
  const { percentile: q, ms: sloMs } = input.slo;
  const placements = (["edge", "origin"] as const).filter((p) => input.placements[p]);
  const wantedAlternatives = input.alternatives ?? 4;
  const perShardCap = input.maxRequestsPerSPerShard ?? DEFAULT_MAX_REQUESTS_PER_S_PER_SHARD;
  const maxB = Math.max(...space.maxBatch);
  const levels = Math.max(1, maxB - 1);
  const pools = [...space.poolSize].sort((a, b) => a - b);
  const services = new Map(placements.map((p) => [p, serviceTable(input.placements[p]!.service, maxB)]));
  const serviceOrders = new Map(placements.map((p) => [p, sizesByServiceTime(services.get(p)!)]));
  const stats = { configurations: 0, candidates: 0, latencyChecks: 0 };
  const heap = new MinHeap<Candidate>((c) => c.costUsdPerHour);
  const perShardArrivals = new Map<number, MarkovianArrival>();

  const cost = (c: Omit<Candidate, "costUsdPerHour" | "isChecked">, meanServiceMs: number, meanInFlightMs: number): CostBreakdown =>
    costPerHour(
      { placement: c.placement, ratePerS: input.arrival.ratePerS, shards: c.shards, poolSize: c.poolSize, meanBatch: c.batches.meanBatch, meanOpenMs: c.batches.meanOpenMs, meanServiceMs, meanInFlightMs },
      prices,
      input.costOptions,
    );

  for (const shards of space.shards) {
    if (input.arrival.ratePerS / shards > perShardCap) continue;
    const perShard = splitAcrossShards(input.arrival, shards);
    perShardArrivals.set(shards, perShard);
    const nextPhase = nextArrivalPhaseMatrix(perShard);
    space.windowMs.forEach((windowMs, windowIndex) => {
      const sweep = batchSizeSweep(perShard, countingMatrices(perShard, windowMs / 1000, levels), nextPhase);
      for (const maxBatch of space.maxBatch) {
        const batches = sweep(maxBatch);
        for (const placement of placements) {
          stats.configurations += placement === "origin" ? pools.length : 1;
          const service = services.get(placement)!;
          const extraMs = input.placements[placement]!.extraMs ?? 0;
          let meanServiceMs = 0;
          batches.probs.forEach((p, i) => (meanServiceMs += p * service[i]!));
          if (latencyUpperBoundAt(batches, service, serviceOrders.get(placement)!, sloMs - extraMs) < q) continue;
          const load = (batches.batchRatePerS * meanServiceMs) / 1000; // busy servers per shard
          let poolSize = 0;
          if (placement === "edge" && load >= 1) continue;
          if (placement === "origin") {
            const needed = pools.find((c) => c > load * shards);
            if (needed === undefined) continue;
            poolSize = needed;
          }
          const base = { placement, shards, windowIndex, maxBatch, poolSize, batches };
          heap.push({ ...base, costUsdPerHour: cost(base, meanServiceMs, meanServiceMs + extraMs).totalUsdPerHour, isChecked: false });
          stats.candidates++;
        }
      }
    });
  }

  const windowTables = new Map<string, (batches: BatchSizeDistribution) => RequestWaitTable>();
  const tables = new Map<string, RequestWaitTable>();
  const tableFor = (c: Candidate): RequestWaitTable => {
    const key = `${c.shards}/${c.windowIndex}/${c.maxBatch}`;
    let table = tables.get(key);
    if (!table) {
      const windowKey = `${c.shards}/${c.windowIndex}`;
      let forWindow = windowTables.get(windowKey);
      if (!forWindow) {
        const perShard = perShardArrivals.get(c.shards)!;
        forWindow = windowWaitTables(perShard, countingGrid(perShard, space.windowMs[c.windowIndex]! / 1000, levels, steps));
        windowTables.set(windowKey, forWindow);
      }
      tables.set(key, (table = forWindow(c.batches)));
    }
    return table;
  };

  const found: Plan[] = [];
  const takenKeys = new Set<string>();
  while (heap.size > 0 && found.length < 1 + wantedAlternatives) {
    const c = heap.pop()!;
    const planKey = `${c.placement}/${c.shards}/${c.poolSize}`;
    if (takenKeys.has(planKey)) continue;
    if (c.isChecked) {
      found.push(c.plan!);
      takenKeys.add(planKey);
      continue;
    }
    stats.latencyChecks++;
    if (process.env.TRACE) console.log("check", c.placement, c.shards, c.poolSize, c.maxBatch, space.windowMs[c.windowIndex], c.costUsdPerHour.toFixed(6));
    const option = input.placements[c.placement]!;
    const servers: ServerSpec = c.placement === "edge" ? { kind: "fixed", count: 1, scope: "per-shard" } : { kind: "fixed", count: c.poolSize, scope: "shared" };
    const table = tableFor(c);
    const model = latencyModel(c.batches, table, { service: option.service, servers, extraMs: option.extraMs ?? 0 }, c.shards);
    if (model.isStable && model.distribution.cdf(sloMs) >= q) {
      const d = model.distribution;
      const inFlight = (model.queue?.meanWaitMs ?? 0) + model.stream.serviceMeanMs + (option.extraMs ?? 0);
      const exact = cost(c, model.stream.serviceMeanMs, inFlight);
      const plan: Plan = {
        placement: c.placement,
        maxBatch: c.maxBatch,
        windowMs: space.windowMs[c.windowIndex]!,
        shards: c.shards,
        poolSize: c.poolSize,
        latencyMs: { p50: d.percentile(0.5), p95: d.percentile(0.95), p99: d.percentile(0.99) },
        sloLatencyMs: d.percentile(q),
        meanBatch: c.batches.meanBatch,
        utilisation: model.utilisation,
        cost: exact,
      };
      heap.push({ ...c, costUsdPerHour: exact.totalUsdPerHour, isChecked: true, plan });
    } else if (c.placement === "origin") {
      const next = pools.find((p) => p > c.poolSize);
      const isHopeless = latencyDistribution(table, serviceTable(option.service, c.maxBatch), undefined, option.extraMs ?? 0).cdf(sloMs) < q;
      if (next !== undefined && !isHopeless) heap.push({ ...c, poolSize: next, costUsdPerHour: c.costUsdPerHour + (next - c.poolSize) * prices.origin.usdPerHour });
    }
  }
  const [plan, ...alternatives] = found;
  return {
    plan: plan ?? null,
    alternatives,
    ...(plan ? {} : { reason: `no configuration in the search space meets p${q * 100} <= ${sloMs} ms` }),
    stats,
  };
}

/** Batch sizes minus one, ordered by service time (it need not be monotone for tables). */
function sizesByServiceTime(service: Float64Array): number[] {
  return Array.from({ length: service.length }, (_, i) => i).sort((a, b) => service[a]! - service[b]!);
}

/**
 * An upper bound of P(latency <= xMs) from the batch sizes alone: a request waits at least the
 * service of its batch, and the opener of a batch released by the window also waits the window.
 */
function latencyUpperBoundAt(batches: BatchSizeDistribution, service: Float64Array, order: number[], xMs: number): number {
  let bound = 0;
  for (const i of order) {
    if (service[i]! > xMs) break;
    if (i >= batches.maxBatch) continue;
    bound += batches.taggedProbs[i]!;
    if (i < batches.maxBatch - 1 && batches.windowMs + service[i]! > xMs) bound -= batches.probs[i]! / batches.meanBatch;
  }
  return bound;
}
