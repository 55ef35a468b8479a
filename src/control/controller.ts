/**
 * The control loop of one model, as pure decision logic (time passed in; the Durable Object in
 * model-controller.ts is its glue). Every tick (about once a second) it
 *   1. folds the shards' telemetry into arrival counts per bin; bins older than `settleMs` are final;
 *   2. feeds each final second's count to a CUSUM change-point detector and a Holt forecast;
 *   3. re-plans on a change point, every `replanEveryMs`, once the first `warmupMs` of traffic is
 *      seen, and when the rows not yet answered (queued and running) would take more than
 *      `backlogShare` of the SLO's ms to drain on the plan's servers at the service line (a rise
 *      the detector has not confirmed yet: at low rates it needs several seconds, while a queue
 *      beyond capacity says so at once; the last MIN_ESTIMATE_MS of counts then count as the new
 *      rate, and as a rise; at most once per `urgentIntervalMs`). It estimates the arrival process
 *      from the counts since the last change point (Poisson, or an MMPP(2) when they are
 *      over-dispersed) and asks the planner for the cheapest plan that meets the SLO at the planning
 *      rate: the estimate plus `headroomShare`, or, on the origin for `provisioningDelayMs` after a
 *      rise was detected, the Holt forecast over that delay if higher (replicas ordered now serve
 *      only then; at most twice the estimate). The running placement's live service line replaces
 *      its profile;
 *   4. applies the new plan only when the current one is predicted to miss the SLO at the estimated
 *      rate itself (at most once per `urgentIntervalMs`), or when the new one is cheaper by
 *      `savingsShare` and no change was made for `minChangeIntervalMs`. The band between the
 *      estimate and the planning rate, the saving threshold and the interval are the hysteresis
 *      that keeps a steady load's plan from flapping.
 * Pins hold fields at an operator's value. Every applied change is a Decision with its inputs,
 * prediction and reason, and raises the version. Modes: "closed-loop" (the above), "reactive" (Ray
 * Serve's rule, reactive-policy.ts, as a baseline) and "static" (the manifest and pins only).
 */
import type { ServiceLine } from "../scheduler/service-estimate";
import { estimateArrival } from "./arrival-estimate";
import { RateChangeDetector } from "./change-point";
import { HoltForecast } from "./forecast";
import { isSamePlan, type LivePlan, manifestPins, manifestPlan, type Pins, type Prediction, type PublishedPlan, withPins } from "./plan";
import { ReactivePolicy, RAY_SERVE_DEFAULTS } from "./reactive-policy";
import { cheapestPlan, type PlanningContext, predictPlan, serviceOf } from "./replan";
import { REFUSED_WINDOW_MS, StreamLoad, type StreamDemand, type StreamReport } from "./stream-load";
import { TELEMETRY_BIN_MS as BIN_MS, type Telemetry } from "./telemetry";
import { type ArrivalSpec, toMarkovianArrival } from "../planner/arrival";
import { runtimeOf } from "../models/manifest";
import { scaleArrival } from "../planner/fit-map";

/** How a model's plan is decided. */
export type ControlMode = "closed-loop" | "reactive" | "static";

/** Tuning of the loop; defaults in DEFAULT_CONTROLLER_OPTIONS. */
export interface ControllerOptions {
  mode: ControlMode;
  /** Bins of this age are final (reports arrive about once a second), ms. */
  settleMs: number;
  /** Longest stretch of counts an estimate uses, ms. */
  historyMs: number;
  /** Traffic seen before the first plan, ms. */
  warmupMs: number;
  /** Re-plan at least this often while traffic flows, ms. */
  replanEveryMs: number;
  /** Least time between two changes made to save cost, ms. */
  minChangeIntervalMs: number;
  /** Least time between two changes made because the SLO is at risk, ms. */
  urgentIntervalMs: number;
  /** A cheaper plan is applied only when it saves at least this share of the current plan's cost. */
  savingsShare: number;
  /** Time a new origin replica takes to serve, ms; after a rise, the forecast looks this far ahead. */
  provisioningDelayMs: number;
  /** Plans are made for the estimated rate times 1 + headroomShare. */
  headroomShare: number;
  /** Rows not yet answered that take more than this share of the SLO's ms to drain on the plan's servers trigger a re-plan on the recent rate. */
  backlogShare: number;
  /** Decisions kept for the plan view. */
  maxDecisions: number;
}

/** Defaults: settle 1.5 s, estimate over up to 60 s, first plan after 3 s, re-plan every 15 s, plan for 25 % above the estimate, save >= 15 % at most once a minute, urgent changes at most every 3 s, provisioning 10 s, a backlog of half the SLO's ms. */
export const DEFAULT_CONTROLLER_OPTIONS: ControllerOptions = {
  mode: "closed-loop",
  settleMs: 1500,
  historyMs: 60_000,
  warmupMs: 3000,
  replanEveryMs: 15_000,
  minChangeIntervalMs: 60_000,
  urgentIntervalMs: 3000,
  savingsShare: 0.15,
  provisioningDelayMs: 10_000,
  headroomShare: 0.25,
  backlogShare: 0.5,
  maxDecisions: 50,
};

/** What the controller saw when it decided. */
export interface DecisionInputs {
  /** Rate of the counts the estimate used, the forecast over the provisioning delay, and the rate planned for, per s. */
  ratePerS: number;
  forecastRatePerS: number;
  planRatePerS: number;
  /** Variance / mean of the counts per bin (1 for Poisson). */
  dispersion: number;
  arrival: ArrivalSpec["kind"];
  /** Seconds of counts the estimate used. */
  windowS: number;
  serviceLine?: ServiceLine;
  /** Queued and running rows over the shards (reactive mode's signal). */
  ongoingRows: number;
  /** The stream load, for a change of the stream shards. */
  streams?: StreamDemand;
}

/** One applied change. */
export interface Decision {
  atMs: number;
  version: number;
  reason: string;
  before: LivePlan;
  after: LivePlan;
  inputs?: DecisionInputs;
  predicted?: Prediction;
}

/** What the controller keeps across restarts. */
export interface ControllerState {
  published: PublishedPlan;
  pins: Pins;
  decisions: Decision[];
  lastChangeAtMs: number;
}

/** The plan view served at GET /v2/models/{m}/plan. */
export interface PlanView {
  model: string;
  mode: ControlMode;
  version: number;
  plan: LivePlan;
  pins: Pins;
  /** The current plan at the current estimate (null fields: it is not predicted to meet the SLO). */
  predicted: { p95Ms: number | null; costPerHourUsd: number | null; ratePerS: number };
  /** Over the last 10 s: arrivals per second; p95 of the buffers' time plus the request overhead; and the stream load, when streams reported. */
  measured: { ratePerS: number; p95Ms: number | null; refusedPerS: number; streams?: StreamDemand };
  decisions: Decision[];
}

const SECOND_MS = 1000;
/** Time after which a silent shard's queue is taken as empty, ms. */
const SHARD_SILENCE_MS = 5000;
/** Shortest stretch of counts an estimate uses, ms. */
const MIN_ESTIMATE_MS = 4000;
/** The forecast after a rise counts for at most this many times the estimated rate. */
const MAX_FORECAST_RATIO = 2;
/** Rates below this count as no traffic, per s. */
const IDLE_RATE_PER_S = 0.05;

/** One model's controller. */
export class Controller {
  readonly options: ControllerOptions;
  private state: ControllerState;
  private readonly bins = new Map<number, number>();
  private firstBin?: number;
  /** Estimates use bins from here on (the last change point). */
  private sinceBin?: number;
  private nextSecond?: number;
  private readonly detector = new RateChangeDetector({ intervalMs: SECOND_MS });
  private readonly forecast = new HoltForecast();
  private lastReplanAtMs = -Infinity;
  private lastRiseAtMs = -Infinity;
  private lastBacklogAtMs = -Infinity;
  private lastPrediction?: Prediction;
  private lastInputs?: DecisionInputs;
  /** Per shard: when it last reported, its ongoing rows, and the last bin its reports cover. */
  private readonly shards = new Map<number, { atMs: number; queuedRows: number; ongoingRows: number; coveredBin: number }>();
  private readonly recent: Array<{ atMs: number; latencyMs: number[]; refusedRows: number }> = [];
  private serviceLine?: ServiceLine;
  private readonly reactive: ReactivePolicy;
  private readonly streamLoad = new StreamLoad();

  constructor(
    private readonly context: Omit<PlanningContext, "pins"> & { minPoolSize: number },
    options: Partial<ControllerOptions> = {},
    state?: ControllerState,
  ) {
    this.options = { ...DEFAULT_CONTROLLER_OPTIONS, ...options };
    // An origin model starts on the pool's floor: its buffers run that many batches at once (a
    // static pool of three is used as three), until a plan says otherwise.
    const isOrigin = context.manifest.placement === "origin";
    const plan = { ...manifestPlan(context.manifest), ...(isOrigin && { poolSize: Math.max(1, context.minPoolSize) }) };
    this.state = state ?? { published: { version: 0, plan, decidedAtMs: 0 }, pins: {}, decisions: [], lastChangeAtMs: -Infinity };
    // Pins apply from the start; a plan stored before a field existed takes the manifest's value.
    this.state.published.plan = withPins({ ...plan, ...this.state.published.plan }, this.pins);
    this.reactive = new ReactivePolicy({ ...RAY_SERVE_DEFAULTS, minReplicas: isOrigin ? Math.max(1, context.minPoolSize) : 1, maxReplicas: isOrigin ? context.limits.maxPoolSize : context.limits.maxShards });
  }

  /** The model this loop plans for. */
  get model(): string {
    return this.context.manifest.name;
  }

  /** The published plan. */
  get published(): PublishedPlan {
    return this.state.published;
  }

  /** What to persist. */
  snapshot(): ControllerState {
    return this.state;
  }

  /** Folds one shard's report in. */
  observe(report: Telemetry, nowMs: number): void {
    // Every recorder uses TELEMETRY_BIN_MS; a report in other bins is not mixed in.
    if (report.binMs !== BIN_MS) return;
    const first = Math.floor(report.startMs / BIN_MS);
    report.arrivalRows.forEach((rows, i) => {
      if (!rows) return;
      const bin = first + i;
      this.bins.set(bin, (this.bins.get(bin) ?? 0) + rows);
      if (this.firstBin === undefined || bin < this.firstBin) this.firstBin = bin;
    });
    // A report covers every bin before the one it was taken in (its startMs when it holds none).
    const coveredBin = report.arrivalRows.length ? first + report.arrivalRows.length - 1 : first - 1;
    this.shards.set(report.shard, { atMs: nowMs, queuedRows: report.queuedRows, ongoingRows: report.queuedRows + report.runningRows, coveredBin: Math.max(coveredBin, this.shards.get(report.shard)?.coveredBin ?? -Infinity) });
    if (report.serviceLine) this.serviceLine = report.serviceLine;
    this.recent.push({ atMs: nowMs, latencyMs: report.latencyMs, refusedRows: report.refusedRows });
  }

  /** Folds one stream shard's report in. */
  observeStreams(report: StreamReport, nowMs: number): void {
    this.streamLoad.observe(report, nowMs);
  }

  /** The pins in force: the manifest's, overridden per field by the operator's. */
  get pins(): Pins {
    return { ...manifestPins(this.context.manifest), ...this.state.pins };
  }

  /** Sets or releases the operator's pins; a pinned field changes the plan at once. */
  setPins(pins: Pins, nowMs: number): Decision | undefined {
    this.state.pins = pins;
    return this.apply(withPins(this.state.published.plan, this.pins), nowMs, "pins changed by the operator");
  }

  /** Advances the loop to `nowMs`; returns the decision when the plan changed. */
  tick(nowMs: number): Decision | undefined {
    const alarm = this.advance(nowMs);
    this.trim(nowMs);
    if (this.options.mode === "static") return undefined;
    if (this.options.mode === "reactive") return this.tickReactive(nowMs);
    const streams = this.replanStreams(nowMs);
    if (streams) return streams;
    if (this.firstBin === undefined) return undefined;
    const settledBin = this.settledBin(nowMs);
    const hasWarmedUp = (settledBin - this.firstBin) * BIN_MS >= this.options.warmupMs;
    const isDue = nowMs - this.lastReplanAtMs >= this.options.replanEveryMs;
    const backlogMs = alarm || !hasWarmedUp || nowMs - this.lastBacklogAtMs < this.options.urgentIntervalMs ? 0 : this.backlogMs(nowMs);
    if (backlogMs > this.options.backlogShare * this.context.manifest.slo.ms) {
      // A queue beyond what the plan drains in time: the rate rose before the detector could tell; estimate from the last seconds.
      this.lastBacklogAtMs = this.lastRiseAtMs = nowMs;
      this.sinceBin = this.settledBin(nowMs) - MIN_ESTIMATE_MS / BIN_MS + 1;
      return this.replan(nowMs, `queue building (${this.ongoingRows(nowMs)} rows, about ${Math.round(backlogMs)} ms to drain)`);
    }
    if (!hasWarmedUp || !(alarm || isDue)) return undefined;
    return this.replan(nowMs, alarm ? `arrival rate changed (${alarm})` : this.state.published.version === 0 ? "first plan from live traffic" : "periodic re-plan");
  }

  /** The plan view. */
  view(nowMs: number): PlanView {
    const { published, pins, decisions } = this.state;
    const fromMs = nowMs - 10 * SECOND_MS;
    const windowBins = this.countsBetween(Math.floor((fromMs - this.options.settleMs) / BIN_MS), this.settledBin(nowMs));
    const latencies = this.recent.filter((r) => r.atMs >= fromMs).flatMap((r) => r.latencyMs).sort((a, b) => a - b);
    const refused = this.recent.filter((r) => r.atMs >= fromMs).reduce((s, r) => s + r.refusedRows, 0);
    const p95 = latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(0.95 * latencies.length))]! + this.context.overheadMs : null;
    const prediction = this.lastPrediction;
    const streams = this.streamLoad.demand(nowMs, this.options.headroomShare);
    return {
      model: this.context.manifest.name,
      mode: this.options.mode,
      version: published.version,
      plan: published.plan,
      pins: this.pins,
      predicted: { p95Ms: prediction?.p95Ms ?? null, costPerHourUsd: prediction?.costPerHourUsd ?? null, ratePerS: prediction?.ratePerS ?? 0 },
      measured: { ratePerS: windowBins.length ? (sum(windowBins) / windowBins.length) * (SECOND_MS / BIN_MS) : 0, p95Ms: p95, refusedPerS: refused / 10, ...(streams && { streams }) },
      decisions,
    };
  }

  /** Feeds every newly final second to the detector and the forecast; returns the last alarm. */
  private advance(nowMs: number): "up" | "down" | undefined {
    if (this.firstBin === undefined) return undefined;
    const binsPerSecond = SECOND_MS / BIN_MS;
    this.nextSecond ??= Math.floor(this.firstBin / binsPerSecond);
    let alarm: "up" | "down" | undefined;
    while ((this.nextSecond + 1) * binsPerSecond <= this.settledBin(nowMs) + 1) {
      const count = sum(this.countsBetween(this.nextSecond * binsPerSecond, (this.nextSecond + 1) * binsPerSecond - 1));
      this.forecast.push(count);
      const direction = this.detector.push(count);
      if (direction) {
        alarm = direction;
        if (direction === "up") this.lastRiseAtMs = nowMs;
        // Estimates start again from the second that raised the alarm (the detector needs 1-2 s at a 3x step).
        this.sinceBin = this.nextSecond * binsPerSecond;
      }
      this.nextSecond++;
    }
    return alarm;
  }

  private replan(nowMs: number, trigger: string): Decision | undefined {
    this.lastReplanAtMs = nowMs;
    const settled = this.settledBin(nowMs);
    const historyBins = this.options.historyMs / BIN_MS;
    // At least MIN_ESTIMATE_MS of counts: a second or two after a change point is too noisy (and a
    // stalled buffer delivers its arrivals in bursts).
    const from = Math.max(this.firstBin!, Math.min(this.sinceBin ?? -Infinity, settled - MIN_ESTIMATE_MS / BIN_MS + 1), settled - historyBins + 1);
    const counts = this.countsBetween(from, settled);
    const estimate = estimateArrival(counts, BIN_MS);
    const forecastRatePerS = this.forecast.forecast(this.options.provisioningDelayMs / SECOND_MS);
    const current = this.state.published.plan;
    // Only replicas take time to start: the forecast matters for the origin, and is held to at most
    // MAX_FORECAST_RATIO times the estimate (right after a step, the trend overshoots).
    const isRising = current.placement === "origin" && nowMs - this.lastRiseAtMs < this.options.provisioningDelayMs;
    const planRatePerS = Math.max(estimate.ratePerS * (1 + this.options.headroomShare), isRising ? Math.min(forecastRatePerS, MAX_FORECAST_RATIO * estimate.ratePerS) : 0);
    const context = this.planningContext(current);
    this.lastInputs = { ratePerS: estimate.ratePerS, forecastRatePerS, planRatePerS, dispersion: estimate.dispersion, arrival: estimate.spec.kind, windowS: (counts.length * BIN_MS) / SECOND_MS, ...(this.serviceLine && { serviceLine: this.serviceLine }), ongoingRows: this.ongoingRows(nowMs) };
    if (planRatePerS < IDLE_RATE_PER_S) {
      this.lastPrediction = undefined;
      const idle = withPins({ ...current, poolSize: 0 }, this.pins);
      return nowMs - this.state.lastChangeAtMs >= this.options.minChangeIntervalMs ? this.apply(idle, nowMs, `${trigger}: no traffic; origin replicas released`) : undefined;
    }
    const measured = toMarkovianArrival(estimate.spec);
    const planArrival = scaleArrival(measured, planRatePerS / estimate.ratePerS);
    const now = predictPlan(current, measured, context);
    const best = cheapestPlan(planArrival, context);
    this.lastPrediction = now?.predicted;
    const sinceChangeMs = nowMs - this.state.lastChangeAtMs;
    const rate = `${estimate.ratePerS.toFixed(1)}/s (planned for ${planRatePerS.toFixed(1)}/s)`;
    if (!now) {
      if (sinceChangeMs < this.options.urgentIntervalMs) return undefined;
      if (best) return this.apply({ ...current, ...best.plan }, nowMs, `${trigger}: the current plan is predicted to miss the SLO at ${rate}`, best.predicted);
      // Nothing meets the SLO with headroom: the cheapest plan for the estimate itself, then the limits.
      const bare = cheapestPlan(measured, context);
      if (bare) return this.apply({ ...current, ...bare.plan }, nowMs, `${trigger}: the current plan is predicted to miss the SLO at ${rate}; planned without headroom`, bare.predicted);
      const { maxShards, maxPoolSize } = this.context.limits;
      // Shards only add servers behind buffers: a direct plan widens to buffered edge shards.
      const placement = current.placement === "direct" ? "edge" : current.placement;
      const widest = withPins({ ...current, placement, shards: maxShards, poolSize: placement === "origin" ? maxPoolSize : 0 }, this.pins);
      return this.apply(widest, nowMs, `${trigger}: no plan meets the SLO at ${rate}; scaled out to the limits`);
    }
    if (!best || sinceChangeMs < this.options.minChangeIntervalMs) return undefined;
    // Compared at the planning rate, where the current plan may already miss (then it is not compared: it still holds at the estimate).
    const currentAtPlan = predictPlan(current, planArrival, context);
    if (currentAtPlan && best.predicted.costPerHourUsd <= currentAtPlan.predicted.costPerHourUsd * (1 - this.options.savingsShare)) {
      const saving = 1 - best.predicted.costPerHourUsd / currentAtPlan.predicted.costPerHourUsd;
      return this.apply({ ...current, ...best.plan }, nowMs, `${trigger}: cheaper by ${(saving * 100).toFixed(0)} % at ${rate}`, best.predicted);
    }
    return undefined;
  }

  /**
   * Sets the stream shards to what the open and recently refused streams need (StreamLoad): more at
   * once (at most once per urgentIntervalMs), fewer only after minChangeIntervalMs without a change.
   * Fewer shards strand no stream: each stays on its shard until it closes; only new streams go to
   * the first `streamShards`.
   */
  private replanStreams(nowMs: number): Decision | undefined {
    const demand = this.streamLoad.demand(nowMs, this.options.headroomShare);
    if (!demand) return undefined;
    const current = this.state.published.plan;
    const shards = Math.min(demand.shards, this.context.limits.maxShards);
    const isGrowing = shards > current.streamShards;
    if (shards === current.streamShards || nowMs - this.state.lastChangeAtMs < (isGrowing ? this.options.urgentIntervalMs : this.options.minChangeIntervalMs)) return undefined;
    const inputs: DecisionInputs = { ...(this.lastInputs ?? { ratePerS: 0, forecastRatePerS: 0, planRatePerS: 0, dispersion: 1, arrival: "poisson", windowS: 0 }), ongoingRows: this.ongoingRows(nowMs), streams: demand };
    const load = `${demand.openStreams} open and ${demand.refusedStreams} refused ${demand.key} streams in the last ${REFUSED_WINDOW_MS / SECOND_MS} s, ${demand.streamsPerShard} a shard`;
    return this.apply(withPins({ ...current, streamShards: shards }, this.pins), nowMs, `${load}: ${shards} stream shards`, undefined, inputs);
  }

  private tickReactive(nowMs: number): Decision | undefined {
    const ongoing = this.ongoingRows(nowMs);
    this.reactive.observe(nowMs, ongoing);
    const current = this.state.published.plan;
    // A direct plan has nothing the reactive rule scales (the platform runs more isolates itself).
    if (current.placement === "direct") return undefined;
    const field = current.placement === "origin" ? "poolSize" : "shards";
    const count = this.reactive.decide(nowMs, current[field]);
    if (count === current[field]) return undefined;
    this.lastInputs = { ratePerS: 0, forecastRatePerS: 0, planRatePerS: 0, dispersion: 1, arrival: "poisson", windowS: RAY_SERVE_DEFAULTS.lookBackMs / SECOND_MS, ongoingRows: ongoing };
    return this.apply(withPins({ ...current, [field]: count }, this.pins), nowMs, `reactive rule: ${this.reactive.meanOngoing().toFixed(1)} ongoing rows on average over ${RAY_SERVE_DEFAULTS.lookBackMs / SECOND_MS} s, target ${RAY_SERVE_DEFAULTS.targetOngoingRequests} per replica`);
  }

  private apply(plan: LivePlan, nowMs: number, reason: string, predicted?: Prediction, inputs = this.lastInputs): Decision | undefined {
    const before = this.state.published.plan;
    if (isSamePlan(before, plan)) return undefined;
    const version = this.state.published.version + 1;
    const decision: Decision = { atMs: nowMs, version, reason, before, after: plan, ...(inputs && { inputs }), ...(predicted && { predicted }) };
    if (predicted) this.lastPrediction = predicted;
    this.state = {
      ...this.state,
      published: { version, plan, decidedAtMs: nowMs },
      decisions: [decision, ...this.state.decisions].slice(0, this.options.maxDecisions),
      lastChangeAtMs: nowMs,
    };
    return decision;
  }

  /** The planning context with the live service line in place of the running placement's prior. */
  private planningContext(current: LivePlan): PlanningContext {
    const service = { ...this.context.service };
    const measured = this.serviceLine;
    const running = runtimeOf(current.placement);
    const prior = service[running];
    if (measured && prior) {
      // The live line replaces the profile of where the model runs; the other placement's profile
      // is scaled by the same measured/profile ratio (at a typical batch of 8 rows), so that a slow
      // machine or a cold start does not make the placement it is measured on look worse.
      const at = (line: ServiceLine) => line.baseMs + 8 * line.perRowMs;
      const ratio = at(prior) > 0 ? at(measured) / at(prior) : 1;
      for (const runtime of ["edge", "origin"] as const) {
        const line = service[runtime];
        if (runtime !== running && line) service[runtime] = { baseMs: line.baseMs * ratio, perRowMs: line.perRowMs * ratio };
      }
      service[running] = measured;
    }
    return { ...this.context, service, pins: this.pins };
  }

  private ongoingRows(nowMs: number): number {
    return this.overShards(nowMs, "ongoingRows");
  }

  /**
   * How long the rows not yet answered (queued and running: under lazy formation a queue beyond
   * capacity shows as ever larger batches) take to drain on the plan's servers (edge shards, or
   * origin replicas) at the service line with the path's CPU (replan.ts serviceOf), ms; 0 on the
   * direct path.
   */
  private backlogMs(nowMs: number): number {
    const { plan } = this.state.published;
    const context = this.planningContext(plan);
    const servers = plan.placement === "origin" ? Math.max(1, plan.poolSize) : plan.placement === "edge" ? Math.max(1, plan.shards) : 0;
    const rows = this.ongoingRows(nowMs);
    if (!context.service[runtimeOf(plan.placement)] || !servers || !rows) return 0;
    const line = serviceOf(context, plan.placement);
    return (rows * line.perItemMs) / servers + line.baseMs;
  }

  /** Rows queued over the shards (and direct isolates) as they last reported; a silent one counts as empty. */
  queuedRows(nowMs: number): number {
    return this.overShards(nowMs, "queuedRows");
  }

  /** The sum of a field over the shards that reported in the last SHARD_SILENCE_MS. */
  private overShards(nowMs: number, field: "queuedRows" | "ongoingRows"): number {
    let total = 0;
    for (const shard of this.shards.values()) if (nowMs - shard.atMs <= SHARD_SILENCE_MS) total += shard[field];
    return total;
  }

  /**
   * The last bin taken as final: settleMs ago, but no later than what every shard that reported in
   * the last SHARD_SILENCE_MS has covered (a busy buffer reports late; its bins are not yet zeros).
   */
  private settledBin(nowMs: number): number {
    let bin = Math.floor((nowMs - this.options.settleMs) / BIN_MS) - 1;
    for (const shard of this.shards.values()) if (nowMs - shard.atMs <= SHARD_SILENCE_MS) bin = Math.min(bin, shard.coveredBin);
    return bin;
  }

  /** Counts of bins from..to inclusive (0 where nothing arrived). */
  private countsBetween(from: number, to: number): number[] {
    const counts: number[] = [];
    for (let bin = from; bin <= to; bin++) counts.push(this.bins.get(bin) ?? 0);
    return counts;
  }

  /** Drops bins and samples older than the history. */
  private trim(nowMs: number): void {
    const oldest = Math.floor((nowMs - this.options.historyMs - this.options.settleMs - 2 * SECOND_MS) / BIN_MS);
    for (const bin of this.bins.keys()) if (bin < oldest) this.bins.delete(bin);
    if (this.firstBin !== undefined && this.firstBin < oldest) this.firstBin = oldest;
    if (this.sinceBin !== undefined && this.sinceBin < oldest) this.sinceBin = undefined;
    while (this.recent.length && this.recent[0]!.atMs < nowMs - 30 * SECOND_MS) this.recent.shift();
  }
}

function sum(values: number[]): number {
  return values.reduce((s, x) => s + x, 0);
}
