import { describe, expect, it } from "vitest";
import { CATALOG } from "../../../src/models/catalog";
import { type CalibrationRun, type PipelineModels, type PipelineStage, type StagePlacement, calibrateContention, calibratePipeline, calibrateSpeed, calibrationConfig, PIPELINE_STAGES, PipelineEvaluator, ppocrStageModels, predictPipeline, sampleImages, PPOCR_PIPELINE_DEFAULTS } from "../../../src/planner/pipeline";

const CPU = { cpuMs: 50, cpuPerLineMs: 2.5 };
const PAGES = [
  { detPixels: 793_600, lineWidths: [320, 410, 600, 350, 900, 320, 330] },
  { detPixels: 640 * 640, lineWidths: [500, 500, 320] },
  { detPixels: 960 * 736, lineWidths: [320, 344, 368, 392, 416, 440, 464, 488, 512, 536, 560, 584] },
  { detPixels: 793_600, lineWidths: [1200] },
];
/** Each page is sent this often; the Worker's times scatter around the model's by these offsets (ms). */
const JITTER_MS = [-4, 0, 0, 3, 5];

type Truth = Partial<Record<PipelineStage, { scale: number; handlingMs: number; extraMs: number }>>;

/** `models` as the stack really is: each line scaled, the handling on the server, the extra off it. */
function trueModels(models: PipelineModels, placement: StagePlacement, truth: Truth): PipelineModels {
  const out = { ...models };
  for (const stage of PIPELINE_STAGES) {
    const t = truth[stage];
    if (!t) continue;
    const at = calibrationConfig(models, placement)[stage].placement;
    const line = models[stage].service[at]!;
    out[stage] = { ...models[stage], service: { ...models[stage].service, [at]: { baseMs: line.baseMs * t.scale + t.handlingMs, perRowMs: line.perRowMs * t.scale } }, measuredExtraMs: { [at]: t.extraMs } };
  }
  return out;
}

/** What the stack would report for a run under `truth`: the Worker's stage times, and the servers' sums. */
function measure(models: PipelineModels, placement: StagePlacement, truth: Truth): CalibrationRun {
  const config = calibrationConfig(models, placement);
  const real = trueModels(models, placement, truth);
  const lone = (m: PipelineModels, lineWidths: number[], detPixels: number) => predictPipeline({ images: [{ arrivalMs: 0, detPixels, lineWidths }], models: m, config, cpu: CPU, percentile: 0.5 }).stages;
  const servers: CalibrationRun["servers"] = {};
  const pages = PAGES.map((image) => {
    const truly = lone(real, image.lineWidths, image.detPixels);
    const profiled = lone(models, image.lineWidths, image.detPixels);
    for (const stage of PIPELINE_STAGES) {
      const t = truth[stage];
      if (!t) continue;
      const requests = profiled[stage].requests * JITTER_MS.length;
      const computeMs = profiled[stage].busyMs * t.scale * JITTER_MS.length;
      const s = (servers[stage] ??= { requests: 0, computeMs: 0 });
      s.requests += requests;
      s.computeMs += computeMs;
      // The edge's round trip holds the server beyond the kernel at the origin; at the edge the DO's run is all.
      if (config[stage].placement === "origin") s.heldMs = (s.heldMs ?? 0) + computeMs + t.handlingMs * requests;
    }
    const stageMs = Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, JITTER_MS.map((j) => truly[stage].latencyMs.p50 + j)])) as Record<PipelineStage, number[]>;
    return { image, stageMs };
  });
  return { config, pages, servers };
}

describe("calibratePipeline", () => {
  const models = ppocrStageModels(CATALOG);
  const truth: Truth = { det: { scale: 0.7, handlingMs: 12, extraMs: 30 }, cls: { scale: 1.3, handlingMs: 8, extraMs: 20 }, rec: { scale: 1.2, handlingMs: 6, extraMs: 5 } };

  it("recovers each stage's scale, handling and off-server extra from pages alone", () => {
    const { stages } = calibratePipeline(models, CPU, [measure(models, "origin", truth)]);
    expect(stages.map((s) => `${s.stage}/${s.placement}`)).toEqual(["det/origin", "cls/origin", "rec/origin"]);
    for (const s of stages) {
      const t = truth[s.stage]!;
      expect(s.serviceScale).toBeCloseTo(t.scale, 9);
      expect(s.handlingMs).toBeCloseTo(t.handlingMs, 9);
      // The jitter's median is 0.
      expect(s.measuredExtraMs).toBeCloseTo(t.extraMs, 6);
      expect(s.requests.measured).toBe(s.requests.predicted);
      // The medians of a set and of its jittered copy differ by at most the jitter.
      expect(Math.abs(s.stageP50Ms.calibrated - s.stageP50Ms.measured)).toBeLessThanOrEqual(Math.max(...JITTER_MS.map(Math.abs)));
    }
  });

  it("predicts the stack under load as the true models do (the handling queues on the server, the extra does not)", () => {
    const calibrated = calibratePipeline(models, CPU, [measure(models, "origin", truth)]).models;
    const real = trueModels(models, "origin", truth);
    const mix = { ...PPOCR_PIPELINE_DEFAULTS.mix };
    const images = sampleImages(mix, { ratePerS: 1.5 }, 300, 3);
    const config = calibrationConfig(models, "origin");
    const predict = (m: PipelineModels) => predictPipeline({ images, models: m, config, cpu: CPU, percentile: 0.95 });
    const [a, b] = [predict(calibrated), predict(real)];
    for (let i = 0; i < images.length; i++) expect(a.latenciesMs[i]).toBeCloseTo(b.latenciesMs[i]!, 6);
    // Queueing is in play: the p95 is well above a lone page's.
    expect(b.percentileMs).toBeGreaterThan(1.5 * b.latencyMs.p50);
    // The profiles alone would predict otherwise.
    expect(Math.abs(predict(models).percentileMs - b.percentileMs)).toBeGreaterThan(50);
  });

  it("calibrates each placement from its own run and leaves unmeasured ones as they were", () => {
    const edgeTruth: Truth = { cls: { scale: 0.9, handlingMs: 0, extraMs: 3 }, rec: { scale: 1.1, handlingMs: 0, extraMs: 4 } };
    const result = calibratePipeline(models, CPU, [measure(models, "origin", { cls: truth.cls }), measure(models, "edge", edgeTruth)]);
    const found = Object.fromEntries(result.stages.map((s) => [`${s.stage}/${s.placement}`, s]));
    expect(Object.keys(found).sort()).toEqual(["cls/edge", "cls/origin", "det/origin", "rec/edge", "rec/origin"]);
    expect(found["cls/origin"]!.serviceScale).toBeCloseTo(1.3, 9);
    expect(found["cls/edge"]!.serviceScale).toBeCloseTo(0.9, 9);
    expect(found["rec/edge"]!.measuredExtraMs).toBeCloseTo(4, 6);
    expect(found["rec/edge"]!.handlingMs).toBe(0);
    // det and rec at the origin ran with no server measurements: their lines stay; the Worker's times still set the extra.
    expect(found["det/origin"]!.serviceScale).toBe(1);
    expect(result.models.det.service.origin).toEqual(models.det.service.origin);
    expect(result.models.cls.service.origin!.perRowMs).toBeCloseTo(models.cls.service.origin!.perRowMs * 1.3, 9);
    expect(result.models.cls.service.edge!.perRowMs).toBeCloseTo(models.cls.service.edge!.perRowMs * 0.9, 9);
    expect(result.models.cls.measuredExtraMs).toEqual({ origin: expect.closeTo(20, 6), edge: expect.closeTo(3, 6) });
  });

  it("leaves out a stage time the Worker did not report", () => {
    const run = measure(models, "origin", truth);
    const withGap = { ...run, pages: run.pages.map((page, i) => (i === 0 ? { ...page, stageMs: { ...page.stageMs, cls: [NaN, ...page.stageMs.cls.slice(1)] } } : page)) };
    const cls = calibratePipeline(models, CPU, [withGap]).stages.find((c) => c.stage === "cls")!;
    expect(cls.measuredExtraMs).toBeCloseTo(truth.cls!.extraMs, 6);
    expect(Number.isFinite(cls.stageP50Ms.measured)).toBe(true);
  });

  it("keeps a stage's models when no run placed it there", () => {
    const result = calibratePipeline(models, CPU, []);
    expect(result.stages).toEqual([]);
    expect(result.models).toEqual(models);
  });
});

describe("host contention", () => {
  const models = ppocrStageModels(CATALOG);
  const config = calibrationConfig(models, "origin");
  const images = sampleImages({ ...PPOCR_PIPELINE_DEFAULTS.mix }, { ratePerS: 0.6 }, 200, 5);

  /** `m` with every stage's service lines (both placements) times `f`. */
  const slowed = (m: PipelineModels, f: number): PipelineModels => {
    const out = { ...m };
    for (const stage of PIPELINE_STAGES) {
      const service = Object.fromEntries(Object.entries(m[stage].service).map(([p, line]) => [p, { baseMs: line.baseMs * f, perRowMs: line.perRowMs * f }]));
      out[stage] = { ...m[stage], service };
    }
    return out;
  };

  it("slows every server by 1 / (1 - c U), U the cores busy at full speed", () => {
    const free = new PipelineEvaluator(images, models, CPU);
    const busyCores = free.busyCores(free.predict(config, 0.95));
    expect(busyCores).toBeGreaterThan(0.2);
    const c = 0.5;
    const f = 1 / (1 - c * busyCores);
    const withContention = predictPipeline({ images, models: { ...models, hostContention: c }, config, cpu: CPU, percentile: 0.95 });
    const byHand = predictPipeline({ images, models: slowed(models, f), config, cpu: CPU, percentile: 0.95 });
    for (let i = 0; i < images.length; i++) expect(withContention.latenciesMs[i]).toBeCloseTo(byHand.latenciesMs[i]!, 6);
    expect(withContention.percentileMs).toBeGreaterThan(predictPipeline({ images, models, config, cpu: CPU, percentile: 0.95 }).percentileMs);
  });

  it("loads no host with one image alone (its own work is in the calibrated lines)", () => {
    const lone = [{ ...images[0]!, arrivalMs: 0 }];
    const free = new PipelineEvaluator(lone, models, CPU);
    expect(free.busyCores(free.predict(config, 0.5))).toBe(0);
    const alone = (m: PipelineModels) => predictPipeline({ images: lone, models: m, config, cpu: CPU, percentile: 0.5 }).percentileMs;
    expect(alone({ ...models, hostContention: 0.9 })).toBe(alone(models));
  });

  it("measures the busy cores at the images' rate: busy time per image over the mean gap", () => {
    const free = new PipelineEvaluator(images, models, CPU);
    const prediction = free.predict(config, 0.95);
    const perImageMs = (PIPELINE_STAGES.reduce((sum, stage) => sum + prediction.stages[stage].busyMs, 0) + images.reduce((sum, im) => sum + CPU.cpuMs + CPU.cpuPerLineMs * im.lineWidths.length, 0)) / images.length;
    const meanGapMs = (images.at(-1)!.arrivalMs - images[0]!.arrivalMs) / (images.length - 1);
    expect(free.busyCores(prediction)).toBeCloseTo(perImageMs / meanGapMs, 9);
  });

  it("saturates a host loaded past what it carries", () => {
    const loaded = predictPipeline({ images, models: { ...models, hostContention: 10 }, config, cpu: CPU, percentile: 0.95 });
    const byHand = predictPipeline({ images, models: slowed(models, 20), config, cpu: CPU, percentile: 0.95 });
    expect(loaded.percentileMs).toBeCloseTo(byHand.percentileMs, 6);
  });

  it("calibrateContention finds the c at which the model's slowdown is the probe's", () => {
    const truth = 0.35;
    const free = new PipelineEvaluator(images, models, CPU);
    const freePrediction = free.predict(config, 0.95);
    const f = 1 / (1 - truth * free.busyCores(freePrediction));
    // The probe's servers held each request f times as long as at full speed.
    const servers = Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, { requests: freePrediction.stages[stage].requests, heldMs: f * freePrediction.stages[stage].busyMs }]));
    const found = calibrateContention(models, CPU, { config, images, servers });
    expect(found.slowdown).toBeCloseTo(f, 9);
    expect(found.hostContention).toBeCloseTo(truth, 9);
    // Faster than full speed is no contention.
    const faster = Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, { requests: freePrediction.stages[stage].requests, heldMs: 0.9 * freePrediction.stages[stage].busyMs }]));
    expect(calibrateContention(models, CPU, { config, images, servers: faster }).hostContention).toBe(0);
  });

  it("calibrateSpeed slows each stage by what its servers measured, faster included", () => {
    const free = new PipelineEvaluator(images, models, CPU).predict(config, 0.95);
    const factors = { det: 1.7, cls: 0.8, rec: 1.25 };
    const servers = Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, { requests: free.stages[stage].requests, heldMs: factors[stage] * free.stages[stage].busyMs }]));
    const found = calibrateSpeed({ ...models, hostContention: 0.5 }, CPU, { config, images, servers });
    for (const stage of PIPELINE_STAGES) expect(found.slowdowns[stage]).toBeCloseTo(factors[stage], 9);
    // By hand: each stage's line at its placement scaled by its factor, no contention model.
    const byHand = { ...models, hostContention: 0 };
    for (const stage of PIPELINE_STAGES) byHand[stage] = slowed({ ...models, hostContention: 0 }, factors[stage])[stage];
    const atSpeed = predictPipeline({ images, models: found.models, config, cpu: CPU, percentile: 0.95 });
    expect(atSpeed.percentileMs).toBeCloseTo(predictPipeline({ images, models: byHand, config, cpu: CPU, percentile: 0.95 }).percentileMs, 6);
    // A window whose servers slowed as the contention model says predicts what that model predicts.
    const c = 0.35;
    const f = 1 / (1 - c * new PipelineEvaluator(images, models, CPU).busyCores(free));
    const contended = Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, { requests: free.stages[stage].requests, heldMs: f * free.stages[stage].busyMs }]));
    const viaSpeed = predictPipeline({ images, models: calibrateSpeed(models, CPU, { config, images, servers: contended }).models, config, cpu: CPU, percentile: 0.95 });
    expect(viaSpeed.percentileMs).toBeCloseTo(predictPipeline({ images, models: { ...models, hostContention: c }, config, cpu: CPU, percentile: 0.95 }).percentileMs, 6);
    // A stage nobody measured keeps its line.
    const { det: _det, ...withoutDet } = servers;
    expect(calibrateSpeed(models, CPU, { config, images, servers: withoutDet }).slowdowns.det).toBe(1);
  });
});
