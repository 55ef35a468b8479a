/**
 * The optimizer: the cheapest plan (placement, maxBatch, windowMs, shards, origin pool size) whose
 * chosen latency percentile meets the SLO, plus the next-best alternatives.
 *
 * Best-first search over every configuration. Batch size distributions depend only on (shards,
 * window, maxBatch) and come from one set of counting matrices per (shards, window) that covers
 * every maxBatch; they give, cheaply and exactly, the cost (including the queueing approximation's
 * mean wait, which sets how long a Durable Object stays active), stability, and a necessary latency
 * condition (a request waits at least its batch's service; a window's opener also waits the window).
 * Configurations are costed a group at a time, a group being one (placement, shards, window) with
 * every maxBatch: the queue starts with the groups under a lower bound of their cost (costLowerBound:
 * a window of T ms holds at most 1 + peak rate * T requests on average), and a group is costed when it
 * reaches the top, its configurations that pass the necessary condition going into the queue. So
 * the configurations come out in the same order as if all had been costed first, but groups dearer
 * than the plans found are never costed. A configuration at the top is checked against the full
 * latency model (counting matrices on a grid over the window, built once per (shards, window) for
 * all maxBatch); the first one that meets the SLO is optimal, since everything left costs at least
 * as much. An origin configuration that misses the SLO with c replicas is re-queued with the next
 * pool size unless even unbounded servers miss it (more replicas cannot help then).
 * Alternatives: the next cheapest feasible plans, each with another (placement, shards, pool size).
 * With a cost slack, the configurations costing at most (1 + costSlack) x the cheapest plan's are
 * then checked shortest window first, and the first with a lower latency takes the plan's place.
 */
import { type MarkovianArrival, peakRatePerS, splitAcrossShards } from "./arrival";
import { type BatchSizeDistribution, type BatchSizeSweep, type BatchSummary, batchSizeSweep } from "./batch-size";
import { Candidates } from "./candidates";
import { PLACEMENTS, type Placement } from "../models/manifest";
import { type CostBreakdown, type CostInput, type CostOptions, costLowerBound, costParts, costPerHour } from "./cost-model";
import { countingGrid, countingMatrices } from "./counting-process";
import { type LatencyModel, batchStream, batchStreamOf, defaultGridSteps, latencyModel } from "./latency-model";
import { latencyUpperBoundAt, sizesByServiceTime } from "./latency-upper-bound";
import { MinHeap } from "./min-heap";
import { DEFAULT_PRICES, type Prices } from "./prices";
import { type BatchStream, type Formation, type ServerSpec, meanQueueWaitMs } from "./queueing";
import { type WindowWaitTables, windowWaitTables } from "./request-wait";
import { type ServiceSpec, serviceLowerLine, serviceTable } from "./service-time";

/** How a placement serves: its service time per batch and a fixed overhead per batch (network), ms. */
export interface PlacementOption {
  service: ServiceSpec;
  /** Added to every request's latency, ms (e.g. the edge-origin round trip); default 0. */
  extraMs?: number;
  /** Edge placements: the front door runs on the buffer's thread (ServerSpec sharedThread); default false. */
  sharedThread?: boolean;
  /** Edge placements: of a batch's service, what answering each request in turn takes (ServerSpec answerMsPerRow), ms; default 0. */
  answerMsPerRow?: number;
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

/**
 * Cap on the grid steps per window while screening (see defaultGridSteps). A configuration that
 * passes the screen is checked again, and its percentiles computed, on the full default grid.
 */
export const OPTIMIZER_MAX_GRID_STEPS = 32;

/**
 * Grid cells over T + s(B) of the fixed-server screen; the full solve uses 48. Over the speed
 * benchmark's searches the screen's percentile came out within -0.015 .. +0.022 (T + s(B)) of the
 * full solve's, and most configurations that reach this stage lie within a few per cent of the SLO,
 * so the screen decides (percentile <= SLO) and the full solve confirms the ones it passes (and
 * gives the reported percentiles). A configuration that the screen puts just above the SLO but the
 * full solve just below is missed: the plan then costs a little more than it could.
 */
export const SCREEN_CELLS_PER_SCALE = 24;

/** What to optimise. */
export interface OptimizeInput {
  arrival: MarkovianArrival;
  slo: { percentile: number; ms: number };
  /**
   * The placements to consider; at least one. "direct" is searched at shards 1 only: the Worker
   * isolate batches the requests that meet in it on its one session, as a buffer shard does, with
   * no Durable Object (no hop, no shard cap).
   */
  placements: Partial<Record<Placement, PlacementOption>>;
  space?: Partial<SearchSpace>;
  prices?: Prices;
  costOptions?: CostOptions;
  maxRequestsPerSPerShard?: number;
  /** How many alternatives to return; default 4. */
  alternatives?: number;
  /** Grid steps over each window; default defaultGridSteps(), capped at OPTIMIZER_MAX_GRID_STEPS while screening. */
  gridSteps?: number;
  /** Per-request latency outside the batch servers (parsing, hops), ms, added to every placement; default 0. */
  overheadMs?: number;
  /** How the origin pool forms batches; default "lazy" (the edge's Durable Objects are always lazy). */
  originFormation?: Formation;
  /**
   * Most fixed-server solutions to compute (screen and full); default unbounded. Near saturation a
   * solution can take a second, so a caller with a time budget (the online controller) bounds the
   * search: when the budget runs out, the plans found so far are returned (none: plan is null).
   */
  maxFixedSolves?: number;
  /**
   * Grid operations the fixed-server solutions may spend in all (FixedServerInput.budget); default
   * unbounded. One solution near saturation, or under a slowly switching MMPP, can cost seconds on
   * its own, which a count of solutions does not bound: a caller with a time budget (the online
   * controller) gives this too. Each solution may spend at most half of what is left; one cut short
   * counts as not meeting the SLO, and the search goes on with the rest.
   */
  workBudget?: number;
  /**
   * Highest busy fraction a plan may give a server (a shard's DO at the edge, a replica at the
   * origin), from the sealed batch stream; default 1 (only stability). Below 1 it keeps headroom
   * for noise and skips the near-saturation solutions, the slowest to compute.
   */
  maxUtilisation?: number;
  /**
   * How much more than the cheapest plan (a fraction of its cost) a plan may cost to lower the
   * latency at the SLO's percentile: of the configurations within it, the shortest window (then the
   * smallest maxBatch) that meets the SLO with a lower latency is the plan; default 0 (the cheapest).
   * The alternatives stay the next cheapest with another (placement, shards, pool size).
   */
  costSlack?: number;
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
  /** The cheapest feasible plan (or, with costSlack, the lower-latency one within it), or null when none meets the SLO. */
  plan: Plan | null;
  alternatives: Plan[];
  /** Why there is no plan (when plan is null). */
  reason?: string;
  /**
   * configurations: size of the search space; candidates: configurations costed (those of the groups
   * the search reached) that pass the cheap checks; latencyChecks: configurations checked against the
   * latency model; fixedSolves: fixed-server solutions computed (screen and full); fixedReused: those
   * taken from another maxBatch of the same group whose batches never reach either maxBatch;
   * cutShort: solutions stopped by the work budget; workUnits: the grid operations the solutions
   * spent (what workBudget bounds).
   */
  stats: { configurations: number; candidates: number; latencyChecks: number; fixedSolves: number; fixedReused: number; cutShort: number; workUnits: number };
}


/** Finds the cheapest plan meeting the SLO; see the module doc for the search. */
export function optimize(input: OptimizeInput): OptimizeResult {
  const space: SearchSpace = { ...DEFAULT_SEARCH_SPACE, ...input.space };
  const prices = input.prices ?? DEFAULT_PRICES;
  const { percentile: q, ms: sloMs } = input.slo;
  const placements = PLACEMENTS.filter((p) => input.placements[p]);
  const perShardCap = input.maxRequestsPerSPerShard ?? DEFAULT_MAX_REQUESTS_PER_S_PER_SHARD;
  const maxUtilisation = input.maxUtilisation ?? 1;
  const largestBatch = Math.max(...space.maxBatch);
  const levels = Math.max(1, largestBatch - 1);
  const pools = [...space.poolSize].sort((a, b) => a - b);
  const services = PLACEMENTS.map((p) => (input.placements[p] ? serviceTable(input.placements[p].service, levels + 1) : new Float64Array(0)));
  const serviceOrders = services.map(sizesByServiceTime);
  const extras = PLACEMENTS.map((p) => (input.placements[p]?.extraMs ?? 0) + (input.overheadMs ?? 0));
  const ORIGIN = PLACEMENTS.indexOf("origin");
  const DIRECT = PLACEMENTS.indexOf("direct");
  const stats = { configurations: 0, candidates: 0, latencyChecks: 0, fixedSolves: 0, fixedReused: 0, cutShort: 0, workUnits: 0 };
  const perShardArrivals = new Map<number, MarkovianArrival>();
  const sweeps = new Map<string, BatchSizeSweep>();
  const candidates = new Candidates();
  const heap = new MinHeap(candidates.isBefore);
  const probs = new Float64Array(levels + 1);

  /** The cost input of a configuration with its queueing; undefined when unstable. */
  const costInputOf = (placement: number, shards: number, poolSize: number, batches: BatchSummary, stream: BatchStream): CostInput | undefined => {
    const waitMs = placement !== ORIGIN ? meanQueueWaitMs(stream, 1, 1) : meanQueueWaitMs(stream, shards, poolSize);
    if (!Number.isFinite(waitMs)) return undefined;
    return {
      placement: PLACEMENTS[placement]!,
      ratePerS: input.arrival.ratePerS,
      shards,
      poolSize,
      meanBatch: batches.meanBatch,
      meanOpenMs: batches.meanOpenMs,
      meanServiceMs: stream.serviceMeanMs,
      meanInFlightMs: waitMs + stream.serviceMeanMs + extras[placement]!,
    };
  };
  const totalCost = (costInput: CostInput | undefined): number | undefined => (costInput ? costParts(costInput, prices, input.costOptions) : undefined);

  // The groups, under a lower bound of their cost.
  const peakPerS = peakRatePerS(input.arrival);
  const serviceLines = services.map((service) => (service.length > 0 ? serviceLowerLine(service) : { baseMs: 0, perItemMs: 0 }));
  for (const shards of space.shards) {
    stats.configurations += placements.reduce((s, p) => s + (p === "direct" && shards !== 1 ? 0 : space.maxBatch.length * space.windowMs.length * (p === "origin" ? pools.length : 1)), 0);
    // A Durable Object takes about perShardCap requests/s; direct plans have no Durable Object.
    const isOverShardCap = input.arrival.ratePerS / shards > perShardCap;
    if (isOverShardCap && !(input.placements.direct && shards === 1)) continue;
    const perShard = splitAcrossShards(input.arrival, shards);
    perShardArrivals.set(shards, perShard);
    space.windowMs.forEach((windowMs, windowIndex) => {
      const maxMeanBatch = Math.min(largestBatch, 1 + (peakPerS / shards) * (windowMs / 1000));
      for (let placement = 0; placement < PLACEMENTS.length; placement++) {
        if (!input.placements[PLACEMENTS[placement]!]) continue;
        if (placement === DIRECT ? shards !== 1 : isOverShardCap) continue;
        const { baseMs, perItemMs } = serviceLines[placement]!;
        // Busy replicas: rate * E[s(K)] / E[K] (ms -> s), at least this (lowered for rounding).
        const minBusy = ((input.arrival.ratePerS * (baseMs / maxMeanBatch + perItemMs)) / 1000) * (1 - 1e-9);
        const poolSize = placement === ORIGIN ? smallestAbove(pools, minBusy) : 0;
        if (poolSize === undefined) continue;
        const bound = costLowerBound(
          { placement: PLACEMENTS[placement]!, ratePerS: input.arrival.ratePerS, shards, poolSize, maxMeanBatch, serviceBaseMs: baseMs, servicePerItemMs: perItemMs, extraMs: extras[placement]! },
          prices,
          input.costOptions,
        );
        heap.push(candidates.addGroup(bound, placement, shards, windowIndex));
      }
    });
  }

  /** Costs the configurations of a group and queues those that pass the necessary latency condition. */
  const expand = (placement: number, shards: number, windowIndex: number): void => {
    const key = `${shards}/${windowIndex}`;
    const windowMs = space.windowMs[windowIndex]!;
    let sweep = sweeps.get(key);
    if (!sweep) {
      const perShard = perShardArrivals.get(shards)!;
      sweeps.set(key, (sweep = batchSizeSweep(perShard, countingMatrices(perShard, windowMs / 1000, levels))));
    }
    const service = services[placement]!;
    for (const maxBatch of space.maxBatch) {
      const batches = sweep.summarise(maxBatch, probs);
      if (latencyUpperBoundAt(probs, batches.meanBatch, maxBatch, windowMs, service, serviceOrders[placement]!, sloMs - extras[placement]!) < q) continue;
      const stream = batchStreamOf(batches, probs, maxBatch, service);
      const busyPerShard = (stream.batchRatePerS * stream.serviceMeanMs) / 1000;
      if (placement !== ORIGIN && busyPerShard >= maxUtilisation) continue;
      const poolSize = placement === ORIGIN ? smallestAbove(pools, (busyPerShard * shards) / maxUtilisation) : 0;
      if (poolSize === undefined) continue;
      const cost = totalCost(costInputOf(placement, shards, poolSize, batches, stream));
      if (cost === undefined) continue;
      heap.push(candidates.add(cost, placement, shards, windowIndex, maxBatch, poolSize));
      stats.candidates++;
    }
  };

  // Screening tables per (shards, window), on grids with levels for the largest maxBatch checked so
  // far (counting matrices of lower levels do not depend on how many levels are kept), doubled when
  // a larger one comes.
  const windowTables = new Map<string, { levels: number; tables: WindowWaitTables }>();
  const tablesFor = (shards: number, windowIndex: number, maxBatch: number): WindowWaitTables => {
    const key = `${shards}/${windowIndex}`;
    const cached = windowTables.get(key);
    if (cached && cached.levels >= maxBatch - 1) return cached.tables;
    const tableLevels = Math.min(levels, Math.max(1, maxBatch - 1, 2 * (cached?.levels ?? 0)));
    const perShard = perShardArrivals.get(shards)!;
    const windowMs = space.windowMs[windowIndex]!;
    const steps = input.gridSteps ?? defaultGridSteps(perShard, windowMs, OPTIMIZER_MAX_GRID_STEPS);
    const tables = windowWaitTables(perShard, countingGrid(perShard, windowMs / 1000, tableLevels, steps));
    windowTables.set(key, { levels: tableLevels, tables });
    return tables;
  };
  const offsets = services.map((service, p) => service.map((s) => s + extras[p]!));

  /**
   * The fixed-server model of a configuration, reusing one with another maxBatch of the same
   * (placement, shards, window, pool) when no batch of either reaches the smaller maxBatch: the
   * dynamics, hence the solution, are then the same. "Never" is up to `tolerance` of the batches:
   * 1e-9 for the full solve; 1e-4 for the screen (a CDF that moves by about that much cannot flip
   * a decision the full solve then checks, except at a tie with the SLO).
   */
  const solvedFixed = new Map<string, { maxBatch: number; model: LatencyModel }[]>();
  const solveFixed = (key: string, placement: number, batches: BatchSizeDistribution, modelInput: Parameters<typeof latencyModel>[2], shards: number, tolerance: number): LatencyModel => {
    const B = batches.maxBatch;
    const list = solvedFixed.get(key) ?? [];
    for (const entry of list) {
      const probs = entry.model.fixed?.batchSizeProbs;
      if (!probs || !entry.model.isStable) continue;
      let tail = 0;
      for (let k = Math.min(B, entry.maxBatch); k <= entry.maxBatch; k++) tail += probs[k - 1]!;
      if (tail < tolerance) {
        stats.fixedReused++;
        return { ...entry.model, stream: batchStream(batches, services[placement]!.subarray(0, B)) };
      }
    }
    stats.fixedSolves++;
    // One solve may spend at most half of what is left of the budget: one cut short (the slowest
    // to solve are near saturation) counts as not meeting the SLO and leaves the rest to the others.
    const share = modelInput.budget && { limit: modelInput.budget.spent + (modelInput.budget.limit - modelInput.budget.spent) / 2, spent: modelInput.budget.spent };
    const model = latencyModel(batches, undefined, { ...modelInput, ...(share && { budget: share }) }, shards);
    if (share) {
      if (share.spent > share.limit) stats.cutShort++;
      modelInput.budget!.spent = share.spent;
    }
    list.push({ maxBatch: B, model });
    solvedFixed.set(key, list);
    return model;
  };

  /**
   * Checks the configuration at queue index `i` against the full latency model: its plan when it
   * meets the SLO, and (for the origin's next pool size) the CDF with unbounded servers.
   */
  const check = (i: number): { plan?: Plan; unqueuedCdf: number; batches: BatchSizeDistribution } => {
    const [placement, shards, windowIndex, maxBatch, poolSize] = [candidates.placement[i]!, candidates.shards[i]!, candidates.windowIndex[i]!, candidates.maxBatch[i]!, candidates.poolSize[i]!];
    stats.latencyChecks++;
    const option = input.placements[PLACEMENTS[placement]!]!;
    const servers: ServerSpec =
      placement !== ORIGIN ? { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy", ...(option.sharedThread && { sharedThread: true }), ...(option.answerMsPerRow && { answerMsPerRow: option.answerMsPerRow }) } : { kind: "fixed", count: poolSize, scope: "shared", formation: input.originFormation ?? "lazy" };
    const batches = sweeps.get(`${shards}/${windowIndex}`)!(maxBatch);
    const tables = tablesFor(shards, windowIndex, maxBatch);
    // Waiting for a server only delays requests, so the CDF with fixed servers is at most the one
    // with unbounded servers (up to rounding, and up to the few requests that lazy formation puts in
    // a batch that starts earlier than its sealed counterpart): a clear miss here is a miss, and more
    // replicas cannot help. Configurations that pass are solved on their fixed servers.
    const unqueuedCdf = tables.latencyCdfAt(batches, offsets[placement]!, sloMs);
    const modelInput = { arrival: input.arrival, service: option.service, servers, extraMs: extras[placement]!, budget };
    // A solve on half the grid cells screens the configuration before the full one.
    const groupKey = `${placement}/${shards}/${windowIndex}/${poolSize}`;
    const coarse = unqueuedCdf >= q - 1e-6 ? solveFixed(`${groupKey}/screen`, placement, batches, { ...modelInput, cellsPerScale: SCREEN_CELLS_PER_SCALE }, shards, 1e-4) : undefined;
    const isPassingScreen = coarse !== undefined && coarse.isStable && coarse.distribution.cdf(sloMs) >= q;
    const model = isPassingScreen ? solveFixed(groupKey, placement, batches, modelInput, shards, 1e-9) : undefined;
    if (!model || model.distribution.cdf(sloMs) < q) return { unqueuedCdf, batches };
    const d = model.distribution;
    const plan: Plan = {
      placement: PLACEMENTS[placement]!,
      maxBatch,
      windowMs: space.windowMs[windowIndex]!,
      shards,
      poolSize,
      latencyMs: { p50: d.percentile(0.5), p95: d.percentile(0.95), p99: d.percentile(0.99) },
      sloLatencyMs: d.percentile(q),
      meanBatch: model.fixed?.meanBatch ?? batches.meanBatch,
      utilisation: model.utilisation,
      cost: costPerHour(costInputOf(placement, shards, poolSize, batches, model.stream)!, prices, input.costOptions),
    };
    return { plan, unqueuedCdf, batches };
  };
  /** A plan's (placement, shards, pool size): one plan each. */
  const planKey = (placement: number, shards: number, poolSize: number) => `${placement}/${shards}/${poolSize}`;
  const keyOf = (i: number) => planKey(candidates.placement[i]!, candidates.shards[i]!, candidates.poolSize[i]!);

  const found: Plan[] = [];
  const takenKeys = new Set<string>();
  const wanted = 1 + (input.alternatives ?? 4);
  const maxFixedSolves = input.maxFixedSolves ?? Infinity;
  const budget = { limit: input.workBudget ?? Infinity, spent: 0 };
  const isOverBudget = () => budget.spent > budget.limit;
  const isSearching = () => heap.size > 0 && stats.fixedSolves < maxFixedSolves && !isOverBudget();
  /** The cheapest plan's cost in the queue, and the entries passed over after it (their key had a plan): the cost slack's. */
  let cheapestCost = Infinity;
  const passedOver: number[] = [];
  while (isSearching() && found.length < wanted) {
    const i = heap.pop()!;
    // A group or configuration whose (placement, shards, pool) already has a plan is passed over
    // (an edge group's configurations all have its key).
    if (takenKeys.has(keyOf(i))) {
      passedOver.push(i);
      continue;
    }
    if (candidates.isGroup[i]) {
      expand(candidates.placement[i]!, candidates.shards[i]!, candidates.windowIndex[i]!);
      continue;
    }
    const { plan, unqueuedCdf, batches } = check(i);
    if (plan) {
      if (found.length === 0) cheapestCost = candidates.cost[i]!;
      found.push(plan);
      takenKeys.add(keyOf(i));
    } else if (candidates.placement[i] === ORIGIN) {
      const [shards, windowIndex, maxBatch, poolSize] = [candidates.shards[i]!, candidates.windowIndex[i]!, candidates.maxBatch[i]!, candidates.poolSize[i]!];
      const next = smallestAbove(pools, poolSize);
      const cost = next === undefined || unqueuedCdf < q ? undefined : totalCost(costInputOf(ORIGIN, shards, next, batches, batchStream(batches, services[ORIGIN]!.subarray(0, maxBatch))));
      if (cost !== undefined) heap.push(candidates.add(cost, ORIGIN, shards, windowIndex, maxBatch, next!));
    }
  }
  // Latency first within the cost slack: of the configurations costing at most (1 + costSlack) x
  // the cheapest plan's, the one with the shortest window (then smallest maxBatch) that meets the SLO
  // with a lower latency at its percentile replaces it (a window that saves 2 % of the cost can
  // cost a light load 100 ms). They are checked in that order, so the first that qualifies is taken.
  const costSlack = input.costSlack ?? 0;
  if (found.length > 0 && costSlack > 0) {
    const limit = cheapestCost * (1 + costSlack);
    const cheapest = found[0]!;
    const windowOf = (i: number) => space.windowMs[candidates.windowIndex[i]!]!;
    const isShorter = (i: number) => windowOf(i) < cheapest.windowMs || (windowOf(i) === cheapest.windowMs && candidates.maxBatch[i]! < cheapest.maxBatch);
    const band: number[] = [];
    const take = (i: number) => {
      if (candidates.cost[i]! > limit) return;
      if (!candidates.isGroup[i]) band.push(i);
      else if (windowOf(i) <= cheapest.windowMs) expand(candidates.placement[i]!, candidates.shards[i]!, candidates.windowIndex[i]!);
    };
    passedOver.forEach(take);
    while (isSearching() && candidates.cost[heap.peek()!]! <= limit) take(heap.pop()!);
    band.sort((a, b) => windowOf(a) - windowOf(b) || candidates.maxBatch[a]! - candidates.maxBatch[b]!);
    for (const i of band.filter(isShorter)) {
      if (stats.fixedSolves >= maxFixedSolves || isOverBudget()) break;
      const { plan } = check(i);
      if (plan && plan.sloLatencyMs < cheapest.sloLatencyMs) {
        const key = keyOf(i);
        found.splice(0, found.length, plan, ...found.slice(1).filter((p) => planKey(PLACEMENTS.indexOf(p.placement), p.shards, p.poolSize) !== key));
        break;
      }
    }
  }
  const [plan, ...alternatives] = found;
  stats.workUnits = budget.spent;
  return {
    plan: plan ?? null,
    alternatives,
    ...(plan ? {} : { reason: stats.fixedSolves >= maxFixedSolves ? `the search stopped after ${maxFixedSolves} fixed-server solutions without a plan` : stats.cutShort > 0 ? `no configuration solved within the work budget (${input.workBudget} grid operations, ${stats.cutShort} solution(s) cut short) meets p${Math.round(q * 1000) / 10} <= ${sloMs} ms` : `no configuration in the search space meets p${Math.round(q * 1000) / 10} <= ${sloMs} ms` }),
    stats,
  };
}

/** The smallest value of a sorted list above x, or undefined. */
function smallestAbove(sorted: number[], x: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return sorted[lo];
}
