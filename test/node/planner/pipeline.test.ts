import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CATALOG } from "../../../src/models/catalog";
import {
  type PipelineConfig,
  type PipelineImage,
  type PipelineModels,
  type StageModel,
  isCheaper,
  meetsPipelineSlo,
  PIPELINE_STAGES,
  PipelineEvaluator,
  pipelineStepContext,
  pipelineSteps,
  planPipeline,
  PPOCR_PIPELINE_DEFAULTS,
  ppocrStageModels,
  predictPipeline,
  sampleImages,
  SloWindows,
} from "../../../src/planner/pipeline";
import { createRng, sampleArrivals } from "../../../src/planner/simulator";
import { toMarkovianArrival } from "../../../src/planner/arrival";
import { replayJobs, replayLatencies } from "../../../src/scheduler/replay";

/** A stage model with round numbers; no overheads unless given. */
function stage(o: Partial<StageModel> & Pick<StageModel, "model">): StageModel {
  return { service: { edge: { baseMs: 0, perRowMs: 10 }, origin: { baseMs: 0, perRowMs: 10 } }, profiledSize: 1, overheadMs: 0, hopMs: 0, maxBatch: 16, maxRowsPerRequest: 16, maxQueueRows: 1_000_000, placements: ["edge", "origin"], ...o };
}

const NO_CPU = { cpuMs: 0, cpuPerLineMs: 0 };
const DET_PIXELS = 640 * 640;

/** det on the origin, 100 ms per 640 x 640 image; cls and rec with the given lines. */
function models(o: { cls?: Partial<StageModel>; rec?: Partial<StageModel>; overheads?: boolean } = {}): PipelineModels {
  const overheads = o.overheads ? { overheadMs: 0.5, hopMs: 1.5 } : {};
  return {
    det: stage({ model: "det", service: { origin: { baseMs: 0, perRowMs: 100 } }, profiledSize: DET_PIXELS, placements: ["origin"], ...overheads }),
    cls: stage({ model: "cls", ...overheads, ...o.cls }),
    rec: stage({ model: "rec", profiledSize: 320, ...overheads, ...o.rec }),
  };
}

function config(o: Partial<Record<keyof PipelineConfig, Partial<PipelineConfig["det"]>>> = {}): PipelineConfig {
  return {
    det: { placement: "origin", maxBatch: 1, windowMs: 0, shards: 1, poolSize: 1, ...o.det },
    cls: { placement: "edge", maxBatch: 16, windowMs: 0, shards: 1, poolSize: 0, ...o.cls },
    rec: { placement: "edge", maxBatch: 8, windowMs: 0, shards: 1, poolSize: 0, ...o.rec },
  };
}

describe("replayJobs (the scheduler replayed with multi-row requests, keys and servers)", () => {
  it("is replayLatencies for one-row requests of one key on one server", () => {
    const arrivals = sampleArrivals(toMarkovianArrival({ kind: "poisson", ratePerS: 80 }), 5000, createRng(3));
    const service = Float64Array.from({ length: 8 }, (_, k) => 2 + 1.5 * (k + 1));
    const expected = replayLatencies(arrivals, service, 8, 20);
    const got = replayJobs({ arrivalsMs: arrivals, rows: new Int32Array(arrivals.length).fill(1), batchKeys: new Array<string>(arrivals.length).fill(""), maxBatch: 8, windowMs: 20, serviceMs: (k) => service[k - 1]! });
    for (let i = 0; i < arrivals.length; i++) expect(got.completionMs[i]! - arrivals[i]!).toBeCloseTo(expected[i]!, 9);
    expect(got.batches).toBeGreaterThan(0);
  });

  it("serves keys apart and runs batches on several servers at once", () => {
    const got = replayJobs({ arrivalsMs: [0, 0, 0, 0], rows: [2, 2, 1, 3], batchKeys: ["a", "b", "a", "b"], maxBatch: 8, windowMs: 0, servers: 2, serviceMs: (k, key) => (key === "a" ? 10 * k : 100 * k) });
    // a: 3 rows together (30 ms); b: 5 rows together (500 ms), both at once.
    expect(Array.from(got.completionMs)).toEqual([30, 500, 30, 500]);
    expect(got.busyMs).toBe(530);
  });
});

describe("predictPipeline", () => {
  it("(a) one stage, no windows, maxBatch 1, Poisson arrivals: the mean latency is M/D/1's (Pollaczek-Khinchine)", () => {
    const serviceMs = 100;
    for (const rho of [0.3, 0.5]) {
      const images = sampleImages({ detPixels: DET_PIXELS, linesPerImage: [{ lines: 0, weight: 1 }], lineWidths: [{ width: 320, count: 1 }] }, { ratePerS: (rho * 1000) / serviceMs }, 50_000, 7);
      const warmupImages = 1000;
      const p = predictPipeline({ images, models: models(), config: config({ det: { maxBatch: 1, windowMs: 0 } }), cpu: NO_CPU, percentile: 0.95, originNetworkMs: 0, warmupImages });
      // M/D/1: W = S + rho S / (2 (1 - rho)).
      const expected = serviceMs + (rho * serviceMs) / (2 * (1 - rho));
      // Sampling error from 25 batch means of consecutive images.
      const measured = p.latenciesMs.slice(warmupImages);
      const batches = 25;
      const size = Math.floor(measured.length / batches);
      const means = Array.from({ length: batches }, (_, b) => measured.slice(b * size, (b + 1) * size).reduce((s, x) => s + x, 0) / size);
      const mean = means.reduce((s, x) => s + x, 0) / batches;
      const standardError = Math.sqrt(means.reduce((s, x) => s + (x - mean) ** 2, 0) / (batches - 1) / batches);
      expect(Math.abs(p.latencyMs.mean - expected)).toBeLessThan(4 * standardError);
      expect(Math.abs(p.latencyMs.mean / expected - 1)).toBeLessThan(0.03);
      expect(p.stages.det.utilisation).toBeCloseTo(rho, 1);
    }
  });

  describe("(b) fan-out without contention: the latency the model says, derived by hand", () => {
    // Lines 100, 100, 300, 1000 and 50 px wide: rounded up to multiples of 8, 104, 104, 304, 1000
    // and 56; without class widths each width is its own class: groups 56 (1 line), 104 (2), 304 (1), 1000 (1).
    const lineWidths = [100, 100, 300, 1000, 50];
    const images: PipelineImage[] = [0, 1, 2].map((i) => ({ arrivalMs: i * 100_000, detPixels: DET_PIXELS, lineWidths }));
    const cpu = { cpuMs: 30, cpuPerLineMs: 2 };
    // det 100 ms (640 x 640 at 100 ms per row); cls 2 + 3 k ms; rec 5 + 32 k W / 320 ms.
    const m = models({ overheads: true, cls: { service: { edge: { baseMs: 2, perRowMs: 3 }, origin: { baseMs: 2, perRowMs: 3 } } }, rec: { service: { edge: { baseMs: 5, perRowMs: 32 }, origin: { baseMs: 5, perRowMs: 32 } } } });
    const originNetworkMs = 1;
    // Per request outside the servers: overheadMs 0.5 + hopMs 1.5 (+ 1 at the origin).
    const det = 100 + 3;
    const post = 30 + 2 * 5;
    const rec = { w56: 5 + (32 * 1 * 56) / 320, w104: 5 + (32 * 2 * 104) / 320, w304: 5 + (32 * 1 * 304) / 320, w1000: 5 + (32 * 1 * 1000) / 320 }; // 10.6, 25.8, 35.4, 105

    it("cls in one batch of the image's lines; rec groups one after another on one shard (sum)", () => {
      const p = predictPipeline({ images, models: m, config: config(), cpu, percentile: 0.95, originNetworkMs });
      const cls = 2 + 3 * 5 + 2;
      const expected = det + post + cls + (rec.w56 + rec.w104 + rec.w304 + rec.w1000) + 2; // 340.8
      for (const latency of p.latenciesMs) expect(latency).toBeCloseTo(expected, 9);
      expect(expected).toBeCloseTo(340.8, 9);
    });

    it("rec groups side by side on enough origin replicas (max); cls in requests of 2 rows on one shard", () => {
      const p = predictPipeline({ images, models: m, config: config({ cls: { maxBatch: 2 }, rec: { placement: "origin", poolSize: 4 } }), cpu, percentile: 0.95, originNetworkMs });
      // cls: requests of 2, 2 and 1 rows, one batch each, one after another.
      const cls = 2 + 3 * 2 + (2 + 3 * 2) + (2 + 3 * 1) + 2;
      const expected = det + post + cls + Math.max(rec.w56, rec.w104, rec.w304, rec.w1000) + 3; // 270
      for (const latency of p.latenciesMs) expect(latency).toBeCloseTo(expected, 9);
      expect(p.stages.rec.latencyMs.p50).toBeCloseTo(rec.w1000 + 3, 9);
      expect(p.stages.cls.meanBatchRows).toBeCloseTo(5 / 3, 9);
    });

    it("class widths put lines of different widths in one batch at the class width", () => {
      const withClasses = { ...m, recClassWidths: [320, 1280] };
      const p = predictPipeline({ images, models: withClasses, config: config(), cpu, percentile: 0.95, originNetworkMs });
      // 56, 104, 104 and 304 in class 320 (4 rows), 1000 in class 1280.
      const expected = det + post + (2 + 3 * 5 + 2) + (5 + (32 * 4 * 320) / 320) + (5 + (32 * 1 * 1280) / 320) + 2;
      for (const latency of p.latenciesMs) expect(latency).toBeCloseTo(expected, 9);
    });
  });

  it("(e) shards spread the work: two shards halve each one's utilisation", () => {
    const images = sampleImages(PPOCR_PIPELINE_DEFAULTS.mix, { ratePerS: 2 }, 800, 5);
    const one = predictPipeline({ images, models: models(), config: config({ cls: { maxBatch: 1 }, rec: { maxBatch: 1, shards: 4 } }), cpu: NO_CPU, percentile: 0.95 });
    const two = predictPipeline({ images, models: models(), config: config({ cls: { maxBatch: 1, shards: 2 }, rec: { maxBatch: 1, shards: 4 } }), cpu: NO_CPU, percentile: 0.95 });
    // maxBatch 1: the same batches, so the same work, on twice the servers.
    expect(one.stages.cls.utilisation).toBeGreaterThan(0.05);
    expect(two.stages.cls.utilisation / one.stages.cls.utilisation).toBeCloseTo(0.5, 9);
    expect(two.stages.cls.latencyMs.p95).toBeLessThan(one.stages.cls.latencyMs.p95);
  });

  it("fails an image whose request a full queue refuses", () => {
    const burst: PipelineImage[] = Array.from({ length: 10 }, () => ({ arrivalMs: 0, detPixels: DET_PIXELS, lineWidths: [320] }));
    const m = models();
    const p = predictPipeline({ images: burst, models: { ...m, det: { ...m.det, maxQueueRows: 4 } }, config: config(), cpu: NO_CPU, percentile: 0.5 });
    // Requests that reach a buffer at one moment are all admitted before a batch starts (the
    // runtime's batch loop defers its pump to the end of the tick): four queue, six are refused.
    expect(p.failedImages).toBe(6);
    expect(p.stages.det.refused).toBe(6);
    expect(p.latencyMs.p99).toBe(Infinity);
  });
});

describe("planPipeline (ppocr, catalog profiles)", () => {
  const ppocr = ppocrStageModels(CATALOG);
  const { slo, cpu, mix } = PPOCR_PIPELINE_DEFAULTS;
  const sampleSize = 800;
  const warmupImages = 40;

  /** (c): the plan meets the SLO and no single step from it is both feasible and cheaper. */
  function expectLocalOptimum(images: PipelineImage[], plan: NonNullable<ReturnType<typeof planPipeline>["plan"]>, sloMs: number, seed: number) {
    expect(plan.meetsSlo).toBe(true);
    expect(plan.sloLatencyMs).toBeLessThanOrEqual(sloMs);
    const evaluator = new PipelineEvaluator(images, ppocr, cpu, { seed });
    const again = evaluator.predict(plan.config, slo.percentile, warmupImages);
    expect(again.percentileMs).toBe(plan.sloLatencyMs);
    expect(again.cost.totalUsdPerHour).toBe(plan.costUsdPerHour);
    const steps = pipelineSteps(plan.config, pipelineStepContext(evaluator));
    expect(steps.length).toBeGreaterThan(0);
    for (const step of steps) {
      const p = evaluator.predict(step.config, slo.percentile, warmupImages);
      const isFeasibleAndCheaper = meetsPipelineSlo(p, { ms: sloMs }) && isCheaper(p.cost.totalUsdPerHour, plan.costUsdPerHour);
      expect({ step: `${step.stage} ${step.move}`, isFeasibleAndCheaper }).toEqual({ step: `${step.stage} ${step.move}`, isFeasibleAndCheaper: false });
    }
  }

  for (const ratePerS of [0.5, 2]) {
    it(`(c) at ${ratePerS} images/s the plan meets the SLO and no single greedy step is feasible and cheaper`, () => {
      const seed = 3;
      const images = sampleImages(mix, { ratePerS }, sampleSize, seed);
      const result = planPipeline({ models: ppocr, slo, cpu, images, seed, warmupImages });
      expect(result.plan).not.toBeNull();
      expectLocalOptimum(images, result.plan!, slo.ms, seed);
      // det stays on the origin; the overrides name the three models.
      expect(result.plan!.config.det.placement).toBe("origin");
      expect(Object.keys(result.plan!.stages).sort()).toEqual(["ppocr-cls", "ppocr-det", "ppocr-rec"]);
      for (const o of Object.values(result.plan!.stages)) expect(o.batching.maxRowsPerRequest).toBeLessThanOrEqual(o.batching.maxBatch);
      expect(result.plan!.poolSize).toBe(PIPELINE_STAGES.reduce((n, s) => n + (result.plan!.config[s].placement === "origin" ? result.plan!.config[s].poolSize : 0), 0));
    });
  }

  it("(d) the joint plan never costs more than the even-split baseline where the baseline meets the SLO", () => {
    let feasibleBaselines = 0;
    for (const [ratePerS, sloMs] of [[0.5, 3000], [1, 3000], [1, 6000], [2, 8000]] as const) {
      const seed = 11;
      const images = sampleImages(mix, { ratePerS }, sampleSize, seed);
      const result = planPipeline({ models: ppocr, slo: { percentile: slo.percentile, ms: sloMs }, cpu, images, seed, warmupImages });
      expect(result.baseline.stagePlans.det).not.toBeNull();
      const baseline = result.baseline.plan;
      if (!baseline?.meetsSlo) continue;
      feasibleBaselines++;
      expect(result.plan).not.toBeNull();
      expect(result.plan!.costUsdPerHour).toBeLessThanOrEqual(baseline.costUsdPerHour);
    }
    expect(feasibleBaselines).toBeGreaterThan(0);
  });

  describe("the SLO over measurement windows (sloWindows)", () => {
    const ratePerS = 1;
    const seed = 3;
    const images = sampleImages(mix, { ratePerS }, sampleSize, seed);
    const samples = Array.from({ length: 20 }, (_, k) => sampleImages(mix, { ratePerS }, 100, 100 + k));
    /** Windows within the SLO, each predicted in full by itself (no screening, no cache). */
    const withinSlo = (c: PipelineConfig) => samples.filter((w) => predictPipeline({ images: w, models: ppocr, config: c, cpu, percentile: slo.percentile }).percentileMs <= slo.ms).length;

    it("SloWindows.share is the share of windows whose own prediction is within the SLO", () => {
      const plain = planPipeline({ models: ppocr, slo, cpu, images, seed, warmupImages }).plan!;
      const share = new SloWindows(samples, ppocr, cpu, slo).share(plain.config);
      expect(share).toBe(withinSlo(plain.config) / samples.length);
      // The plan made on the long sample alone misses the SLO in some windows: what the option is for.
      expect(share).toBeLessThan(0.95);
    });

    it("a plan for windows keeps the SLO in the share asked for, where the plan for the sample alone does not", () => {
      const plain = planPipeline({ models: ppocr, slo, cpu, images, seed, warmupImages }).plan!;
      const windowed = planPipeline({ models: ppocr, slo, cpu, images, seed, warmupImages, sloWindows: { samples, share: 0.95 } }).plan!;
      expect(windowed.meetsSlo).toBe(true);
      expect(windowed.sloLatencyMs).toBeLessThanOrEqual(slo.ms);
      expect(windowed.windowShare).toBeGreaterThanOrEqual(0.95);
      expect(withinSlo(windowed.config)).toBeGreaterThanOrEqual(0.95 * samples.length);
      expect(windowed.config).not.toEqual(plain.config);
    });

    it("draws the windows from the mix at the sample's rate, and needs a mix to draw them", () => {
      const drawn = planPipeline({ models: ppocr, slo, cpu, mix, ratePerS, sampleSize, seed, warmupImages, sloWindows: { images: 100, count: 10, share: 0.9 } }).plan!;
      expect(drawn.windowShare).toBeGreaterThanOrEqual(0.9);
      expect(() => planPipeline({ models: ppocr, slo, cpu, images, sloWindows: { images: 100, share: 0.9 } })).toThrow(/mix/);
    });
  });

  it("plans 2,000 images within a few seconds", () => {
    const started = performance.now();
    const result = planPipeline({ models: ppocr, slo, cpu, mix, ratePerS: 1 });
    expect(result.plan).not.toBeNull();
    expect(result.stats.images).toBe(2000);
    expect(performance.now() - started).toBeLessThan(8000); // < 2 s on an idle machine; headroom for shared CI cores
  });
});

describe("npm run plan -- --pipeline", () => {
  const TSX = join(process.cwd(), "node_modules/tsx/dist/cli.mjs");
  const run = (...flags: string[]) => spawnSync(process.execPath, [TSX, "src/cli/plan.ts", ...flags], { encoding: "utf8" });

  it("prints the joint plan, the even-split baseline and the overrides", () => {
    const { status, stdout } = run("--pipeline", "ppocr", "--rate", "1", "--sample", "500");
    expect(status).toBe(0);
    expect(stdout).toMatch(/joint plan \(InferLine\):/);
    expect(stdout).toMatch(/even-split baseline/);
    expect(stdout).toMatch(/^det\s+ppocr-det\s+origin/m);
    const overrides = JSON.parse(stdout.match(/^MODEL_OVERRIDES=(.*)$/m)![1]!);
    expect(Object.keys(overrides).sort()).toEqual(["ppocr-cls", "ppocr-det", "ppocr-rec"]);
  });

  it("prints JSON with --json, and refuses a pipeline without --rate", () => {
    const json = run("--pipeline", "ppocr", "--rate", "0.5", "--sample", "300", "--json");
    expect(json.status).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.plan.meetsSlo).toBe(true);
    expect(out.plan.sloLatencyMs).toBeLessThanOrEqual(out.slo.ms);
    const bad = run("--pipeline", "ppocr");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--rate/);
  });
});
