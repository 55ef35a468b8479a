/**
 * The cost/SLO planner: an analytic latency model of micro-batching under Poisson or MAP arrivals
 * (after BATCH, SC20) extended to fixed servers with sealed or lazy batch formation (a Markov chain
 * at batch heads, fixed-servers.ts) and the edge/origin split, MMPP(2) fitting, a seeded simulator
 * of the same policies to check it, a cost model from public price lists, and an optimizer. Pure TypeScript:
 * no platform imports, clocks or I/O, so the Worker, the origin, the CLIs and the benchmarks share it.
 */
export { type ArrivalSpec, type MarkovianArrival, mapProblems, splitAcrossShards, toMarkovianArrival } from "./arrival";
export { type BatchSizeDistribution, batchSizeDistribution } from "./batch-size";
export { type CostBreakdown, type CostInput, type CostOptions, costPerHour } from "./cost-model";
export type { Placement } from "../models/manifest";
export { countingMatrices } from "./counting-process";
export { type FitMmpp2Details, type FitMmpp2Options, arrivalRows, fitMmpp2, fitMmpp2Details, mapGapScv, scaleArrival } from "./fit-map";
export { type FixedQueue, type LatencyDistribution, type LatencyEstimate, type LatencyInput, estimateLatency, fixedQueue } from "./latency-model";
export { type OptimizeInput, type OptimizeResult, type Plan, type PlacementOption, type SearchSpace, DEFAULT_SEARCH_SPACE, geometricWindows, optimize } from "./optimizer";
export { DEFAULT_PRICES, type PriceOverrides, type Prices, withPrices } from "./prices";
export { type ParsedProblem, type Problem, parseProblem, problemSchema } from "./problem";
export { type FixedServerInput, type FixedServerModel, fixedServerLatency } from "./fixed-servers";
export { type Formation, type QueueDelay, type ServerSpec, queueDelay } from "./queueing";
export { type LinearFit, type ServiceSample, type ServiceSpec, fitLinear, serviceMs } from "./service-time";
export { type SimulationInput, type SimulationResult, simulate } from "./simulator";
export { type Evaluation, type Solution, solveProblem } from "./solve-problem";
