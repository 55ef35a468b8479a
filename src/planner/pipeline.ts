/**
 * The OCR pipeline ppocr (InferLine, SoCC'20): one end-to-end SLO over three models in tandem, a
 * simulation of the whole pipeline (predictPipeline) and InferLine's planner over it (planPipeline).
 * Pure: no I/O, no clock; seeded.
 *
 * What one image does (the model predictPipeline simulates):
 * 1. ppocr-det: one request of one row (its det input, `detPixels` pixels; only images of equal
 *    pixels share a batch). det is pinned to the origin.
 * 2. CPU post-processing in the Worker (DB boxes, crops): `cpuMs + cpuPerLineMs * lines`, a plain
 *    delay (Workers scale out, so images do not contend for it).
 * 3. ppocr-cls on all of the image's lines: rows = lines, split into requests of at most
 *    maxRowsPerRequest rows, all sent at once; cls is done when its last request is.
 * 4. ppocr-rec on the lines: one request per group of lines of one size class (a line's width
 *    rounded up to a multiple of 8, at least recMinWidth (the Worker pads a line to 320, as
 *    PaddleOCR does: src/ocr/line-crop.ts recWidthOf), at most the model's widest line, then to its
 *    class width:
 *    src/batching/size-classes.ts classWidthOf; without class widths every width is its own class),
 *    rows = the group's lines, split by maxRowsPerRequest; the batch key is the class width, so only
 *    lines of one class share a batch. The image is answered when its last rec request is.
 * An image without lines is answered after step 2.
 *
 * Each stage runs the runtime's own scheduler core (src/scheduler/scheduler.ts, through
 * src/scheduler/replay.ts replayJobs): lazy formation with the stage's (maxBatch, windowMs), FIFO by
 * batch key, admission bounded by maxQueueRows (a refused request fails its image: latency
 * Infinity). At the edge each of `shards` buffers is one scheduler with one server, and every
 * request goes to a shard uniformly at random (as src/buffer/dispatch.ts pickShard does; the draw is
 * a hash of the request's identity, so configurations compared on one sample see the same draws).
 * At the origin the stage's `poolSize` replicas serve one lazy queue of the stage's requests (the
 * optimizer's origin model, "lazy + shared"; src/buffer/model-server.ts gives each shard its share
 * of the pool, so with one shard it is exactly that); the origin pool is the sum of the stages'
 * replicas, as the registry sums the models' demand.
 *
 * Service time of a batch of k rows of per-row size x: baseMs + perRowMs * k * x / x0, the stage's
 * profile line (models/<name>/profile.json, the catalog's service.edge / service.origin) for its
 * runtime, scaled per row by the row's size over the size the profile measured (src/cli/profile.ts):
 * det: pixels over 640 x 640; rec: the batch's class width (all rows are padded to it) over 320;
 * cls: fixed 48 x 192 crops, no scaling. bench/lib/width-service.ts measured rec on the edge at
 * several widths (s = base + perRow k + perColumn k W, about 0.21 ms per column and row): the
 * profile's line scaled this way gives about 0.29 ms per column and row, an upper side estimate.
 * Service times are deterministic (no noise). Measured stage models replace the profiles where a
 * calibration ran (pipeline-calibration.ts: each line scaled by the servers' measured compute, the
 * server's handling per request on it, a measured off-server extra per request), and where every
 * stage shares one host's cores, every service slows with the host's load (hostContention).
 * Every request also pays the per-request latency the
 * planner adds (src/control/replan.ts): the model's overheadMs, its hopMs (every placement here is
 * buffered), and the edge-origin round trip at the origin (DEFAULT_ORIGIN_NETWORK_MS), added when
 * its batch ends. Memory caps of a batch at wide rows (src/edge/limits.ts maxBatchRows) are not
 * modelled: the manifests' maxBatch (the measured range) bounds the plans instead.
 *
 * Cost: each stage by the repository's cost model (cost-model.ts costPerHour) from the simulated
 * stream: requests per second, requests per batch, shards, replicas, the mean service per batch, a
 * shard's window open per batch (the time its oldest request waited for company on a free server)
 * and in flight per batch (service and the per-request overheads; waiting for a busy server
 * overlaps another batch's flight, so it adds nothing), plus the Worker CPU of the post-processing.
 *
 * planPipeline: InferLine's planner. Start from the lowest-latency configuration (every stage at
 * maxBatch 1, window 0, on its fastest runtime, with servers for at most START_UTILISATION each,
 * doubled until the SLO holds), then repeatedly take the step that lowers the cost most while the
 * simulated end-to-end percentile stays within the SLO and no server is busier than
 * maxUtilisation (the controller's 0.85 headroom). The steps (pipelineSteps), per stage: the next
 * larger maxBatch or window (windows only above maxBatch 1, where they do nothing), one shard or
 * replica fewer, or the cheaper placement (origin to edge, with shards for START_UTILISATION).
 * Where a step holds it is followed along its axis, as InferLine applies an action while it keeps
 * helping: maxBatch and window on while each value is cheaper than the one before; shards and
 * replicas down to the fewest that hold (bisection, taking feasibility as monotone in the count);
 * a move to the edge that misses with its shards goes up to the fewest that hold. Steps that free
 * origin replicas are tried first: a step that keeps the replicas saves at most what the rest of
 * the plan costs, so a replica step saving more is the best step without trying the others.
 * Every configuration is evaluated on one seeded sample of images (common random numbers): the
 * same images, line widths and shard draws. Stage runs are cached by the configuration of the stage
 * and those upstream (a stage does not depend on the stages after it); a configuration whose
 * servers would be busier than maxUtilisation on average misses without a simulation, and a
 * simulation stops as soon as more images are late than the percentile allows. A step that
 * misses or does not help is not tried again until no other step helps; then every step is
 * checked once more, so the plan returned has no single step (pipelineSteps) that is feasible and
 * cheaper (isCheaper: by more than a relative 1e-6). The baseline is the one InferLine compares
 * against: each stage planned alone by the single-model optimizer (optimizer.ts) with the SLO split
 * evenly in ms at the same percentile, the stage's rows as Poisson arrivals at their mean size,
 * then simulated together on the same sample. When the baseline meets the SLO on the sample and
 * the search from the lowest-latency start ends dearer, the search also runs from the baseline, so
 * the plan never costs more than a feasible baseline. With sloWindows a configuration is feasible
 * only if the SLO also holds in the share asked of the measurement windows (SloWindows: each window
 * a sample of its own, simulated alone): the percentile is measured over windows, and a plan that
 * holds on one long sample holds on average but misses in the bursty ones.
 */
import { toMarkovianArrival } from "./arrival";
import { type CostOptions } from "./cost-model";
import { type Plan, geometricWindows, optimize, upTo } from "./optimizer";
import { type ImageMix, sampleImages } from "./pipeline-mix";
import { type PipelineConfig, type PipelineCpu, type PipelineImage, type PipelineModels, type PipelinePrediction, type PipelineStage, type StageConfig, type StagePlacement, configKey, DEFAULT_ORIGIN_NETWORK_MS, PIPELINE_STAGES, PipelineEvaluator, SloWindows } from "./pipeline-simulation";
import { type PipelineOverrides, type PipelineStep, type StepContext, DEFAULT_MAX_UTILISATION, isCheaper, meetsPipelineSlo, PIPELINE_MAX_BATCHES, pipelineOverrides, pipelineStepContext, pipelineSteps, serversFor, START_UTILISATION } from "./pipeline-steps";
import { DEFAULT_PRICES, type Prices } from "./prices";

export * from "./pipeline-mix";
export * from "./pipeline-simulation";
export * from "./pipeline-steps";
export * from "./pipeline-calibration";

/** What planPipeline plans. */
export interface PlanPipelineInput {
  models: PipelineModels;
  slo: { percentile: number; ms: number };
  cpu: PipelineCpu;
  /** The sample: given images (in arrival order), or `sampleImages` of `mix` at `ratePerS` (Poisson) or at the given `arrivalsMs`. */
  images?: readonly PipelineImage[];
  mix?: ImageMix;
  ratePerS?: number;
  arrivalsMs?: ArrayLike<number>;
  /** Images in the sample drawn from `mix`; default 2000. */
  sampleSize?: number;
  /** Seed of the sample and the shard draws; default 1. */
  seed?: number;
  /** Images simulated first and left out of the percentile; default sample / 20. */
  warmupImages?: number;
  /** Most shards per stage (default 16) and origin replicas per stage (default 64). */
  limits?: { maxShards?: number; maxPoolSize?: number };
  /** Highest busy share of any server (default 0.85, the controller's PLAN_UTILISATION). */
  maxUtilisation?: number;
  /** Requests per second one shard takes at most (a Durable Object's soft limit; default 1000). */
  maxRequestsPerSPerShard?: number;
  originNetworkMs?: number;
  prices?: Prices;
  costOptions?: CostOptions;
  /** Plan the even-split baseline too; default true. */
  baseline?: boolean;
  /**
   * The SLO over measurement windows (SloWindows): a plan must also keep the percentile within `ms`
   * (default slo.ms) in at least `share` of the windows. The windows are `samples`, or `count`
   * (default 40) samples of `images` images drawn from `mix` at `ratePerS`.
   */
  sloWindows?: { share: number; ms?: number } & ({ samples: readonly (readonly PipelineImage[])[] } | { images: number; count?: number });
}

/** A configuration with its prediction. */
export interface PipelinePlan {
  config: PipelineConfig;
  prediction: PipelinePrediction;
  /** Predicted end-to-end latency at the SLO's percentile, ms. */
  sloLatencyMs: number;
  costUsdPerHour: number;
  /** Origin replicas (all stages). */
  poolSize: number;
  /** MODEL_OVERRIDES entries for the three models (src/config.ts). */
  stages: PipelineOverrides;
  /** Whether it meets the SLO (and the utilisation bound) on the sample, and in sloWindows' share of the windows. */
  meetsSlo: boolean;
  /** With sloWindows, the share of the windows within the SLO (evaluated only where the sample meets it). */
  windowShare?: number;
}

/** What planPipeline answers. */
export interface PlanPipelineResult {
  plan: PipelinePlan | null;
  reason?: string;
  /** InferLine's baseline: each stage planned alone for slo.ms / 3 at the same percentile; null when a stage has no plan. */
  baseline: { plan: PipelinePlan | null; stagePlans: Record<PipelineStage, Plan | null>; reason?: string };
  /** evaluations: configurations simulated; stageRuns: stage simulations (the rest came from the cache); steps: greedy steps taken. */
  stats: { images: number; evaluations: number; stageRuns: number; steps: number; startedFrom: "lowest-latency" | "baseline" };
}

export function planPipeline(input: PlanPipelineInput): PlanPipelineResult {
  const seed = input.seed ?? 1;
  let images = input.images;
  if (!images) {
    if (!input.mix || !(input.ratePerS! > 0 || input.arrivalsMs?.length)) throw new RangeError("planPipeline needs `images`, or `mix` and `ratePerS` > 0 or `arrivalsMs`");
    images = sampleImages(input.mix, input.arrivalsMs?.length ? { arrivalsMs: input.arrivalsMs } : { ratePerS: input.ratePerS! }, input.sampleSize ?? 2000, seed);
  }
  const { models, slo } = input;
  const options = { seed, ...(input.originNetworkMs !== undefined && { originNetworkMs: input.originNetworkMs }), ...(input.prices && { prices: input.prices }), ...(input.costOptions && { costOptions: input.costOptions }) };
  const evaluator = new PipelineEvaluator(images, models, input.cpu, options);
  const windows = input.sloWindows && new SloWindows(windowSamples(input, seed), models, input.cpu, { percentile: slo.percentile, ms: input.sloWindows.ms ?? slo.ms }, options);
  const warmup = input.warmupImages ?? Math.floor(images.length / 20);
  const maxUtilisation = input.maxUtilisation ?? DEFAULT_MAX_UTILISATION;
  const context = pipelineStepContext(evaluator, { ...input.limits, ...(input.maxRequestsPerSPerShard !== undefined && { maxRequestsPerSPerShard: input.maxRequestsPerSPerShard }) });
  const { maxShards, maxPoolSize, minShards, rowsPerS, meanSize } = context;

  const prices = input.prices ?? DEFAULT_PRICES;
  let evaluations = 0;
  const plans = new Map<string, PipelinePlan>();
  /** Servers' busy share at least (the stage's rows at their mean size, batches as full as maxBatch allows). */
  const busyBound = (config: PipelineConfig, stage: PipelineStage): number => {
    const c = config[stage];
    const line = models[stage].service[c.placement]!;
    const perRowMs = line.baseMs / c.maxBatch + (line.perRowMs * meanSize[stage]) / models[stage].profiledSize;
    return (rowsPerS[stage] * perRowMs) / 1000 / Math.max(1, c.placement === "edge" ? c.shards : c.poolSize);
  };
  const screenedOut = new Map<string, PipelinePlan>();
  const evaluate = (config: PipelineConfig, isReported = false): PipelinePlan => {
    const key = configKey(config, PIPELINE_STAGES.length - 1);
    const known = plans.get(key) ?? (isReported ? undefined : screenedOut.get(key));
    if (known) return known;
    const simulate = (): PipelinePrediction => {
      evaluations++;
      return evaluator.predict(config, slo.percentile, warmup);
    };
    // A configuration that keeps a server busier than maxUtilisation on average, or whose
    // simulation shows too many images late, misses (its full prediction is computed only if read).
    const isOverBusy = PIPELINE_STAGES.some((stage) => busyBound(config, stage) > maxUtilisation);
    if (!isReported && !isOverBusy) evaluations++;
    const screened = isReported || isOverBusy ? undefined : evaluator.screen(config, slo.percentile, warmup, slo.ms);
    if (!isReported && !screened) {
      let prediction: PipelinePrediction | undefined;
      const plan = { config, sloLatencyMs: Infinity, costUsdPerHour: Infinity, poolSize: PIPELINE_STAGES.reduce((n, s) => n + (config[s].placement === "origin" ? config[s].poolSize : 0), 0), stages: pipelineOverrides(config, models), meetsSlo: false } as PipelinePlan;
      Object.defineProperty(plan, "prediction", { enumerable: true, get: () => (prediction ??= simulate()) });
      screenedOut.set(key, plan);
      return plan;
    }
    const prediction = screened ?? simulate();
    const meetsOnSample = meetsPipelineSlo(prediction, slo, maxUtilisation);
    const windowShare = windows && meetsOnSample ? windows.share(config) : undefined;
    const plan: PipelinePlan = {
      config,
      prediction,
      sloLatencyMs: prediction.percentileMs,
      costUsdPerHour: prediction.cost.totalUsdPerHour,
      poolSize: prediction.poolSize,
      stages: pipelineOverrides(config, models),
      meetsSlo: meetsOnSample && (windowShare === undefined || windowShare >= input.sloWindows!.share),
      ...(windowShare !== undefined && { windowShare }),
    };
    plans.set(key, plan);
    return plan;
  };

  /**
   * Where a step leads (see the module doc): maxBatch and window on along their axis while each
   * value is feasible and cheaper than the one before; shards and replicas, when one fewer holds,
   * down to the fewest that hold (by bisection, starting where the last search ended); placement,
   * when the edge with servers for START_UTILISATION misses, up to the fewest shards that hold.
   * Where a single step is feasible and cheaper, so is where it leads.
   */
  const landed = new Map<string, number>();
  const land = (step: PipelineStep, currentUsd: number): PipelinePlan => {
    const first = evaluate(step.config);
    const c = step.config[step.stage];
    const id = `${step.stage}/${step.move}`;
    const count = c.placement === "edge" ? c.shards : c.poolSize;
    const at = (n: number): PipelinePlan => evaluate({ ...step.config, [step.stage]: c.placement === "edge" ? { ...c, shards: n } : { ...c, poolSize: n } });
    /** The fewest in [lo, hi] that holds, else `good` (which holds at hi + 1, or is the fallback); tries `guess` (the last answer) first. */
    const fewest = (lo: number, hi: number, good: PipelinePlan, guess?: number): PipelinePlan => {
      if (guess !== undefined && guess >= lo && guess <= hi + 1) {
        const plan = guess === hi + 1 ? good : at(guess);
        if (plan.meetsSlo) {
          if (guess === lo) return plan;
          const below = at(guess - 1);
          return below.meetsSlo ? fewest(lo, guess - 2, below) : plan;
        }
        return fewest(guess + 1, hi, good);
      }
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const plan = at(mid);
        if (plan.meetsSlo) (good = plan), (hi = mid - 1);
        else lo = mid + 1;
      }
      return good;
    };
    let result = first;
    if ((step.move === "maxBatch" || step.move === "window") && first.meetsSlo && isCheaper(first.costUsdPerHour, currentUsd)) {
      // On along the same axis while each value is feasible and cheaper than the one before.
      for (;;) {
        const next = pipelineSteps(result.config, context).find((s) => s.stage === step.stage && s.move === step.move);
        const plan = next && evaluate(next.config);
        if (!plan || !plan.meetsSlo || !isCheaper(plan.costUsdPerHour, result.costUsdPerHour)) break;
        result = plan;
      }
    } else if ((step.move === "shards" || step.move === "pool") && first.meetsSlo) {
      const fewestPlan = fewest(c.placement === "edge" ? minShards[step.stage] : 1, count - 1, first, landed.get(id));
      landed.set(id, fewestPlan.config[step.stage].placement === "edge" ? fewestPlan.config[step.stage].shards : fewestPlan.config[step.stage].poolSize);
      // Fewer is nearly always cheaper; where the cost model says otherwise, the one step down stands.
      result = fewestPlan.costUsdPerHour <= first.costUsdPerHour ? fewestPlan : first;
    } else if (step.move === "placement" && !first.meetsSlo) {
      result = fewest(count + 1, maxShards, first, landed.get(id));
      if (result.meetsSlo) landed.set(id, result.config[step.stage].shards);
    }
    return result;
  };

  /** Greedy descent from a feasible plan. */
  const descend = (start: PipelinePlan): { plan: PipelinePlan; steps: number } => {
    let current = start;
    let steps = 0;
    const blocked = new Set<string>();
    const replicaUsd = (plan: PipelinePlan) => plan.poolSize * prices.origin.usdPerHour;
    for (let isFinalCheck = false; ; ) {
      let best: PipelinePlan | undefined;
      const consider = (step: PipelineStep): void => {
        const id = `${step.stage}/${step.move}`;
        if (!isFinalCheck && blocked.has(id)) return;
        const candidate = land(step, current.costUsdPerHour);
        if (!candidate.meetsSlo || !isCheaper(candidate.costUsdPerHour, current.costUsdPerHour)) {
          blocked.add(id);
          return;
        }
        if (!best || candidate.costUsdPerHour < best.costUsdPerHour) best = candidate;
      };
      // Steps that free origin replicas first: a step that keeps the replicas saves at most what
      // the rest of the plan costs, so a replica step saving more than that is the best step.
      const candidates = pipelineSteps(current.config, context);
      const freesReplicas = (step: PipelineStep) => step.move === "pool" || step.move === "placement";
      candidates.filter(freesReplicas).forEach(consider);
      const isBestKnown = best !== undefined && current.costUsdPerHour - best.costUsdPerHour >= current.costUsdPerHour - replicaUsd(current);
      if (!isBestKnown) candidates.filter((s) => !freesReplicas(s)).forEach(consider);
      if (best) {
        current = best;
        steps++;
        isFinalCheck = false;
      } else if (!isFinalCheck && blocked.size > 0) {
        isFinalCheck = true;
        blocked.clear();
      } else return { plan: current, steps };
    }
  };

  // The baseline: each stage alone, the SLO split evenly.
  const baseline = input.baseline === false ? { plan: null, stagePlans: { det: null, cls: null, rec: null } } : evenSplitBaseline(input, evaluate, rowsPerS, meanSize, context);

  // The lowest-latency start: maxBatch 1, window 0, fastest runtime, servers for START_UTILISATION, doubled until feasible.
  const fastest = (stage: PipelineStage): StagePlacement => {
    const m = models[stage];
    const latencyOf = (p: StagePlacement) => m.service[p]!.baseMs + (m.service[p]!.perRowMs * meanSize[stage]) / m.profiledSize + evaluator.extraMs(stage, p);
    return m.placements.reduce((a, b) => (latencyOf(b) < latencyOf(a) ? b : a));
  };
  const startOf = (scale: number): PipelineConfig => {
    const stageStart = (stage: PipelineStage): StageConfig => {
      const placement = fastest(stage);
      const servers = serversFor(models[stage], placement, rowsPerS[stage], meanSize[stage], 1, START_UTILISATION) * scale;
      return placement === "edge"
        ? { placement, maxBatch: 1, windowMs: 0, shards: Math.min(maxShards, Math.max(minShards[stage], servers)), poolSize: 0, maxRowsPerRequest: 1 }
        : { placement, maxBatch: 1, windowMs: 0, shards: minShards[stage], poolSize: Math.min(maxPoolSize, servers), maxRowsPerRequest: 1 };
    };
    return { det: stageStart("det"), cls: stageStart("cls"), rec: stageStart("rec") };
  };
  let start: PipelinePlan | undefined;
  for (let scale = 1; ; scale *= 2) {
    const candidate = evaluate(startOf(scale));
    if (candidate.meetsSlo) {
      start = candidate;
      break;
    }
    const atLimits = PIPELINE_STAGES.every((s) => (candidate.config[s].placement === "edge" ? candidate.config[s].shards >= maxShards : candidate.config[s].poolSize >= maxPoolSize));
    if (atLimits || scale >= 1024) break;
  }

  let result: { plan: PipelinePlan; steps: number } | undefined = start && descend(start);
  let startedFrom: PlanPipelineResult["stats"]["startedFrom"] = "lowest-latency";
  if (baseline.plan?.meetsSlo && (!result || isCheaper(baseline.plan.costUsdPerHour, result.plan.costUsdPerHour))) {
    const fromBaseline = descend(baseline.plan);
    if (!result || isCheaper(fromBaseline.plan.costUsdPerHour, result.plan.costUsdPerHour)) {
      result = fromBaseline;
      startedFrom = "baseline";
    }
  }
  const stats = { images: images.length, evaluations, stageRuns: evaluator.stageRuns, steps: result?.steps ?? 0, startedFrom };
  if (!result) {
    return { plan: null, reason: `even the lowest-latency configuration (up to ${maxShards} shards and ${maxPoolSize} replicas per stage) misses p${slo.percentile * 100} <= ${slo.ms} ms or keeps a server over ${maxUtilisation} busy`, baseline, stats };
  }
  return { plan: result.plan, baseline, stats };
}

/** InferLine's baseline: each stage planned alone by the single-model optimizer for slo.ms / 3, then simulated together. */
function evenSplitBaseline(
  input: PlanPipelineInput,
  evaluate: (config: PipelineConfig, isReported?: boolean) => PipelinePlan,
  rowsPerS: Record<PipelineStage, number>,
  meanSize: Record<PipelineStage, number>,
  context: StepContext,
): PlanPipelineResult["baseline"] {
  const { models, slo } = input;
  const stageSlo = { percentile: slo.percentile, ms: slo.ms / PIPELINE_STAGES.length };
  const networkMs = input.originNetworkMs ?? DEFAULT_ORIGIN_NETWORK_MS;
  const stagePlans = {} as Record<PipelineStage, Plan | null>;
  const config = {} as PipelineConfig;
  let missing: string | undefined;
  for (const stage of PIPELINE_STAGES) {
    const m = models[stage];
    if (!(rowsPerS[stage] > 0)) {
      stagePlans[stage] = null;
      config[stage] = { placement: m.placements[0]!, maxBatch: 1, windowMs: 0, shards: 1, poolSize: m.placements[0] === "origin" ? 1 : 0 };
      continue;
    }
    // Its rows as Poisson requests, each of the mean size; the controller's search grid and limits.
    const placements = Object.fromEntries(
      m.placements.map((p) => {
        const line = m.service[p]!;
        return [p, { service: { kind: "linear" as const, baseMs: line.baseMs, perItemMs: (line.perRowMs * meanSize[stage]) / m.profiledSize }, extraMs: m.hopMs + (p === "origin" ? networkMs : 0) }];
      }),
    );
    const maxBatch = [...new Set([...PIPELINE_MAX_BATCHES.filter((b) => b < m.maxBatch), 3, 6, 12, m.maxBatch].filter((b) => b <= m.maxBatch))].sort((a, b) => a - b);
    const result = optimize({
      arrival: toMarkovianArrival({ kind: "poisson", ratePerS: rowsPerS[stage] }),
      slo: stageSlo,
      placements,
      overheadMs: m.overheadMs,
      space: { maxBatch, windowMs: [0, ...geometricWindows(1, 500, 20)], shards: upTo(context.maxShards).filter((s) => s >= context.minShards[stage]), poolSize: upTo(context.maxPoolSize) },
      alternatives: 0,
      maxFixedSolves: 60,
      maxUtilisation: input.maxUtilisation ?? DEFAULT_MAX_UTILISATION,
      ...(input.prices && { prices: input.prices }),
      ...(input.costOptions && { costOptions: input.costOptions }),
    });
    const plan = result.plan;
    stagePlans[stage] = plan;
    if (!plan || plan.placement === "direct") {
      missing ??= `${m.model}: ${result.reason ?? "no buffered plan"}`;
      continue;
    }
    config[stage] = { placement: plan.placement, maxBatch: plan.maxBatch, windowMs: plan.windowMs, shards: plan.shards, poolSize: plan.placement === "origin" ? plan.poolSize : 0, maxRowsPerRequest: Math.min(m.maxRowsPerRequest, plan.maxBatch) };
  }
  if (missing) return { plan: null, stagePlans, reason: missing };
  return { plan: evaluate(config, true), stagePlans };
}

/** sloWindows' samples: given, or drawn from the mix at the sample's rate (seeds after the sample's). */
function windowSamples(input: PlanPipelineInput, seed: number): ReadonlyArray<readonly PipelineImage[]> {
  const w = input.sloWindows!;
  if ("samples" in w) return w.samples;
  if (!input.mix || !(input.ratePerS! > 0)) throw new RangeError("planPipeline draws sloWindows from `mix` at `ratePerS`; give `samples` otherwise");
  return Array.from({ length: w.count ?? 40 }, (_, k) => sampleImages(input.mix!, { ratePerS: input.ratePerS! }, w.images, seed + 1 + k));
}
