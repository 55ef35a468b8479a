/**
 * The ppocr pipeline's simulation (see src/planner/pipeline.ts for the model): its types, the
 * per-stage discrete-event runs on the runtime's scheduler (PipelineEvaluator, cached by the
 * configurations upstream) and predictPipeline. Pure: no I/O, no clock; seeded.
 */
import type { ServiceLine } from "../scheduler/service-estimate";
import { replayJobs } from "../scheduler/replay";
import { type CostBreakdown, type CostInput, type CostOptions, costPerHour } from "./cost-model";
import { DEFAULT_PRICES, type Prices } from "./prices";

/** The stages, in order. */
export const PIPELINE_STAGES = ["det", "cls", "rec"] as const;
/** One of PIPELINE_STAGES. */
export type PipelineStage = (typeof PIPELINE_STAGES)[number];
/** Where a stage runs: the edge's buffers (WASM in the Durable Object) or the origin pool. */
export type StagePlacement = "edge" | "origin";

/** Most of the host hostContention lets a sample load (c U); beyond it every server slows by SATURATED_SLOWDOWN. */
const MAX_HOST_LOAD = 0.95;
const SATURATED_SLOWDOWN = 1 / (1 - MAX_HOST_LOAD);

/** Round trip edge -> origin added at the origin, ms (what src/control/model-controller.ts adds until batches are measured). */
export const DEFAULT_ORIGIN_NETWORK_MS = 1;

/** What the pipeline needs to know of one stage's model. */
export interface StageModel {
  /** The model's name (a MODEL_OVERRIDES key). */
  model: string;
  /** Service time per batch on each runtime (the profile's fitted line). */
  service: Partial<Record<StagePlacement, ServiceLine>>;
  /** Per-row size at which the service was measured (det: pixels; rec: width; cls: 1). */
  profiledSize: number;
  /** Per-request latency outside the batch on the direct path, ms (catalog overheadMs). */
  overheadMs: number;
  /** What the buffer hop adds, ms (catalog hopMs). */
  hopMs: number;
  /**
   * Per-request latency off the servers beyond overheadMs, hopMs and the origin round trip,
   * measured on the running stack per placement (the Worker building and reading the stage's
   * tensors, the hop: pipeline-calibration.ts), ms; negative where those defaults over-count (the
   * sum stays >= 0).
   */
  measuredExtraMs?: Partial<Record<StagePlacement, number>>;
  /** Largest maxBatch a plan may use (the manifest's). */
  maxBatch: number;
  /** Most rows in one request (the manifest's maxRowsPerRequest). */
  maxRowsPerRequest: number;
  /** Most rows a buffer queues (the manifest's maxQueueRows). */
  maxQueueRows: number;
  /** Placements the stage may use. */
  placements: StagePlacement[];
}

/** The three stages' models, and rec's size classes. */
export interface PipelineModels {
  det: StageModel;
  cls: StageModel;
  rec: StageModel;
  /** rec class widths, ascending (the manifest's batching.sizeClasses.widths); undefined: every width its own class. */
  recClassWidths?: number[];
  /** rec's widest line (its input's maxShape); default 1280. */
  recMaxWidth?: number;
  /** rec's narrowest request width (the Worker pads a line to at least this: src/ocr/line-crop.ts REC_MIN_WIDTH, 320); default 8. */
  recMinWidth?: number;
  /**
   * Where every stage shares one host (`npm start`: the edge and the origin replicas on one machine's
   * cores), how much each core kept busy slows every server: service times are multiplied by
   * 1 / (1 - hostContention * U), U the cores the sample keeps busy at full speed (every server's
   * busy time and the Worker's post-processing per image, times the arrival rate:
   * PipelineEvaluator.busyCores). Measured by
   * pipeline-calibration.ts calibrateContention. Undefined or 0: servers on cores of their own.
   */
  hostContention?: number;
}

/** One stage's configuration. */
export interface StageConfig {
  placement: StagePlacement;
  maxBatch: number;
  windowMs: number;
  /** Buffers (Durable Objects) at the edge; at the origin they only cost (the pool serves one queue). */
  shards: number;
  /** Origin replicas serving this stage (0 at the edge). */
  poolSize: number;
  /** Rows per request; default min(the model's maxRowsPerRequest, maxBatch). */
  maxRowsPerRequest?: number;
}

/** A configuration of the whole pipeline. */
export type PipelineConfig = Record<PipelineStage, StageConfig>;

/** One image: when it arrives, its det input's pixels, and the widths of its text lines (as PP-OCR prepares a crop: height 48). */
export interface PipelineImage {
  arrivalMs: number;
  detPixels: number;
  lineWidths: number[];
}

/** CPU work in the Worker between det and cls, ms. */
export interface PipelineCpu {
  cpuMs: number;
  cpuPerLineMs: number;
}

/** What predictPipeline simulates. */
export interface PredictPipelineInput {
  /** Images in arrival order. */
  images: readonly PipelineImage[];
  models: PipelineModels;
  config: PipelineConfig;
  cpu: PipelineCpu;
  /** The percentile reported as percentileMs (e.g. 0.95). */
  percentile: number;
  /** Seed of the shard draws; default 1. */
  seed?: number;
  /** Images simulated first and left out of the latency statistics; default 0. */
  warmupImages?: number;
  /** Default DEFAULT_ORIGIN_NETWORK_MS. */
  originNetworkMs?: number;
  prices?: Prices;
  costOptions?: CostOptions;
}

/** Percentiles and mean, ms. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

/** What the simulation says of one stage. */
export interface StagePrediction {
  /** Per image, from the stage's first request to its last answer (overheads included), ms. */
  latencyMs: LatencySummary;
  /** Busy share of each server (a shard's Durable Object at the edge, a replica at the origin). */
  utilisation: number;
  /** Service time of all its batches (all images, the warm-up included), ms. */
  busyMs: number;
  /** Requests and batches (all images). */
  requests: number;
  batches: number;
  /** Servers: shards at the edge, replicas at the origin. */
  servers: number;
  requestsPerS: number;
  rowsPerS: number;
  /** Rows and requests per batch. */
  meanBatchRows: number;
  meanBatchRequests: number;
  /** Requests refused at admission (queue full). */
  refused: number;
  cost: CostBreakdown;
}

/** What predictPipeline predicts. */
export interface PipelinePrediction {
  /** End-to-end latency of each image, in input order, ms (Infinity when one of its requests was refused). */
  latenciesMs: Float64Array;
  percentile: number;
  /** The end-to-end latency at `percentile`, ms (over the images after the warm-up). */
  percentileMs: number;
  latencyMs: LatencySummary;
  /** Images that failed (a request refused). */
  failedImages: number;
  stages: Record<PipelineStage, StagePrediction>;
  /** Origin replicas, all stages. */
  poolSize: number;
  cost: { totalUsdPerHour: number; usdPerMillionImages: number; postProcessingCpuUsdPerHour: number };
}

/** Simulates the pipeline on `input.images` (see the module doc); deterministic for a given seed. */
export function predictPipeline(input: PredictPipelineInput): PipelinePrediction {
  return new PipelineEvaluator(input.images, input.models, input.cpu, input).predict(input.config, input.percentile, input.warmupImages ?? 0);
}

/**
 * The SLO as it is measured: an operator reads the percentile over a window of a few hundred
 * images, and that percentile moves with the window's arrivals. A plan that holds on one long
 * sample holds on average and misses in a bursty window. Each window is a sample of its own,
 * simulated alone from an empty system under its own host load (hostContention); `share(config)`
 * is the share of the windows whose percentile latency is within `ms`.
 */
export class SloWindows {
  private readonly evaluators: PipelineEvaluator[];
  private readonly shares = new Map<string, number>();

  constructor(
    samples: readonly (readonly PipelineImage[])[],
    models: PipelineModels,
    cpu: PipelineCpu,
    readonly slo: { percentile: number; ms: number },
    options: { seed?: number; originNetworkMs?: number; prices?: Prices; costOptions?: CostOptions } = {},
  ) {
    if (!samples.length) throw new RangeError("SloWindows needs at least one window");
    this.evaluators = samples.map((images) => new PipelineEvaluator(images, models, cpu, options));
  }

  share(config: PipelineConfig): number {
    const key = configKey(config, PIPELINE_STAGES.length - 1);
    let share = this.shares.get(key);
    if (share === undefined) {
      // screen stops a window's simulation once more images are late than the percentile allows.
      const within = this.evaluators.filter((e) => (e.screen(config, this.slo.percentile, 0, this.slo.ms)?.percentileMs ?? Infinity) <= this.slo.ms).length;
      this.shares.set(key, (share = within / this.evaluators.length));
    }
    return share;
  }
}

/** A stage's simulated requests, per image. */
interface StageRun {
  /** When the image's last request of this stage was answered (overheads included), ms; NaN when one was refused or the image failed upstream. */
  doneMs: Float64Array;
  requests: number;
  rows: number;
  batches: number;
  busyMs: number;
  windowWaitMs: number;
  serverWaitMs: number;
  refused: number;
}

/** One unit of a stage's work for one image: `rows` rows of per-row size `size`, split into requests. */
interface Unit {
  rows: number;
  size: number;
}

/**
 * Simulates configurations on one sample of images, caching each stage's run under the
 * configurations of that stage and those before it.
 */
export class PipelineEvaluator {
  private readonly units: Record<PipelineStage, Unit[][]>;
  private readonly cache = new Map<string, StageRun>();
  private readonly aborted = new Set<string>();
  private readonly keys = new Map<number, string>();
  private readonly arrivals: Float64Array;
  private readonly seed: number;
  private readonly originNetworkMs: number;
  private readonly prices: Prices;
  private readonly costOptions: CostOptions;
  /** Sample span (first to last arrival), ms; at least 1. */
  readonly spanMs: number;
  readonly meanLines: number;
  /** Stage simulations run (cache misses). */
  stageRuns = 0;
  /** What the pass under way multiplies service times by (hostContention). */
  private slowdown = 1;

  constructor(
    readonly images: readonly PipelineImage[],
    readonly models: PipelineModels,
    readonly cpu: PipelineCpu,
    options: { seed?: number; originNetworkMs?: number; prices?: Prices; costOptions?: CostOptions } = {},
  ) {
    this.seed = options.seed ?? 1;
    this.originNetworkMs = options.originNetworkMs ?? DEFAULT_ORIGIN_NETWORK_MS;
    this.prices = options.prices ?? DEFAULT_PRICES;
    this.costOptions = options.costOptions ?? {};
    const n = images.length;
    this.spanMs = n > 1 ? Math.max(1, images[n - 1]!.arrivalMs - images[0]!.arrivalMs) : 1;
    this.meanLines = n ? images.reduce((s, im) => s + im.lineWidths.length, 0) / n : 0;
    this.arrivals = Float64Array.from(images, (im) => im.arrivalMs);
    const maxWidth = models.recMaxWidth ?? 1280;
    const minWidth = models.recMinWidth ?? 8;
    this.units = {
      det: images.map((im) => [{ rows: 1, size: im.detPixels }]),
      cls: images.map((im) => (im.lineWidths.length ? [{ rows: im.lineWidths.length, size: 1 }] : [])),
      rec: images.map((im) => {
        const byClass = new Map<number, number>();
        for (const w of im.lineWidths) {
          const width = classWidth(models.recClassWidths, Math.min(maxWidth, Math.max(minWidth, Math.ceil(w / 8) * 8)));
          byClass.set(width, (byClass.get(width) ?? 0) + 1);
        }
        return [...byClass].sort((a, b) => a[0] - b[0]).map(([size, rows]) => ({ rows, size }));
      }),
    };
  }

  /** Mean per-row size of a stage's rows over the sample (det: pixels; rec: request width; cls: 1), or its profiled size when it has none. */
  meanRowSize(stage: PipelineStage): number {
    let rows = 0;
    let sum = 0;
    for (const units of this.units[stage]) for (const u of units) (rows += u.rows), (sum += u.rows * u.size);
    return rows > 0 ? sum / rows : this.models[stage].profiledSize;
  }

  /** Per-request latency outside the batch servers of `stage` at `placement`, ms. */
  extraMs(stage: PipelineStage, placement: StagePlacement): number {
    const m = this.models[stage];
    return Math.max(0, m.overheadMs + m.hopMs + (placement === "origin" ? this.originNetworkMs : 0) + (m.measuredExtraMs?.[placement] ?? 0));
  }

  /** Rows per request of a stage's configuration. */
  rowsPerRequest(stage: PipelineStage, c: StageConfig): number {
    return Math.max(1, Math.min(c.maxRowsPerRequest ?? this.models[stage].maxRowsPerRequest, c.maxBatch));
  }

  /** The prediction for `config`. */
  predict(config: PipelineConfig, percentile: number, warmupImages = 0): PipelinePrediction {
    return this.predictOrAbort(config, percentile, warmupImages)!;
  }

  /**
   * The prediction for `config`, or undefined as soon as the simulation shows that its latency at
   * `percentile` exceeds `sloMs` (more measured images already later than sloMs than the
   * percentile allows; a stage's answer only comes later as the stages after it run).
   */
  screen(config: PipelineConfig, percentile: number, warmupImages: number, sloMs: number): PipelinePrediction | undefined {
    return this.predictOrAbort(config, percentile, warmupImages, sloMs);
  }

  /**
   * With hostContention c: one pass at full speed gives the busy cores U, and the prediction is the
   * pass with every service time slowed by 1 / (1 - c U) (busy time grows by that factor too, so
   * that is where the slowed load and the slowdown agree). A host busier than that can carry
   * (c U >= MAX_HOST_LOAD) slows by SATURATED_SLOWDOWN, which no plan survives.
   */
  private predictOrAbort(config: PipelineConfig, percentile: number, warmupImages: number, sloMs?: number): PipelinePrediction | undefined {
    const contention = this.models.hostContention ?? 0;
    if (!(contention > 0)) return this.pass(config, percentile, warmupImages, sloMs);
    const free = this.pass(config, percentile, warmupImages)!;
    const load = contention * this.busyCores(free);
    this.slowdown = load < MAX_HOST_LOAD ? 1 / (1 - load) : SATURATED_SLOWDOWN;
    try {
      return this.pass(config, percentile, warmupImages, sloMs);
    } finally {
      this.slowdown = 1;
    }
  }

  /**
   * Cores a prediction keeps busy (at its speed): every stage's busy time and the Worker's
   * post-processing per image, times the images' rate (n - 1 gaps over the span between the first
   * and last arrival). One image alone loads no host: what it does by itself is in its lines.
   */
  busyCores(prediction: PipelinePrediction): number {
    const n = this.images.length;
    if (n < 2) return 0;
    const workerMs = n * (this.cpu.cpuMs + this.meanLines * this.cpu.cpuPerLineMs);
    return ((PIPELINE_STAGES.reduce((sum, stage) => sum + prediction.stages[stage].busyMs, 0) + workerMs) / n) * ((n - 1) / this.spanMs);
  }

  private pass(config: PipelineConfig, percentile: number, warmupImages: number, sloMs?: number): PipelinePrediction | undefined {
    const n = this.images.length;
    const from = Math.min(warmupImages, Math.max(0, n - 1));
    const arrivals = this.arrivals;
    const abort = sloMs === undefined ? undefined : { sloMs, from, allowed: n - from - Math.ceil(percentile * (n - from)) };
    const at = this.slowdown === 1 ? "" : `@${this.slowdown}`;
    const det = this.run("det", config, arrivals, configKey(config, 0) + at, abort);
    if (!det) return undefined;
    const clsEnter = new Float64Array(n);
    for (let i = 0; i < n; i++) clsEnter[i] = det.doneMs[i]! + this.cpu.cpuMs + this.cpu.cpuPerLineMs * this.images[i]!.lineWidths.length;
    const cls = this.run("cls", config, clsEnter, configKey(config, 1) + at, abort);
    if (!cls) return undefined;
    const rec = this.run("rec", config, cls.doneMs, configKey(config, 2) + at, abort);
    if (!rec) return undefined;
    const latenciesMs = Float64Array.from(rec.doneMs, (done, i) => (Number.isNaN(done) ? Infinity : done - arrivals[i]!));
    const measured = latenciesMs.slice(from);
    const spans: Record<PipelineStage, [Float64Array, Float64Array]> = { det: [arrivals, det.doneMs], cls: [clsEnter, cls.doneMs], rec: [cls.doneMs, rec.doneMs] };
    const stages = {} as Record<PipelineStage, StagePrediction>;
    let total = 0;
    let poolSize = 0;
    for (const stage of PIPELINE_STAGES) {
      const r = { det, cls, rec }[stage];
      const [enter, done] = spans[stage];
      const span = new Float64Array(n - from);
      for (let i = from; i < n; i++) span[i - from] = Number.isNaN(done[i]!) ? Infinity : done[i]! - enter[i]!;
      stages[stage] = this.stagePrediction(stage, config[stage], r, span);
      total += stages[stage].cost.totalUsdPerHour;
      if (config[stage].placement === "origin") poolSize += config[stage].poolSize;
    }
    const imagesPerS = (n / this.spanMs) * 1000;
    const postProcessingCpuUsdPerHour = ((imagesPerS * 3600 * (this.cpu.cpuMs + this.cpu.cpuPerLineMs * this.meanLines)) / 1e6) * this.prices.workers.usdPerMillionCpuMs;
    total += postProcessingCpuUsdPerHour;
    return {
      latenciesMs,
      percentile,
      percentileMs: quantile(sorted(measured), percentile),
      latencyMs: summary(measured),
      failedImages: latenciesMs.reduce((s, x) => s + (x === Infinity ? 1 : 0), 0),
      stages,
      poolSize,
      cost: { totalUsdPerHour: total, usdPerMillionImages: imagesPerS > 0 ? (total / (imagesPerS * 3600)) * 1e6 : 0, postProcessingCpuUsdPerHour },
    };
  }

  private stagePrediction(stage: PipelineStage, c: StageConfig, r: StageRun, span: Float64Array): StagePrediction {
    const servers = c.placement === "edge" ? c.shards : c.poolSize;
    const requestsPerS = (r.requests / this.spanMs) * 1000;
    const batches = Math.max(1, r.batches);
    const meanServiceMs = r.busyMs / batches;
    const costInput: CostInput = {
      placement: c.placement,
      ratePerS: requestsPerS,
      shards: c.shards,
      poolSize: c.placement === "origin" ? c.poolSize : 0,
      meanBatch: r.requests > 0 ? r.requests / batches : 1,
      // A shard is active while a window is open for company (its server free) and while a batch is
      // in flight (served, the hops); a request queued for a busy server adds nothing to that.
      meanOpenMs: r.windowWaitMs / batches,
      meanServiceMs,
      meanInFlightMs: meanServiceMs + this.extraMs(stage, c.placement),
    };
    return {
      latencyMs: summary(span),
      utilisation: r.busyMs / (Math.max(1, servers) * this.spanMs),
      busyMs: r.busyMs,
      requests: r.requests,
      batches: r.batches,
      servers,
      requestsPerS,
      rowsPerS: (r.rows / this.spanMs) * 1000,
      meanBatchRows: r.rows / batches,
      meanBatchRequests: r.requests / batches,
      refused: r.refused,
      cost: r.requests > 0 ? costPerHour(costInput, this.prices, this.costOptions) : costPerHour({ ...costInput, ratePerS: 0, meanBatch: 1 }, this.prices, this.costOptions),
    };
  }

  /**
   * A stage's run for `config`, cached under `key` (this stage's and the upstream configurations);
   * with `abort`, undefined once more than `allowed` images after `from` are answered (by this
   * stage, so at the end too) later than sloMs after their arrival.
   */
  private run(stage: PipelineStage, config: PipelineConfig, enterMs: Float64Array, key: string, abort?: { sloMs: number; from: number; allowed: number }): StageRun | undefined {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const abortKey = abort && `${key}#${abort.sloMs}/${abort.from}/${abort.allowed}`;
    if (abortKey && this.aborted.has(abortKey)) return undefined;
    this.stageRuns++;
    const c = config[stage];
    const model = this.models[stage];
    const line = model.service[c.placement];
    if (!line) throw new RangeError(`${model.model} has no ${c.placement} service line`);
    const stageIndex = PIPELINE_STAGES.indexOf(stage);
    const perRequest = this.rowsPerRequest(stage, c);
    const servers = c.placement === "edge" ? Math.max(1, c.shards) : Math.max(1, c.poolSize);
    const queues = c.placement === "edge" ? Math.max(1, c.shards) : 1;
    // The stage's requests in arrival order (images by when they reach the stage, ties by index;
    // an image's requests in the order it makes them), then grouped by queue (stable).
    const n = this.images.length;
    const byEnter = new Array<number>(n);
    for (let i = 0; i < n; i++) byEnter[i] = i;
    byEnter.sort((a, b) => enterMs[a]! - enterMs[b]! || a - b);
    let capacity = 0;
    for (let i = 0; i < n; i++) for (const unit of this.units[stage][i]!) capacity += Math.ceil(unit.rows / perRequest);
    const reqImage = new Int32Array(capacity);
    const reqRows = new Int32Array(capacity);
    const reqSize = new Float64Array(capacity);
    const reqQueue = new Int32Array(capacity);
    const doneMs = new Float64Array(n);
    let requests = 0;
    let rows = 0;
    for (const i of byEnter) {
      const enter = enterMs[i]!;
      doneMs[i] = enter;
      if (Number.isNaN(enter)) continue;
      const units = this.units[stage][i]!;
      for (let u = 0; u < units.length; u++) {
        const unit = units[u]!;
        for (let chunk = 0, left = unit.rows; left > 0; chunk++, left -= perRequest) {
          reqImage[requests] = i;
          reqRows[requests] = Math.min(perRequest, left);
          reqSize[requests] = unit.size;
          reqQueue[requests] = queues === 1 ? 0 : Math.floor(uniform(this.seed, stageIndex, i, u, chunk) * queues);
          rows += reqRows[requests]!;
          requests++;
        }
      }
    }
    // Counting sort by queue: queue q's requests are at [start[q], start[q + 1]).
    const start = new Int32Array(queues + 1);
    for (let r = 0; r < requests; r++) start[reqQueue[r]! + 1]!++;
    for (let q = 0; q < queues; q++) start[q + 1]! += start[q]!;
    const fill = start.slice(0, queues);
    const byQueue = new Int32Array(requests);
    for (let r = 0; r < requests; r++) byQueue[fill[reqQueue[r]!]!++] = r;
    // Images already later than the SLO (or failed) when they reach this stage.
    const limitOf = (i: number) => this.arrivals[i]! + abort!.sloMs;
    let late = 0;
    if (abort) for (let i = abort.from; i < n; i++) if (!(doneMs[i]! <= limitOf(i))) late++;
    const extra = this.extraMs(stage, c.placement);
    const sizeOf = new Map<string, number>();
    const slowdown = this.slowdown;
    const serviceMs = (k: number, batchKey: string): number => slowdown * (line.baseMs + (line.perRowMs * k * sizeOf.get(batchKey)!) / model.profiledSize);
    let batches = 0;
    let busyMs = 0;
    let windowWaitMs = 0;
    let serverWaitMs = 0;
    let refused = 0;
    for (let q = 0; q < queues; q++) {
      if (abort && late > abort.allowed) break;
      const from = start[q]!;
      const m = start[q + 1]! - from;
      if (m === 0) continue;
      const arrivalsMs = new Float64Array(m);
      const rowsOf = new Int32Array(m);
      const batchKeys = new Array<string>(m);
      for (let x = 0; x < m; x++) {
        const r = byQueue[from + x]!;
        arrivalsMs[x] = enterMs[reqImage[r]!]!;
        rowsOf[x] = reqRows[r]!;
        batchKeys[x] = this.keyOf(reqSize[r]!, sizeOf);
      }
      const result = replayJobs({ arrivalsMs, rows: rowsOf, batchKeys, maxBatch: c.maxBatch, windowMs: c.windowMs, servers: queues === 1 ? servers : 1, maxQueueRows: Math.max(model.maxQueueRows, c.maxBatch), serviceMs });
      batches += result.batches;
      busyMs += result.busyMs;
      windowWaitMs += result.windowWaitMs;
      serverWaitMs += result.serverWaitMs;
      for (let x = 0; x < m; x++) {
        const i = reqImage[byQueue[from + x]!]!;
        const done = result.completionMs[x]!;
        const before = doneMs[i]!;
        if (Number.isNaN(done)) refused++;
        const after = (doneMs[i] = Number.isNaN(done) ? NaN : Math.max(before, done + extra));
        if (abort && i >= abort.from && before <= limitOf(i) && !(after <= limitOf(i))) late++;
      }
    }
    if (abortKey && late > abort!.allowed) {
      this.aborted.add(abortKey);
      return undefined;
    }
    const run: StageRun = { doneMs, requests, rows, batches, busyMs, windowWaitMs, serverWaitMs, refused };
    this.cache.set(key, run);
    return run;
  }

  /** The batch key of per-row size `size` (one string per size). */
  private keyOf(size: number, sizeOf: Map<string, number>): string {
    let key = this.keys.get(size);
    if (key === undefined) this.keys.set(size, (key = String(size)));
    sizeOf.set(key, size);
    return key;
  }
}

/** rec's class width of a line `width` wide (src/batching/size-classes.ts classWidthOf). */
function classWidth(widths: number[] | undefined, width: number): number {
  if (!widths) return width;
  for (const w of widths) if (w >= width) return w;
  return width;
}

/** The cache key of the stages up to `upTo` (inclusive). */
export function configKey(config: PipelineConfig, upTo: number): string {
  let key = "";
  for (let s = 0; s <= upTo; s++) {
    const c = config[PIPELINE_STAGES[s]!];
    key += `${c.placement}/${c.maxBatch}/${c.windowMs}/${c.placement === "edge" ? c.shards : 0}/${c.placement === "origin" ? c.poolSize : 0}/${c.maxRowsPerRequest ?? ""}|`;
  }
  return key;
}

/** A uniform draw in [0, 1) from a hash of the request's identity (the same for every configuration compared on a sample). */
function uniform(seed: number, a: number, b: number, c: number, d: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = mix(h, a);
  h = mix(h, b);
  h = mix(h, c);
  h = mix(h, d);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** One murmur3 round of `x` into the hash `h`. */
function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  return Math.imul(h, 0x1b873593) + 0xe6546b64;
}

function sorted(xs: Float64Array): Float64Array {
  return Float64Array.from(xs).sort();
}

/** The p-quantile of sorted values (the simulator's rule: the ceil(p n)-th smallest). */
function quantile(s: Float64Array, p: number): number {
  if (s.length === 0) return 0;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

function summary(xs: Float64Array): LatencySummary {
  const s = sorted(xs);
  let sum = 0;
  for (const x of s) sum += x;
  return { p50: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99), mean: s.length ? sum / s.length : 0 };
}
