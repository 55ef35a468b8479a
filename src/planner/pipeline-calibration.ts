/**
 * Calibrates the pipeline's stage models on the running stack, as the controller does for a single
 * model with its live service line: the profiles (models/<name>/profile.json) were measured once, on
 * a quiet machine, and time only the kernel, while a stage's request also crosses the Worker, its
 * buffer and the network with its tensors (a page's det input is megabytes), and a shared machine runs
 * faster or slower from one hour to the next (bench/reports/ocr.md: pages alone from 26 % slower to
 * 25 % faster than the profiles). Pure: no I/O, no clock.
 *
 * A calibration run sends pages one at a time (so no request waits for another page's) under a
 * configuration whose batches are its requests (window 0, maxRowsPerRequest = maxBatch), and records
 * each stage's latency as the Worker measured it (Server-Timing) and the deltas of the stage's server
 * metrics over the run (eir_inference_compute_duration_seconds: the origin's and the edge's). For each
 * stage at the placement it ran at:
 * 1. serviceScale = the measured compute over the compute the profile's line predicts for the same
 *    requests (predictPipeline of each page alone: the stage's busyMs); the line is scaled by it.
 * 2. handlingMs = how long the scheduler's server was held per request beyond the kernel (at the
 *    origin: the tensors' transfer both ways, the replica decoding and encoding them; see
 *    ServerMeasurements.heldMs), added to the line's baseMs: it occupies the server like the kernel.
 * 3. measuredExtraMs = the median, over the pages and their repetitions, of the measured stage
 *    latency minus the prediction with the calibrated line: what the request spends off the server
 *    (the Worker building and reading its tensors, the hop to the Durable Object) beyond the defaults
 *    (overheadMs, hopMs, the round trip).
 * Runs that share a stage's placement pool their requests. Stages or placements no run measured keep
 * their models.
 */
import { type PipelineCpu, type PipelineImage, type PipelineModels, type PipelineStage, type StagePlacement, type PipelineConfig, PIPELINE_STAGES, PipelineEvaluator, predictPipeline } from "./pipeline-simulation";

/** What a stage's servers measured over a calibration run (deltas of their metrics), ms summed over its requests. */
export interface ServerMeasurements {
  requests: number;
  /** The kernel: the batches' runs where the model runs (the origin replica's, or the Durable Object's at the edge). */
  computeMs: number;
  /**
   * How long the stage's scheduler server was held by the requests' batches, where that is more than
   * the kernel. At the origin it is the edge's round trip of each batch (the Durable Object sends a
   * replica its next batch once the last one's answer is back, so the transfer both ways and the
   * replica's decoding and encoding hold the server like the kernel). Default: computeMs.
   */
  heldMs?: number;
}

/** Pages sent one at a time under `config`, with what the stack measured. */
export interface CalibrationRun {
  /** Its batches are its requests: windowMs 0 and maxRowsPerRequest = maxBatch in every stage (calibrationConfig). */
  config: PipelineConfig;
  /** Each page, and each stage's latency per time it was sent (the Worker's Server-Timing), ms; NaN where none was reported. */
  pages: Array<{ image: Omit<PipelineImage, "arrivalMs">; stageMs: Record<PipelineStage, number[]> }>;
  /** Per stage, its servers' metrics over the whole run (every page, every repetition). */
  servers: Partial<Record<PipelineStage, ServerMeasurements>>;
}

/**
 * A configuration a calibration run can use: every stage at `placement` where it may run there (else
 * at its first placement: det stays at the origin), window 0, maxRowsPerRequest = maxBatch, so a
 * page alone makes batches that are its requests.
 */
export function calibrationConfig(models: PipelineModels, placement: StagePlacement): PipelineConfig {
  const stage = (s: PipelineStage) => {
    const at = models[s].placements.includes(placement) ? placement : models[s].placements[0]!;
    return { placement: at, maxBatch: models[s].maxBatch, windowMs: 0, shards: 1, poolSize: at === "origin" ? 1 : 0, maxRowsPerRequest: models[s].maxBatch };
  };
  return { det: stage("det"), cls: stage("cls"), rec: stage("rec") };
}

/** What the calibration found for one stage at one placement. */
export interface StageCalibration {
  stage: PipelineStage;
  placement: StagePlacement;
  /** Measured compute over predicted (1 where the servers' compute was not measured). */
  serviceScale: number;
  /** Per request on the server beyond queue and compute, ms. */
  handlingMs: number;
  /** Off-server latency beyond the defaults, ms (the median residual). */
  measuredExtraMs: number;
  /** Requests the servers counted, and the prediction's. */
  requests: { measured: number; predicted: number };
  /** Median stage latency of the pages alone: measured, predicted before and after, ms. */
  stageP50Ms: { measured: number; uncalibrated: number; calibrated: number };
}

/** Calibrates `models` on `runs` (see the module doc). */
export function calibratePipeline(models: PipelineModels, cpu: PipelineCpu, runs: readonly CalibrationRun[]): { models: PipelineModels; stages: StageCalibration[] } {
  const lone = (m: PipelineModels, config: PipelineConfig, image: CalibrationRun["pages"][number]["image"]) =>
    predictPipeline({ images: [{ ...image, arrivalMs: 0 }], models: m, config, cpu, percentile: 0.5 }).stages;
  /** Each page's prediction alone under `m`, in the runs' page order. */
  const lonePredictions = (m: PipelineModels, mine: readonly CalibrationRun[]) => mine.flatMap((run) => run.pages.map((page) => ({ page, alone: lone(m, run.config, page.image) })));
  /** The stage's lone latencies, each repeated as often as its page was sent (in the order of the measured times). */
  const latencies = (predictions: ReturnType<typeof lonePredictions>, stage: PipelineStage) => predictions.flatMap(({ page, alone }) => page.stageMs[stage].map(() => alone[stage].latencyMs.p50));
  let current = models;
  const stages: StageCalibration[] = [];
  for (const stage of PIPELINE_STAGES) {
    for (const placement of ["edge", "origin"] as const) {
      const mine = runs.filter((run) => run.config[stage].placement === placement);
      const line = models[stage].service[placement];
      if (!mine.length || !line) continue;
      // 1-2. The service line from the servers' own measurements.
      const profiled = lonePredictions(models, mine);
      let predictedBusyMs = 0;
      let predictedRequests = 0;
      for (const { page, alone } of profiled) {
        predictedBusyMs += alone[stage].busyMs * page.stageMs[stage].length;
        predictedRequests += alone[stage].requests * page.stageMs[stage].length;
      }
      const server = { requests: 0, computeMs: 0, heldMs: 0 };
      for (const run of mine) {
        const measured = run.servers[stage];
        if (!measured) continue;
        server.requests += measured.requests;
        server.computeMs += measured.computeMs;
        server.heldMs += measured.heldMs ?? measured.computeMs;
      }
      const serviceScale = server.computeMs > 0 && predictedBusyMs > 0 ? server.computeMs / predictedBusyMs : 1;
      const handlingMs = server.requests > 0 ? Math.max(0, (server.heldMs - server.computeMs) / server.requests) : 0;
      const withLine = (extraMs: number): PipelineModels => ({
        ...current,
        [stage]: {
          ...current[stage],
          service: { ...current[stage].service, [placement]: { baseMs: line.baseMs * serviceScale + handlingMs, perRowMs: line.perRowMs * serviceScale } },
          measuredExtraMs: { ...current[stage].measuredExtraMs, [placement]: extraMs },
        },
      });
      // 3. The off-server rest: measured stage latency minus the calibrated line's prediction.
      const measuredMs = mine.flatMap((run) => run.pages.flatMap((page) => page.stageMs[stage]));
      const predicted = latencies(lonePredictions(withLine(0), mine), stage);
      const residuals = measuredMs.flatMap((ms, i) => (Number.isFinite(ms) ? [ms - predicted[i]!] : []));
      const measuredExtraMs = residuals.length ? median(residuals) : 0;
      current = withLine(measuredExtraMs);
      stages.push({
        stage,
        placement,
        serviceScale,
        handlingMs,
        measuredExtraMs,
        requests: { measured: server.requests, predicted: predictedRequests },
        stageP50Ms: { measured: median(measuredMs.filter(Number.isFinite)), uncalibrated: median(latencies(profiled, stage)), calibrated: median(latencies(lonePredictions(current, mine), stage)) },
      });
    }
  }
  return { models: current, stages };
}

function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Pages at a rate under `config` on the shared host, and how long they held each stage's servers. */
export interface ContentionProbe {
  config: PipelineConfig;
  /** The pages in the order sent, at the times sent (ms). */
  images: readonly PipelineImage[];
  /**
   * Per stage: its requests and how long their batches held the stage's servers, ms summed (the
   * edge's eir_inference_compute_duration_seconds: the Durable Object's run, or at the origin the
   * batch's round trip; ServerMeasurements.heldMs).
   */
  servers: Partial<Record<PipelineStage, { requests: number; heldMs: number }>>;
}

/** What calibrateContention found. */
export interface ContentionCalibration {
  /** PipelineModels.hostContention. */
  hostContention: number;
  /** The probe's measured server time over what the calibrated lines predict at full speed. */
  slowdown: number;
  /** Cores the probe keeps busy at full speed, by the model (PipelineEvaluator.busyCores). */
  busyCores: number;
}

/**
 * The host's contention (PipelineModels.hostContention) from a probe under load, with `models`
 * already calibrated on pages alone (calibratePipeline): the slowdown is the servers' measured time
 * over the full-speed prediction for the same arrivals (its busy time per request, times the
 * requests counted; the two agree where a batch is a request), and hostContention = (1 - 1 / slowdown) / U
 * with U the cores the probe keeps busy at full speed: the value at which the model's slowdown for
 * this probe is the measured one.
 */
export function calibrateContention(models: PipelineModels, cpu: PipelineCpu, probe: ContentionProbe): ContentionCalibration {
  const { evaluator, prediction, stages } = heldAgainstFullSpeed(models, cpu, probe);
  const measuredMs = stages.reduce((sum, s) => sum + s.measuredMs, 0);
  const fullSpeedMs = stages.reduce((sum, s) => sum + s.fullSpeedMs, 0);
  const busyCores = evaluator.busyCores(prediction);
  const slowdown = fullSpeedMs > 0 ? measuredMs / fullSpeedMs : 1;
  return { hostContention: busyCores > 0 ? Math.max(0, (1 - 1 / slowdown) / busyCores) : 0, slowdown, busyCores };
}

/**
 * The models at the speed the servers measured over a window of traffic (`probe`: a load step's own
 * arrivals, config and server metrics): each stage's service line at the placement the window used
 * multiplied by that stage's measured slowdown (its servers' time over the full-speed prediction for
 * the same arrivals, as calibrateContention measures it, but per stage and in both directions), with
 * no contention model on top. A prediction for that very window then tests the queueing and batching
 * model alone, given the speed the host ran at: on a shared machine that speed moves from one minute
 * to the next (and kernels on different processes slow differently), which no calibration made
 * earlier can know. The live controller does the same with the service times its buffers report.
 * A stage without measured requests keeps its line (slowdown 1).
 */
export function calibrateSpeed(models: PipelineModels, cpu: PipelineCpu, probe: ContentionProbe): { models: PipelineModels; slowdowns: Record<PipelineStage, number> } {
  const { stages } = heldAgainstFullSpeed(models, cpu, probe);
  const slowdowns = { det: 1, cls: 1, rec: 1 };
  const out: PipelineModels = { ...models, hostContention: 0 };
  for (const { stage, measuredMs, fullSpeedMs } of stages) {
    if (!(fullSpeedMs > 0 && measuredMs > 0)) continue;
    const f = (slowdowns[stage] = measuredMs / fullSpeedMs);
    const placement = probe.config[stage].placement;
    const line = models[stage].service[placement]!;
    out[stage] = { ...models[stage], service: { ...models[stage].service, [placement]: { baseMs: line.baseMs * f, perRowMs: line.perRowMs * f } } };
  }
  return { models: out, slowdowns };
}

/**
 * Per stage of `probe`, the servers' measured time and the full-speed prediction for the same
 * arrivals (its busy time per request, times the requests counted: the two agree where a batch is a
 * request), ms; and that prediction.
 */
function heldAgainstFullSpeed(models: PipelineModels, cpu: PipelineCpu, probe: ContentionProbe) {
  const evaluator = new PipelineEvaluator(probe.images, { ...models, hostContention: 0 }, cpu);
  const prediction = evaluator.predict(probe.config, 0.95);
  const stages: Array<{ stage: PipelineStage; measuredMs: number; fullSpeedMs: number }> = [];
  for (const stage of PIPELINE_STAGES) {
    const measured = probe.servers[stage];
    const predicted = prediction.stages[stage];
    if (!measured || !(predicted.requests > 0)) continue;
    stages.push({ stage, measuredMs: measured.heldMs, fullSpeedMs: (predicted.busyMs / predicted.requests) * measured.requests });
  }
  return { evaluator, prediction, stages };
}
