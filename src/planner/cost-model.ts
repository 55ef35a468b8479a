/**
 * Cost per hour of serving one model with a given plan, from the unit prices.
 *
 * Edge placement: every request is one Worker request and one Durable Object request; each batch
 * also costs `alarmsPerBatch` DO requests (the alarm kept as a backstop for the window timer).
 * The batch runs inside the shard's DO: its service time is billed as Worker CPU-ms when
 * `isServiceBilledAsCpu` (the team's conservative default; Cloudflare's DO price list bills DO
 * compute by duration only, so set it to false to follow the list strictly), and every shard's DO
 * is billed duration (GB-s at 128 MB) for the fraction of time it is active: holding a window or
 * running / awaiting a batch.
 * Origin placement: the same edge request and DO costs (the shards buffer and forward), DO duration
 * while a window is open or a batch is in flight to the origin, plus `poolSize` instance-hours.
 * Direct placement: the Worker runs the batch itself: one Worker request per request and the
 * service time as Worker CPU-ms (always: it is the Worker's own CPU), with no Durable Object costs.
 * The active fraction of a shard is 1 - (1 - open) (1 - busy), treating the two as independent.
 */
import type { Placement } from "../models/manifest";
import type { Prices } from "./prices";

/** What the cost model needs to know about a plan's steady state. */
export interface CostInput {
  placement: Placement;
  /** Requests per second to the model (all shards). */
  ratePerS: number;
  shards: number;
  /** Origin replicas (origin placement only). */
  poolSize?: number;
  meanBatch: number;
  /** Mean time a shard's window stays open per batch, ms. */
  meanOpenMs: number;
  /** Mean service time of a batch, ms. */
  meanServiceMs: number;
  /** Mean time a batch is in flight after its release (queueing + service + network), ms. */
  meanInFlightMs: number;
}

/** Options of the cost model. */
export interface CostOptions {
  /** DO requests per batch for the window alarm; default 1. */
  alarmsPerBatch?: number;
  /** Worker CPU ms spent per request outside the model (parsing, routing); default 0. */
  workerCpuMsPerRequest?: number;
  /** Bill edge batch service time as Worker CPU-ms; default true. */
  isServiceBilledAsCpu?: boolean;
}

/** Cost per hour by item, USD. */
export interface CostBreakdown {
  workerRequests: number;
  workerCpu: number;
  durableObjectRequests: number;
  durableObjectDuration: number;
  originInstances: number;
  totalUsdPerHour: number;
  usdPerMillionRequests: number;
  /** One-off cost of starting the pool (instance-hours billed before it is ready), USD. */
  startupUsd: number;
  /** Seconds before a new origin pool serves (0 at the edge). */
  startupS: number;
}

/** Whether a placement's batch service time is billed as Worker CPU: direct always, edge when `isServiceBilledAsCpu`. */
function isServiceCpu(placement: Placement, isServiceBilledAsCpu: boolean): boolean {
  return placement === "direct" || (placement === "edge" && isServiceBilledAsCpu);
}

function perMillion(count: number, usd: number): number {
  return (count / 1e6) * usd;
}

/** The cost per hour of a plan. */
export function costPerHour(input: CostInput, prices: Prices, options: CostOptions = {}): CostBreakdown {
  const parts = new Float64Array(5);
  const totalUsdPerHour = costParts(input, prices, options, parts);
  const [workerRequests, workerCpu, durableObjectRequests, durableObjectDuration, originInstances] = parts as unknown as number[];
  const requestsPerHour = input.ratePerS * 3600;
  const startupS = originInstances! > 0 ? prices.origin.startupS : 0;
  return {
    workerRequests: workerRequests!,
    workerCpu: workerCpu!,
    durableObjectRequests: durableObjectRequests!,
    durableObjectDuration: durableObjectDuration!,
    originInstances: originInstances!,
    totalUsdPerHour,
    usdPerMillionRequests: requestsPerHour > 0 ? (totalUsdPerHour / requestsPerHour) * 1e6 : 0,
    startupUsd: (originInstances! * startupS) / 3600,
    startupS,
  };
}

/**
 * The total cost per hour, USD; with `parts`, also writes the items (worker requests, worker CPU,
 * DO requests, DO duration, origin instances). The optimizer calls it once per configuration.
 */
export function costParts(input: CostInput, prices: Prices, options: CostOptions = {}, parts?: Float64Array): number {
  const alarmsPerBatch = options.alarmsPerBatch ?? 1;
  const cpuPerRequest = options.workerCpuMsPerRequest ?? 0;
  const isServiceBilledAsCpu = options.isServiceBilledAsCpu ?? true;
  const requestsPerHour = input.ratePerS * 3600;
  const batchesPerHour = requestsPerHour / input.meanBatch;

  const workerRequests = perMillion(requestsPerHour, prices.workers.usdPerMillionRequests);
  const serviceCpuMs = isServiceCpu(input.placement, isServiceBilledAsCpu) ? batchesPerHour * input.meanServiceMs : 0;
  const workerCpu = perMillion(requestsPerHour * cpuPerRequest + serviceCpuMs, prices.workers.usdPerMillionCpuMs);
  if (input.placement === "direct") {
    parts?.set([workerRequests, workerCpu, 0, 0, 0]);
    return workerRequests + workerCpu;
  }
  const durableObjectRequests = perMillion(requestsPerHour + batchesPerHour * alarmsPerBatch, prices.durableObjects.usdPerMillionRequests);

  const batchRatePerShardPerMs = input.ratePerS / input.meanBatch / input.shards / 1000;
  const open = Math.min(1, batchRatePerShardPerMs * input.meanOpenMs);
  const busy = Math.min(1, batchRatePerShardPerMs * input.meanInFlightMs);
  const activeFraction = 1 - (1 - open) * (1 - busy);
  const gbSeconds = input.shards * activeFraction * prices.durableObjects.memoryGb * 3600;
  const durableObjectDuration = perMillion(gbSeconds, prices.durableObjects.usdPerMillionGbS);

  const originInstances = input.placement === "origin" ? (input.poolSize ?? 0) * prices.origin.usdPerHour : 0;
  if (parts) parts.set([workerRequests, workerCpu, durableObjectRequests, durableObjectDuration, originInstances]);
  return workerRequests + workerCpu + durableObjectRequests + durableObjectDuration + originInstances;
}

/** What is known of a group of plans before their batch sizes are computed (see costLowerBound). */
export interface CostBoundInput {
  placement: Placement;
  /** Requests per second to the model (all shards). */
  ratePerS: number;
  shards: number;
  /** The smallest origin pool any plan of the group can have (origin placement only). */
  poolSize?: number;
  /** An upper bound of the mean batch size (>= 1). */
  maxMeanBatch: number;
  /** A line below the service time, ms: s(k) >= serviceBaseMs + servicePerItemMs * k, both >= 0. */
  serviceBaseMs: number;
  servicePerItemMs: number;
  /** Time a batch is in flight beyond its service and queueing (network), ms; default 0. */
  extraMs?: number;
}

/**
 * A lower bound of costParts for every plan of a group. With mean batch M <= maxMeanBatch there are
 * at least rate / maxMeanBatch batches; the service per request, E[s(K)] / M, is at least
 * serviceBaseMs / maxMeanBatch + servicePerItemMs; a shard's DO is active at least while its batches
 * are in flight (service + extraMs, queueing taken as 0), whether or not a window is open. The
 * result is lowered by a relative 1e-9 so that rounding in costParts cannot put a plan below it.
 */
export function costLowerBound(input: CostBoundInput, prices: Prices, options: CostOptions = {}): number {
  const alarmsPerBatch = options.alarmsPerBatch ?? 1;
  const cpuPerRequest = options.workerCpuMsPerRequest ?? 0;
  const isServiceBilledAsCpu = options.isServiceBilledAsCpu ?? true;
  const requestsPerHour = input.ratePerS * 3600;
  const batchesPerHour = requestsPerHour / input.maxMeanBatch;
  const servicePerRequestMs = input.serviceBaseMs / input.maxMeanBatch + input.servicePerItemMs;
  const inFlightPerRequestMs = servicePerRequestMs + (input.extraMs ?? 0) / input.maxMeanBatch;

  const workerRequests = perMillion(requestsPerHour, prices.workers.usdPerMillionRequests);
  const serviceCpuMs = isServiceCpu(input.placement, isServiceBilledAsCpu) ? requestsPerHour * servicePerRequestMs : 0;
  const workerCpu = perMillion(requestsPerHour * cpuPerRequest + serviceCpuMs, prices.workers.usdPerMillionCpuMs);
  if (input.placement === "direct") return (workerRequests + workerCpu) * (1 - 1e-9);
  const durableObjectRequests = perMillion(requestsPerHour + batchesPerHour * alarmsPerBatch, prices.durableObjects.usdPerMillionRequests);
  const busyShards = Math.min(input.shards, (input.ratePerS * inFlightPerRequestMs) / 1000);
  const durableObjectDuration = perMillion(busyShards * prices.durableObjects.memoryGb * 3600, prices.durableObjects.usdPerMillionGbS);
  const originInstances = input.placement === "origin" ? (input.poolSize ?? 0) * prices.origin.usdPerHour : 0;
  return (workerRequests + workerCpu + durableObjectRequests + durableObjectDuration + originInstances) * (1 - 1e-9);
}
