import { describe, expect, it } from "vitest";
import { batchSizeDistribution } from "../../../src/planner/batch-size";
import { countingMatrices } from "../../../src/planner/counting-process";
import { evaluateSizeClasses, highestRateSizeClasses, loadedFormationMs, meanOverBatch, planSizeClasses, roundedHistogram, type SizeClassProblem, type WidthServiceMs } from "../../../src/planner/size-classes";
import { poisson } from "./fixtures";

/** Per-row cost only (a CPU: batching saves nothing). */
const cpuLike: WidthServiceMs = (w, k) => 0.07 * w * k;
/** A large fixed cost per batch and a small one per column (a GPU's profile). */
const gpuLike: WidthServiceMs = (w, k) => 5 + 0.0008 * w * k;

const HISTOGRAM = [
  { width: 90, count: 30 },
  { width: 136, count: 12 },
  { width: 200, count: 25 },
  { width: 328, count: 8 },
  { width: 410, count: 4 },
  { width: 600, count: 3 },
  { width: 832, count: 1 },
];
const problem = (serviceMs: WidthServiceMs, ratePerS = 200): SizeClassProblem => ({ histogram: HISTOGRAM, maxWidth: 1280, serviceMs, ratePerS, maxBatch: 8, formationMs: 10 });

/** Every choice of class widths among the distinct observed widths (the widest always one), by enumeration. */
function bruteForce(p: SizeClassProblem): { busyMsPerS: number; widths: number[] } {
  const bins = roundedHistogram(p.histogram, 8, p.maxWidth).map((b) => b.width);
  let best = { busyMsPerS: Infinity, widths: [] as number[] };
  for (let mask = 0; mask < 1 << (bins.length - 1); mask++) {
    const widths = [...bins.slice(0, -1).filter((_, i) => mask & (1 << i)), bins.at(-1)!];
    const plan = evaluateSizeClasses(p, widths);
    if (plan.busyMsPerS < best.busyMsPerS - 1e-9) best = plan;
  }
  return best;
}

describe("planSizeClasses", () => {
  it.each([
    ["a CPU-like profile", cpuLike, 200],
    ["a GPU-like profile at light load", gpuLike, 50],
    ["a GPU-like profile at heavy load", gpuLike, 2000],
    ["a profile with a fixed cost per row", ((w, k) => 2 + 0.5 * k + 0.002 * w * k) as WidthServiceMs, 300],
  ])("finds the least busy time that enumerating every set of classes finds, with %s", (_, serviceMs, rate) => {
    const p = problem(serviceMs, rate);
    const plan = planSizeClasses(p);
    const brute = bruteForce(p);
    expect(plan.busyMsPerS).toBeCloseTo(brute.busyMsPerS, 9);
    expect(plan.widths.at(-1)).toBe(1280);
  });

  it("keeps every width its own class when batching saves nothing, so nothing is padded", () => {
    const plan = planSizeClasses(problem(cpuLike));
    expect(plan.widths).toEqual([96, 136, 200, 328, 416, 600, 832, 1280]);
    expect(plan.paddingWaste).toBe(0);
  });

  it("merges classes when a batch's fixed cost dominates, more at light load than at heavy", () => {
    const light = planSizeClasses(problem(gpuLike, 50));
    const heavy = planSizeClasses(problem(gpuLike, 5000));
    expect(light.widths.length).toBeLessThan(8);
    expect(light.widths.length).toBeLessThanOrEqual(heavy.widths.length);
    expect(light.paddingWaste).toBeGreaterThan(0);
  });

  it("respects maxClasses", () => {
    const plan = planSizeClasses({ ...problem(cpuLike), maxClasses: 2 });
    expect(plan.widths).toHaveLength(3); // two classes and the catch-all at maxWidth
    expect(plan.busyMsPerS).toBeCloseTo(Math.min(...[96, 136, 200, 328, 416, 600].map((w) => evaluateSizeClasses(problem(cpuLike), [w, 832]).busyMsPerS)), 9);
  });

  it("pads no request by more than maxPadRatio of its width, and finds the best such classes", () => {
    const p = { ...problem(gpuLike, 50), maxPadRatio: 0.5 };
    const plan = planSizeClasses(p);
    const bins = roundedHistogram(p.histogram, 8, p.maxWidth);
    for (const b of bins) expect(plan.widths.find((w) => w >= b.width)!).toBeLessThanOrEqual(b.width * 1.5);
    expect(plan.busyMsPerS).toBeGreaterThan(planSizeClasses(problem(gpuLike, 50)).busyMsPerS);
    // Brute force over the sets that respect the bound.
    let best = Infinity;
    for (let mask = 0; mask < 1 << (bins.length - 1); mask++) {
      const widths = [...bins.slice(0, -1).map((b) => b.width).filter((_, i) => mask & (1 << i)), bins.at(-1)!.width];
      if (bins.some((b) => widths.find((w) => w >= b.width)! > b.width * 1.5)) continue;
      best = Math.min(best, evaluateSizeClasses(p, widths).busyMsPerS);
    }
    expect(plan.busyMsPerS).toBeCloseTo(best, 9);
  });

  it("predicts padding waste as padded columns over real ones", () => {
    const plan = evaluateSizeClasses({ ...problem(cpuLike), histogram: [{ width: 96, count: 1 }, { width: 128, count: 3 }] }, [128]);
    expect(plan.paddingWaste).toBeCloseTo(32 / (96 + 3 * 128), 12);
    expect(plan.classes.map((c) => c.width)).toEqual([128, 1280]);
  });
});

describe("meanOverBatch", () => {
  it("is the planner's batch size for Poisson arrivals (src/planner/batch-size.ts)", () => {
    const [rate, windowMs, maxBatch] = [120, 25, 8];
    const d = batchSizeDistribution(poisson(rate), countingMatrices(poisson(rate), windowMs / 1000, maxBatch - 1), maxBatch);
    const ours = meanOverBatch((rate * windowMs) / 1000, maxBatch, (k) => k * k);
    expect(ours.meanBatch).toBeCloseTo(d.meanBatch, 10);
    expect(ours.meanValue).toBeCloseTo(Array.from(d.probs).reduce((s, p, i) => s + p * (i + 1) ** 2, 0), 10);
  });
});

describe("highestRateSizeClasses", () => {
  it("finds the rate at which the least busy time reaches one server", () => {
    const { ratePerS, plan } = highestRateSizeClasses(problem(gpuLike));
    expect(plan.busyMsPerS).toBeLessThanOrEqual(1000);
    expect(planSizeClasses(problem(gpuLike, ratePerS * 1.01)).busyMsPerS).toBeGreaterThan(1000);
  });

  it("ranks fixed class widths by the rate they carry: with a CPU-like profile, exact widths beat one padded class", () => {
    const exact = highestRateSizeClasses(problem(cpuLike), { widths: [96, 136, 200, 328, 416, 600, 832, 1280] }).ratePerS;
    const padToMax = highestRateSizeClasses(problem(cpuLike), { widths: [832, 1280] }).ratePerS;
    expect(exact).toBeGreaterThan(padToMax);
  });
});

describe("loadedFormationMs", () => {
  const bounds = { sloMs: 2000, maxQueueRows: 64, longestBatchMs: 100, windowMs: 10 };

  it("lets a class gather for the queue's room at high rates, the SLO's at low ones, and never less than the window", () => {
    expect(loadedFormationMs(bounds, 640)).toBeCloseTo(100, 9);
    expect(loadedFormationMs(bounds, 10)).toBe(1900);
    expect(loadedFormationMs(bounds, 1e6)).toBe(10);
  });

  it("raises the highest rate of many classes more than that of few (their batches fill under load)", () => {
    const p = problem(gpuLike);
    const at = (widths: number[], formationMsAt?: (r: number) => number) => highestRateSizeClasses(p, { widths, ...(formationMsAt && { formationMsAt }) }).ratePerS;
    const exact = [96, 136, 200, 328, 416, 600, 832, 1280];
    const loaded = (r: number) => loadedFormationMs(bounds, r);
    expect(at(exact, loaded) / at(exact)).toBeGreaterThan(at([832, 1280], loaded) / at([832, 1280]));
  });
});
