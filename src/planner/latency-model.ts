/**
 * Request latency = wait in the buffer + queueing delay of its batch + service of its batch
 * (+ a fixed time outside the servers: `extraMs`, e.g. the edge-origin round trip or a problem's
 * overheadMs).
 *
 * Unbounded servers: exact, F(x) = sum_k P(W <= x - s(k), K = k) from the request-wait table, with
 * percentiles by bisection on F (the smallest x with F(x) >= q).
 * Fixed servers: fixed-servers.ts, a Markov chain embedded at batch heads (the server-free time
 * seen by the oldest request of each batch, and the MAP phase), solved on a time grid, for sealed
 * and lazy formation; see that module for the method and its limits.
 */
import { type MarkovianArrival, splitAcrossShards } from "./arrival";
import { type BatchSizeDistribution, type BatchSummary, batchSizeDistribution } from "./batch-size";
import { countingGrid, countingMatrices } from "./counting-process";
import { type FixedServerInput, type FixedServerModel, fixedServerLatency } from "./fixed-servers";
import type { QueueDelay, ServerSpec, BatchStream } from "./queueing";
import { type RequestWaitTable, jointWaitCdf, requestWaitTable, segment as segmentIntegral, waitCdf } from "./request-wait";
import { type ServiceSpec, serviceTable } from "./service-time";

/**
 * Grid steps over the window for the request-wait table: enough for about 1/8 arrival per step
 * (theta = the per-shard MAP's largest phase exit rate), between 32 and maxSteps (default 256;
 * 1024 for Poisson, whose grid is in closed form and cheap).
 */
export function defaultGridSteps(perShard: MarkovianArrival, windowMs: number, maxSteps = perShard.phases === 1 ? 1024 : 256): number {
  let theta = 0;
  for (let i = 0; i < perShard.phases; i++) theta = Math.max(theta, -perShard.d0.data[i * perShard.phases + i]!);
  return Math.min(maxSteps, Math.max(32, Math.ceil((8 * theta * windowMs) / 1000)));
}

/** The latency distribution of a request for one configuration. */
export interface LatencyDistribution {
  /** P(latency <= xMs). */
  cdf(xMs: number): number;
  /** The smallest latency (ms) x with P(latency <= x) >= q, q in (0, 1); Infinity when unstable. */
  percentile(q: number): number;
}

/** Moments of the batch stream of one buffer, for the queueing approximation. */
export function batchStream(batches: BatchSizeDistribution, serviceByBatchMs: Float64Array): BatchStream {
  let serviceMeanMs = 0;
  let serviceSecondMomentMs2 = 0;
  batches.probs.forEach((p, i) => {
    serviceMeanMs += p * serviceByBatchMs[i]!;
    serviceSecondMomentMs2 += p * serviceByBatchMs[i]! ** 2;
  });
  const interReleaseMeanMs = batches.meanIdleMs + batches.meanOpenMs;
  const interReleaseSecondMomentMs2 = batches.idleSecondMomentMs2 + batches.openSecondMomentMs2 + 2 * batches.meanIdleMs * batches.meanOpenMs;
  return { batchRatePerS: batches.batchRatePerS, interReleaseMeanMs, interReleaseSecondMomentMs2, serviceMeanMs, serviceSecondMomentMs2 };
}

/**
 * The same as batchStream from a batch summary and its size probabilities (probs[k - 1] = P(size = k),
 * k <= maxBatch), as the optimizer's fast path has them.
 */
export function batchStreamOf(batches: BatchSummary, probs: Float64Array, maxBatch: number, service: Float64Array): BatchStream {
  let serviceMeanMs = 0;
  let serviceSecondMomentMs2 = 0;
  for (let i = 0; i < maxBatch; i++) {
    serviceMeanMs += probs[i]! * service[i]!;
    serviceSecondMomentMs2 += probs[i]! * service[i]! ** 2;
  }
  return {
    batchRatePerS: batches.batchRatePerS,
    interReleaseMeanMs: batches.meanIdleMs + batches.meanOpenMs,
    interReleaseSecondMomentMs2: batches.idleSecondMomentMs2 + batches.openSecondMomentMs2 + 2 * batches.meanIdleMs * batches.meanOpenMs,
    serviceMeanMs,
    serviceSecondMomentMs2,
  };
}

/** Builds the latency distribution from a request-wait table, s(k) for k = 1..B, and the queue. */
export function latencyDistribution(table: RequestWaitTable, serviceByBatchMs: Float64Array, queue?: QueueDelay, extraMs = 0): LatencyDistribution {
  const B = table.maxBatch;
  const offsets = Float64Array.from({ length: B }, (_, i) => serviceByBatchMs[i]! + extraMs);
  const minMs = Math.min(...offsets);
  const maxMs = Math.max(...offsets) + table.windowMs;
  if (queue && !queue.isStable) return { cdf: () => 0, percentile: () => Infinity };
  const waitProb = queue ? queue.waitProb : 0;
  const convolved = waitProb > 0 ? exponentialSmoothing(table, queue!.decayPerMs) : undefined;
  const cdf = (xMs: number): number => {
    let direct = 0;
    let delayed = 0;
    for (let k = 1; k <= B; k++) {
      const y = xMs - offsets[k - 1]!;
      if (waitProb < 1) direct += jointWaitCdf(table, k, y);
      if (convolved) delayed += convolved(k, y);
    }
    return Math.min(1, (1 - waitProb) * direct + waitProb * delayed);
  };
  const percentile = (q: number): number => {
    let lo = minMs - 1e-9;
    let hi = maxMs;
    if (convolved) while (cdf(hi) < q) hi += Math.max(hi, 1);
    for (let it = 0; it < 100 && hi - lo > 1e-9 * Math.max(1, hi); it++) {
      const mid = (lo + hi) / 2;
      if (cdf(mid) >= q) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  return { cdf, percentile };
}

/**
 * Phi_k(z) = int_{-inf}^{z} P(W <= y, K = k) eta e^(-eta (z - y)) dy, exact for the table's
 * piecewise-linear values: precomputed at the grid points, then one partial segment per call.
 */
function exponentialSmoothing(table: RequestWaitTable, eta: number): (size: number, zMs: number) => number {
  const { steps, stepMs, values, windowMs, taggedProbs } = table;
  const width = steps + 1;
  const decay = Math.exp(-eta * stepMs);
  const segment = (v0: number, v1: number, len: number): number => segmentIntegral(v0, v1, len, eta);
  const atGrid = new Float64Array(values.length);
  for (let k = 0; k < table.maxBatch; k++)
    for (let i = 1; i < width; i++) {
      const o = k * width + i;
      atGrid[o] = decay * atGrid[o - 1]! + segment(values[o - 1]!, values[o]!, stepMs);
    }
  return (size, zMs) => {
    if (zMs < 0) return 0;
    const o = (size - 1) * width;
    if (zMs >= windowMs) {
      const e = Math.exp(-eta * (zMs - windowMs));
      return e * atGrid[o + steps]! + (1 - e) * taggedProbs[size - 1]!;
    }
    const i = Math.min(Math.floor(zMs / stepMs), steps - 1);
    const len = zMs - i * stepMs;
    const vz = values[o + i]! + ((values[o + i + 1]! - values[o + i]!) * len) / stepMs;
    return Math.exp(-eta * len) * atGrid[o + i]! + segment(values[o + i]!, vz, len);
  };
}

/** One configuration to evaluate. */
export interface LatencyInput {
  /** Arrivals to the whole model (all shards). */
  arrival: MarkovianArrival;
  service: ServiceSpec;
  servers: ServerSpec;
  maxBatch: number;
  windowMs: number;
  /** Buffers the arrivals are split across (uniformly at random); default 1. */
  shards?: number;
  /** Fixed time added to every request outside the servers (e.g. network), ms; default 0. */
  extraMs?: number;
  /** Grid steps over the window; default defaultGridSteps(). */
  gridSteps?: number;
}

/** The model's prediction for one configuration. */
export interface LatencyEstimate {
  maxBatch: number;
  windowMs: number;
  shards: number;
  latencyMs: { p50: number; p95: number; p99: number };
  meanBatch: number;
  /** batchSizeProbs[k - 1] = P(batch size = k). */
  batchSizeProbs: number[];
  /** Mean wait in the buffer, ms (trapezoid rule on the table's grid); NaN for fixed servers. */
  meanBufferWaitMs: number;
  /** Mean request latency, ms: buffer wait + queueing + service of its batch + extraMs. */
  meanLatencyMs: number;
  /** Per-server utilisation (busy fraction); for unbounded servers the mean number of busy batches. */
  utilisation: number;
  isStable: boolean;
  /** Unused since fixed servers are solved by fixed-servers.ts (kept for the API's shape). */
  queue?: QueueDelay;
  distribution: LatencyDistribution;
  /** The sealed batch size distribution of one shard's buffer (lazy batches: meanBatch, batchSizeProbs). */
  batches: BatchSizeDistribution;
  /** The fixed-server solution (grid, iterations, truncated mass), for fixed servers. */
  fixed?: FixedServerModel;
}

/** Evaluates one configuration: batch sizes, queueing and latency percentiles. */
export function estimateLatency(input: LatencyInput): LatencyEstimate {
  const shards = input.shards ?? 1;
  const perShard = splitAcrossShards(input.arrival, shards);
  const levels = Math.max(1, input.maxBatch - 1);
  const batches = batchSizeDistribution(perShard, countingMatrices(perShard, input.windowMs / 1000, levels), input.maxBatch);
  if (input.servers.kind === "fixed") return estimateFixed(batches, input, shards);
  return estimateFromTable(batches, shardWaitTable(perShard, batches, input.gridSteps), input, shards);
}

/** A shard's request-wait table for its sealed batches, on a grid of `steps` over the window (default defaultGridSteps). */
export function shardWaitTable(perShard: MarkovianArrival, batches: BatchSizeDistribution, steps = defaultGridSteps(perShard, batches.windowMs)): RequestWaitTable {
  return requestWaitTable(perShard, countingGrid(perShard, batches.windowMs / 1000, Math.max(1, batches.maxBatch - 1), steps), batches);
}

/** A fixed-server queue of a configuration, with the utilisation of each server of its pool. */
export interface FixedQueue {
  model: FixedServerModel;
  /** Busy fraction per server, counting every shard that shares the servers. */
  utilisation: number;
}

/**
 * Solves the fixed-server queue of a configuration (fixed-servers.ts): lazy + per-shard and sealed +
 * per-shard are one shard's queue on its `count` servers; lazy + shared is one queue of all requests
 * on the pool; sealed + shared is every shard's batches on the pool (sharedSealedPool). `sealed` is
 * the shards' sealed batch distribution (for that load).
 */
export function fixedQueue(arrival: MarkovianArrival, servers: Extract<ServerSpec, { kind: "fixed" }>, service: ServiceSpec, maxBatch: number, windowMs: number, shards: number, extraMs: number, sealed: BatchSizeDistribution, solve: Pick<FixedServerInput, "cellsPerScale" | "budget"> = {}): FixedQueue {
  const formation = servers.formation ?? "sealed";
  const isShared = (servers.scope ?? "shared") === "shared";
  const table = serviceTable(service, maxBatch);
  const common = { service: table, maxBatch, windowMs, servers: servers.count, formation, extraMs, ...(servers.sharedThread && { sharedThread: true }), ...(servers.answerMsPerRow && { answerMsPerRow: servers.answerMsPerRow }), ...(solve.cellsPerScale ? { cellsPerScale: solve.cellsPerScale } : {}), ...(solve.budget && { budget: solve.budget }) };
  if (formation === "lazy" && isShared) {
    const model = fixedServerLatency({ ...common, arrival });
    return { model, utilisation: model.utilisation };
  }
  const perShard = splitAcrossShards(arrival, shards);
  if (!isShared || shards === 1) {
    const model = fixedServerLatency({ ...common, arrival: perShard });
    return { model, utilisation: model.utilisation };
  }
  let meanService = 0;
  sealed.probs.forEach((p, k) => (meanService += p * table[k]!));
  const perShardLoad = (sealed.batchRatePerS * meanService) / 1000 / servers.count;
  return { model: sharedSealedPool(arrival, perShard, table, sealed, servers.count, extraMs, solve), utilisation: shards * perShardLoad };
}

/**
 * A pool of `count` servers shared by sealed shards. The pool queues every shard's batches; their
 * stream is approximated by one virtual shard that takes all the arrivals, with the same maxBatch
 * and the window shortened until its batches are as large on average as a shard's, so that bursts
 * reach the pool merged into batches as they do from the shards (sealed formation, cyclic
 * assignment: fixed-servers.ts). A request's latency is its own shard's (its window and its batch's
 * service: the unbounded-server model, exact) plus its batch's wait for a server after release, from
 * the virtual shard's queue, taken as independent of the rest. Requests answered in turn
 * (answerMsPerRow) are counted as done at their batch's end here (a little late).
 */
function sharedSealedPool(arrival: MarkovianArrival, perShard: MarkovianArrival, table: Float64Array, sealed: BatchSizeDistribution, count: number, extraMs: number, solve: Pick<FixedServerInput, "cellsPerScale" | "budget">): FixedServerModel {
  const { maxBatch: B, windowMs } = sealed;
  const levels = Math.max(1, B - 1);
  let virtualWindowMs = windowMs;
  if (B > 1 && windowMs > 0) {
    const meanBatchAt = (ms: number) => batchSizeDistribution(arrival, countingMatrices(arrival, ms / 1000, levels), B).meanBatch;
    let lo = 0;
    for (let it = 0; it < 24 && virtualWindowMs - lo > 1e-3 * windowMs; it++) {
      const mid = (lo + virtualWindowMs) / 2;
      if (meanBatchAt(mid) >= sealed.meanBatch) virtualWindowMs = mid;
      else lo = mid;
    }
  }
  const pool = fixedServerLatency({ arrival, service: table, maxBatch: B, windowMs: virtualWindowMs, servers: count, formation: "sealed", ...solve });
  if (!pool.isStable || !pool.releaseWaitCdf) return pool;
  // The request's own latency on a grid of half the pool's step, convolved with the wait's masses
  // (on the pool's grid points): the latency's CDF at the grid's points, then extraMs on top.
  const own = latencyDistribution(shardWaitTable(perShard, sealed), table);
  const step = pool.stepMs / 2;
  const ownPoints = Math.ceil((Math.max(...table) + windowMs) / step) + 2;
  const ownCdf = Float64Array.from({ length: ownPoints }, (_, i) => own.cdf(i * step));
  const cdfAt = new Float64Array(ownPoints + 2 * pool.cells + 2);
  let meanWaitMs = 0;
  for (let i = 0, before = 0; i <= pool.cells; i++) {
    const at = pool.releaseWaitCdf(i * pool.stepMs);
    const mass = at - before;
    before = at;
    if (mass <= 0) continue;
    meanWaitMs += mass * i * pool.stepMs;
    for (let g = 2 * i; g < cdfAt.length; g++) cdfAt[g]! += mass * ownCdf[Math.min(ownPoints - 1, g - 2 * i)]!;
  }
  let meanOwnMs = 0;
  for (let i = 1; i < ownPoints; i++) meanOwnMs += (1 - (ownCdf[i - 1]! + ownCdf[i]!) / 2) * step;
  const cdf = (ms: number): number => {
    const y = (ms - extraMs) / step;
    if (y < 0) return 0;
    const g = Math.floor(y);
    if (g >= cdfAt.length - 1) return cdfAt[cdfAt.length - 1]!;
    return cdfAt[g]! + (y - g) * (cdfAt[g + 1]! - cdfAt[g]!);
  };
  const percentile = (q: number): number => {
    const g = cdfAt.findIndex((v) => v >= q);
    if (g < 0) return Infinity;
    if (g === 0) return extraMs;
    const [a, b] = [cdfAt[g - 1]!, cdfAt[g]!];
    return extraMs + (g - 1 + (b > a ? (q - a) / (b - a) : 1)) * step;
  };
  return { ...pool, meanMs: meanOwnMs + meanWaitMs + extraMs, batchSizeProbs: Float64Array.from(sealed.probs), meanBatch: sealed.meanBatch, cdf, percentile };
}

function estimateFixed(batches: BatchSizeDistribution, input: LatencyInput, shards: number): LatencyEstimate {
  const servers = input.servers as Extract<ServerSpec, { kind: "fixed" }>;
  const { model, utilisation } = fixedQueue(input.arrival, servers, input.service, input.maxBatch, input.windowMs, shards, input.extraMs ?? 0, batches);
  const isLazy = servers.formation === "lazy";
  const distribution: LatencyDistribution = { cdf: model.cdf, percentile: model.percentile };
  return {
    maxBatch: input.maxBatch,
    windowMs: input.windowMs,
    shards,
    latencyMs: { p50: model.percentile(0.5), p95: model.percentile(0.95), p99: model.percentile(0.99) },
    meanBatch: isLazy && model.isStable ? model.meanBatch : batches.meanBatch,
    batchSizeProbs: Array.from(isLazy && model.isStable ? model.batchSizeProbs : batches.probs),
    meanBufferWaitMs: NaN,
    meanLatencyMs: model.meanMs,
    utilisation,
    isStable: model.isStable,
    distribution,
    batches,
    fixed: model,
  };
}

/** The parts of the model the optimizer reuses: the distribution, the queue and the batch stream. */
export interface LatencyModel {
  distribution: LatencyDistribution;
  queue?: QueueDelay;
  stream: BatchStream;
  /** Per-server utilisation (fixed) or mean number of batches in service (unbounded). */
  utilisation: number;
  isStable: boolean;
  fixed?: FixedServerModel;
}

/**
 * Builds the latency model of a configuration from its buffer model (batch sizes, and the wait
 * table for unbounded servers; fixed servers need `arrival`, the whole model's arrivals).
 */
export function latencyModel(
  batches: BatchSizeDistribution,
  table: RequestWaitTable | undefined,
  input: Pick<LatencyInput, "service" | "servers" | "extraMs"> & { arrival?: MarkovianArrival } & Pick<FixedServerInput, "cellsPerScale" | "budget">,
  shards: number,
): LatencyModel {
  const service = serviceTable(input.service, batches.maxBatch);
  const stream = batchStream(batches, service);
  if (input.servers.kind === "unbounded") {
    if (!table) throw new RangeError("latencyModel: unbounded servers need the request-wait table");
    const utilisation = (shards * stream.batchRatePerS * stream.serviceMeanMs) / 1000;
    return { distribution: latencyDistribution(table, service, undefined, input.extraMs ?? 0), stream, utilisation, isStable: true };
  }
  if (!input.arrival) throw new RangeError("latencyModel: fixed servers need the arrival process");
  const { model, utilisation } = fixedQueue(input.arrival, input.servers, input.service, batches.maxBatch, batches.windowMs, shards, input.extraMs ?? 0, batches, input);
  return { distribution: { cdf: model.cdf, percentile: model.percentile }, stream, utilisation, isStable: model.isStable, fixed: model };
}

/** The same as estimateLatency from an already computed buffer model. */
export function estimateFromTable(batches: BatchSizeDistribution, table: RequestWaitTable, input: Pick<LatencyInput, "service" | "servers" | "extraMs"> & { arrival?: MarkovianArrival }, shards: number): LatencyEstimate {
  if (input.servers.kind === "fixed") {
    if (!input.arrival) throw new RangeError("estimateFromTable: fixed servers need the arrival process");
    return estimateFixed(batches, { ...input, arrival: input.arrival, maxBatch: batches.maxBatch, windowMs: batches.windowMs, shards }, shards);
  }
  const { distribution, queue, utilisation, isStable } = latencyModel(batches, table, input, shards);
  const service = serviceTable(input.service, batches.maxBatch);
  const meanServiceSeenMs = batches.taggedProbs.reduce((sum, p, i) => sum + p * service[i]!, 0);
  let meanBufferWaitMs = 0;
  for (let i = 0; i < table.steps; i++) meanBufferWaitMs += (1 - (waitCdf(table, i * table.stepMs) + waitCdf(table, (i + 0.999999) * table.stepMs)) / 2) * table.stepMs;
  return {
    maxBatch: batches.maxBatch,
    windowMs: batches.windowMs,
    shards,
    latencyMs: { p50: distribution.percentile(0.5), p95: distribution.percentile(0.95), p99: distribution.percentile(0.99) },
    meanBatch: batches.meanBatch,
    batchSizeProbs: Array.from(batches.probs),
    meanBufferWaitMs,
    meanLatencyMs: isStable ? meanBufferWaitMs + (queue?.meanWaitMs ?? 0) + meanServiceSeenMs + (input.extraMs ?? 0) : Infinity,
    utilisation,
    isStable,
    ...(queue ? { queue } : {}),
    distribution,
    batches,
  };
}
