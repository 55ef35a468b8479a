import { describe, expect, it } from "vitest";
import { RateChangeDetector } from "../../../src/control/change-point";
import { createRng } from "../../../src/planner/simulator";

/**
 * A Poisson(mean) count: Knuth's product-of-uniforms method on pieces of mean <= 20 (a sum of
 * independent Poisson counts is Poisson), so e^-mean never underflows and the sample is exact.
 */
function poissonCount(mean: number, rng: () => number): number {
  let total = 0;
  for (let left = mean; left > 0; left -= 20) {
    const limit = Math.exp(-Math.min(left, 20));
    let product = rng();
    while (product > limit) {
      total += 1;
      product *= rng();
    }
  }
  return total;
}

/** Intervals from a step (1 = the first interval at the new rate) to the alarm `expected`, per trial. */
function detectionDelays(fromPerS: number, toPerS: number, expected: "up" | "down", trials = 200, cap = 1000): number[] {
  return Array.from({ length: trials }, (_, trial) => {
    const rng = createRng(1000 + trial);
    const detector = new RateChangeDetector({ intervalMs: 1000 });
    for (let i = 0; i < 120; i++) detector.push(poissonCount(fromPerS, rng)); // the baseline is learnt, as in production
    for (let k = 1; k <= cap; k++) if (detector.push(poissonCount(toPerS, rng)) === expected) return k;
    return Infinity;
  });
}

/** Alarms per hour of 1 s intervals on stationary Poisson counts at `ratePerS`, over `hours` seeded hours. */
function falseAlarmsPerHour(ratePerS: number, hours = 50): number {
  let alarms = 0;
  for (let hour = 0; hour < hours; hour++) {
    const rng = createRng(5000 + hour);
    const detector = new RateChangeDetector({ intervalMs: 1000 });
    for (let i = 0; i < 3600; i++) if (detector.push(poissonCount(ratePerS, rng)) !== undefined) alarms += 1;
  }
  return alarms / hours;
}

const max = (values: number[]): number => Math.max(...values);
const mean = (values: number[]): number => values.reduce((s, v) => s + v, 0) / values.length;

describe("poissonCount", () => {
  it("has the mean and variance of a Poisson count at small and large means", () => {
    for (const m of [0.5, 7, 200]) {
      const rng = createRng(1);
      const xs = Array.from({ length: 20_000 }, () => poissonCount(m, rng));
      const mu = mean(xs);
      const variance = xs.reduce((s, x) => s + (x - mu) ** 2, 0) / (xs.length - 1);
      expect(Math.abs(mu - m) / m).toBeLessThan(0.03);
      expect(Math.abs(variance - m) / m).toBeLessThan(0.06);
    }
  });
});

describe("RateChangeDetector", () => {
  it("learns its baseline from the first 5 intervals and raises no alarm meanwhile", () => {
    const detector = new RateChangeDetector({ intervalMs: 500 });
    for (const count of [10, 12, 8, 10]) expect(detector.push(count)).toBeUndefined();
    expect(detector.baselineRatePerS).toBeUndefined();
    expect(detector.push(10)).toBeUndefined();
    expect(detector.baselineRatePerS).toBeCloseTo(20, 12);
    expect(detector.sinceAlarm).toBe(5);
  });

  it('detects a step from 20/s to 60/s as "up" within 2 intervals in every one of 200 trials', () => {
    const delays = detectionDelays(20, 60, "up");
    expect(max(delays)).toBeLessThanOrEqual(2);
    expect(mean(delays)).toBeLessThan(1.1);
  });

  it('detects a step from 60/s to 20/s as "down" within 2 intervals in every one of 200 trials', () => {
    const delays = detectionDelays(60, 20, "down");
    expect(max(delays)).toBeLessThanOrEqual(2);
    expect(mean(delays)).toBeLessThan(1.1);
  });

  it('detects a step from 2/s to 6/s as "up" within 11 intervals in every one of 200 trials', () => {
    const delays = detectionDelays(2, 6, "up");
    expect(max(delays)).toBeLessThanOrEqual(11);
    expect(mean(delays)).toBeLessThan(7);
  });

  it("raises at most 0.2 false alarms per hour (50 seeded hours) on stationary Poisson counts at 2, 20 and 200/s", () => {
    for (const ratePerS of [2, 20, 200]) expect(falseAlarmsPerHour(ratePerS), `${ratePerS}/s`).toBeLessThanOrEqual(0.2);
  });

  it("re-baselines on the counts since the statistic last left 0 when an alarm fires", () => {
    const detector = new RateChangeDetector({ intervalMs: 1000 });
    detector.reset(20);
    expect(detector.push(22)).toBeUndefined(); // both statistics stay at 0
    expect(detector.push(45)).toBeUndefined(); // up: 45 ln 1.5 - 0.5 (20 + 2 sqrt(20 / 5)) = 6.2
    expect(detector.push(50)).toBe("up"); // 6.2 + 8.3 > 8: the excursion is 45, 50
    expect(detector.baselineRatePerS).toBeCloseTo(47.5, 12);
    expect(detector.sinceAlarm).toBe(0);
  });

  it("raises no second alarm for the same step and refines the new baseline", () => {
    const rng = createRng(3);
    const detector = new RateChangeDetector({ intervalMs: 1000 });
    for (let i = 0; i < 60; i++) detector.push(poissonCount(20, rng));
    let alarm: string | undefined;
    while (alarm === undefined) alarm = detector.push(poissonCount(60, rng));
    expect(alarm).toBe("up");
    expect(Math.abs(detector.baselineRatePerS! - 60) / 60).toBeLessThan(0.3);
    const after = Array.from({ length: 300 }, () => detector.push(poissonCount(60, rng)));
    expect(after.filter((a) => a !== undefined)).toEqual([]);
    expect(Math.abs(detector.baselineRatePerS! - 60) / 60).toBeLessThan(0.05);
    expect(detector.sinceAlarm).toBe(300);
  });

  it("keeps refining its baseline from sparse counts (100 ms intervals at 2/s) without alarms", () => {
    let alarms = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const rng = createRng(600 + seed);
      const detector = new RateChangeDetector({ intervalMs: 100 });
      for (let i = 0; i < 6000; i++) if (detector.push(poissonCount(0.2, rng)) !== undefined) alarms += 1;
      expect(Math.abs(detector.baselineRatePerS! - 2) / 2).toBeLessThan(0.1);
    }
    expect(alarms).toBe(0);
  });

  it("follows a slow drift (20/s -> 30/s in 20 minutes) with at most 3 alarms in 20 runs", () => {
    let alarms = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const rng = createRng(700 + seed);
      const detector = new RateChangeDetector({ intervalMs: 1000 });
      for (let i = 0; i < 1200; i++) if (detector.push(poissonCount(20 + (10 * i) / 1200, rng)) !== undefined) alarms += 1;
      expect(Math.abs(detector.baselineRatePerS! - 30) / 30).toBeLessThan(0.08);
    }
    expect(alarms).toBeLessThanOrEqual(3);
  });

  it('stays silent at a zero rate and raises "up" within 9 intervals when 5/s starts', () => {
    const rng = createRng(4);
    const detector = new RateChangeDetector({ intervalMs: 1000 });
    for (let i = 0; i < 600; i++) expect(detector.push(0)).toBeUndefined();
    expect(detector.baselineRatePerS).toBe(0);
    let k = 1;
    while (detector.push(poissonCount(5, rng)) !== "up") k += 1;
    expect(k).toBeLessThanOrEqual(9);
  });

  it("monitors at once from the baseline given to reset", () => {
    const detector = new RateChangeDetector({ intervalMs: 100 });
    detector.push(3);
    detector.reset(200); // 20 per 100 ms interval
    expect(detector.baselineRatePerS).toBe(200);
    expect(detector.sinceAlarm).toBe(0);
    expect(detector.push(20)).toBeUndefined();
    expect(detector.push(60) ?? detector.push(60)).toBe("up");
    expect(detector.baselineRatePerS).toBeGreaterThan(400);
  });

  it("rejects invalid options and counts", () => {
    expect(() => new RateChangeDetector({ intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => new RateChangeDetector({ intervalMs: 1000, upRatio: 0.9 })).toThrow(/upRatio/);
    expect(() => new RateChangeDetector({ intervalMs: 1000, downRatio: 1 })).toThrow(/downRatio/);
    expect(() => new RateChangeDetector({ intervalMs: 1000 }).push(-1)).toThrow(/count/);
    expect(() => new RateChangeDetector({ intervalMs: 1000 }).reset(Number.NaN)).toThrow(/baselineRatePerS/);
  });
});
