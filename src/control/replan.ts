/**
 * The controller's use of the planner: the cheapest plan for the estimated load (the optimizer's
 * search, restricted by the pins and the deployment's limits), and the prediction for a given plan
 * (the same optimizer restricted to that one configuration, so both come from one latency and cost
 * model). Pure; runs in workerd.
 */
import { isBuffered, runtimeOf, type ModelManifest, type Placement, type Runtime } from "../models/manifest";
import type { MarkovianArrival } from "../planner/arrival";
import { geometricWindows, optimize, type Plan, type SearchSpace, upTo } from "../planner/optimizer";
import type { ServiceSpec } from "../planner/service-time";
import type { PathCpu } from "../models/profile";
import type { ServiceLine } from "../scheduler/service-estimate";
import type { LivePlan, Pins, Prediction } from "./plan";

/** What a re-plan needs besides the load. */
export interface PlanningContext {
  manifest: ModelManifest;
  /** Service time per batch on each runtime: the live line where measured, else the profile's. */
  service: Partial<Record<Runtime, ServiceLine>>;
  /** Per-request latency outside the batch servers on the direct path beyond its CPU (HTTP, the proxy), ms. */
  overheadMs: number;
  /** What the buffer hop (Worker -> Durable Object RPC and back) adds to a buffered request beyond its CPU, ms. */
  hopMs: number;
  /**
   * What requests and batches cost the thread that runs the batches beyond the kernel (Worker,
   * Durable Object RPC, parsing, dispatch), per edge placement: the planner serves a batch of k rows
   * there in s(k) + perBatchMs + k perRequestMs (profile.ts). Absent: 0. Where measured, the
   * requests' front door shares that thread too: a request that arrives while a batch runs reaches
   * the buffer when it ends, and its window counts from then (the planner's `sharedThread`); and
   * a request's own CPU answers it in turn once its batch is computed (`answerMsPerRow`).
   */
  pathCpu?: Partial<Record<"edge" | "direct", PathCpu>>;
  /** Round trip edge -> origin on top of the origin's service line, ms. */
  originNetworkMs: number;
  /** Whether an origin pool can serve (configured or scalable). */
  hasOrigin: boolean;
  pins: Pins;
  limits: { maxShards: number; maxPoolSize: number };
}

/** A plan with what it is predicted to do. */
export interface PlannedChoice {
  /** The planner's fields (stream shards follow the stream load: stream-load.ts). */
  plan: Omit<LivePlan, "streamShards">;
  predicted: Prediction;
}

/**
 * The controller's search: the batch sizes and windows below (a coarser grid than the CLI's), and
 * at most this many fixed-server solutions and WORK_BUDGET of their grid operations, so a re-plan
 * takes well under a second in a Durable Object even near saturation.
 */
const SEARCH_BATCH_SIZES = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64];
const SEARCH_WINDOWS_MS = geometricWindows(1, 500, 20);
const MAX_FIXED_SOLVES = 40;
/**
 * Grid operations each search may spend on fixed-server solutions (optimize's workBudget): about
 * 150 ms of this project's 2-core machine (2-3 million a ms). One solution under a slowly switching
 * MMPP fitted right after a step can otherwise take seconds (one took 2.1 s), and a Durable Object,
 * like everything else in workerd locally, waits for it. A search cut short keeps what it found.
 */
const WORK_BUDGET = 4e8;
/**
 * New plans keep each server at most this busy (headroom for noise); a running plan counts as
 * holding while its servers stay below KEEP_UTILISATION and it meets the SLO. Near saturation a plan
 * is fragile, and its solution the slowest to compute.
 */
const PLAN_UTILISATION = 0.85;
const KEEP_UTILISATION = 0.92;
/**
 * New plans target this share of the SLO's ms; a running plan holds while it meets the SLO itself.
 * Service times drift with what else runs on the machine, and a plan made right at the SLO misses
 * it on the first slow minute.
 */
export const PLAN_SLO_SHARE = 0.8;
/**
 * New plans may cost this fraction more than the cheapest for a shorter window (optimize's
 * costSlack). On CPU kernels that gain little from batching, the cheapest plan for a light load
 * holds every request for a window to save 1-2 % (ppocr-cls at 40/s: a 97 ms window for 2.0 %).
 */
const COST_SLACK = 0.05;

/** The service of `placement`'s servers: its runtime's line, plus the path's CPU where the Worker's work shares their thread. */
export function serviceOf(context: Pick<PlanningContext, "service" | "pathCpu">, placement: Placement): Extract<ServiceSpec, { kind: "linear" }> {
  const line = context.service[runtimeOf(placement)]!;
  const cpu = pathCpuOf(context, placement);
  return { kind: "linear", baseMs: line.baseMs + (cpu?.perBatchMs ?? 0), perItemMs: line.perRowMs + (cpu?.perRequestMs ?? 0) };
}

/**
 * How `placement`'s requests share the thread that runs its batches, where their CPU there was
 * measured (PlanningContext.pathCpu): the front door waits for a running batch (`sharedThread`), and
 * each request's own CPU, part of its batch's service, answers it in turn once the batch is
 * computed (`answerMsPerRow`). Where the requests' CPU runs decides when they are done: the
 * fidelity benchmark's live runs put it after the batch (bench/reports/fidelity-workerd.md).
 */
export function threadOf(context: Pick<PlanningContext, "pathCpu">, placement: Placement): { sharedThread?: true; answerMsPerRow?: number } {
  const cpu = pathCpuOf(context, placement);
  return cpu !== undefined && cpu.perRequestMs + cpu.perBatchMs > 0 ? { sharedThread: true, answerMsPerRow: cpu.perRequestMs } : {};
}

/** The path's CPU on the thread that runs its batches, where measured (never on the origin). */
function pathCpuOf(context: Pick<PlanningContext, "pathCpu">, placement: Placement): PathCpu | undefined {
  return placement === "origin" ? undefined : context.pathCpu?.[placement];
}

/** The placements the planner may choose under the pins and what is deployed. */
function placementsOf(context: PlanningContext): Placement[] {
  if (context.pins.placement) return [context.pins.placement];
  return (["edge", "origin", "direct"] as const).filter((p) => context.service[runtimeOf(p)] && (p !== "origin" || context.hasOrigin));
}

function run(arrival: MarkovianArrival, context: PlanningContext, placements: Placement[], space: Partial<SearchSpace>, maxUtilisation: number, sloShare: number, costSlack = 0): Plan | null {
  const { manifest } = context;
  const slo = { percentile: manifest.slo.percentile, ms: manifest.slo.ms * sloShare };
  // The direct path's overhead applies to every request; buffered ones add the hop, origin ones the network too.
  const extraMsOf = (p: Placement) => (isBuffered(p) ? context.hopMs : 0) + (p === "origin" ? context.originNetworkMs : 0);
  const options = Object.fromEntries(placements.map((p) => [p, { service: serviceOf(context, p), extraMs: extraMsOf(p), ...threadOf(context, p) }]));
  const result = optimize({ arrival, slo, placements: options, space, overheadMs: context.overheadMs, alternatives: 0, maxFixedSolves: MAX_FIXED_SOLVES, workBudget: WORK_BUDGET, maxUtilisation, costSlack });
  return result.plan;
}

function choiceOf(plan: Plan, { ratePerS }: MarkovianArrival): PlannedChoice {
  return {
    plan: { placement: plan.placement, maxBatch: plan.maxBatch, windowMs: plan.windowMs, shards: plan.shards, poolSize: plan.poolSize },
    predicted: { sloLatencyMs: plan.sloLatencyMs, p95Ms: plan.latencyMs.p95, costPerHourUsd: plan.cost.totalUsdPerHour, ratePerS },
  };
}

/** The cheapest plan (within COST_SLACK, the one with the shortest window) meeting PLAN_SLO_SHARE of the SLO for `arrival` with every server at most PLAN_UTILISATION busy, or undefined when none does. */
export function cheapestPlan(arrival: MarkovianArrival, context: PlanningContext): PlannedChoice | undefined {
  const { pins, limits, manifest } = context;
  const placements = placementsOf(context);
  if (!placements.length) return undefined;
  const { maxRowsPerRequest: minBatch, maxBatch } = manifest.batching;
  const space: Partial<SearchSpace> = {
    // The manifest's maxBatch is the model's limit (memory, payload size, measured range): plans stay within it.
    // maxBatch 1 is each request alone (the runtime keeps a request's own rows whole).
    maxBatch: pins.maxBatch !== undefined ? [pins.maxBatch] : [...new Set([1, minBatch, ...SEARCH_BATCH_SIZES.filter((b) => b >= minBatch && b < maxBatch), maxBatch])],
    windowMs: pins.windowMs !== undefined ? [pins.windowMs] : [0, ...SEARCH_WINDOWS_MS],
    shards: pins.shards !== undefined ? [pins.shards] : upTo(limits.maxShards),
    poolSize: pins.poolSize !== undefined ? [Math.max(1, pins.poolSize)] : upTo(limits.maxPoolSize),
  };
  const plan = run(arrival, context, placements, space, PLAN_UTILISATION, PLAN_SLO_SHARE, COST_SLACK);
  return plan ? choiceOf(plan, arrival) : undefined;
}

/** What `plan` is predicted to do under `arrival`; undefined when it cannot meet the SLO or keeps a server busier than KEEP_UTILISATION. */
export function predictPlan(plan: LivePlan, arrival: MarkovianArrival, context: PlanningContext): PlannedChoice | undefined {
  if (!context.service[runtimeOf(plan.placement)]) return undefined;
  const space: SearchSpace = { maxBatch: [plan.maxBatch], windowMs: [plan.windowMs], shards: [plan.shards], poolSize: [Math.max(1, plan.poolSize)] };
  const found = run(arrival, context, [plan.placement], space, KEEP_UTILISATION, 1);
  return found ? choiceOf(found, arrival) : undefined;
}
