/**
 * histogramQuantile against closed forms: observations spread evenly over buckets have exact
 * quantiles, and Prometheus's edge cases (the +Inf bucket, no observations, q outside [0, 1],
 * unsorted, repeated and non-monotonic buckets) answer as `histogram_quantile` does.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { histogramQuantile, upperBoundOf, type Bucket } from "../../../src/dashboard/histogram-quantile";

/** Cumulative buckets for `perBucket[i]` observations in (bounds[i-1], bounds[i]], then +Inf with `overflow` more. */
function cumulative(bounds: number[], perBucket: number[], overflow = 0): Bucket[] {
  let count = 0;
  const buckets = bounds.map((upperBound, i) => ({ upperBound, count: (count += perBucket[i]!) }));
  return [...buckets, { upperBound: Infinity, count: count + overflow }];
}

describe("histogramQuantile", () => {
  it("gives 10q when 100 observations are spread evenly over (0, 10] in unit buckets", () => {
    const buckets = cumulative([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], new Array(10).fill(10));
    for (const q of [0.01, 0.25, 0.33, 0.5, 0.9, 0.95, 0.99, 1]) expect(histogramQuantile(q, buckets)).toBeCloseTo(10 * q, 12);
  });

  it("interpolates linearly inside the bucket holding every observation: a + (b - a) q", () => {
    const buckets = cumulative([0.005, 0.01, 0.025, 0.05, 0.1], [0, 0, 0, 40, 0]);
    for (const q of [0.1, 0.5, 0.95, 0.99]) expect(histogramQuantile(q, buckets)).toBeCloseTo(0.025 + 0.025 * q, 12);
  });

  it("starts the first bucket at 0", () => {
    expect(histogramQuantile(0.5, cumulative([4, 8], [10, 0]))).toBe(2);
  });

  it("answers the highest finite bound when the rank falls in the +Inf bucket", () => {
    expect(histogramQuantile(0.99, cumulative([1, 2], [5, 5], 90))).toBe(2);
  });

  it("answers a first bound at or below 0 as it is", () => {
    expect(histogramQuantile(0.5, [{ upperBound: -1, count: 10 }, { upperBound: Infinity, count: 10 }])).toBe(-1);
  });

  it("is NaN without observations, without a +Inf bucket, with one bucket, or for NaN; infinite outside [0, 1]", () => {
    expect(histogramQuantile(0.5, cumulative([1, 2], [0, 0]))).toBeNaN();
    expect(histogramQuantile(0.5, [{ upperBound: 1, count: 3 }, { upperBound: 2, count: 4 }])).toBeNaN();
    expect(histogramQuantile(0.5, [{ upperBound: Infinity, count: 4 }])).toBeNaN();
    expect(histogramQuantile(0.5, [])).toBeNaN();
    expect(histogramQuantile(NaN, cumulative([1], [1]))).toBeNaN();
    expect(histogramQuantile(-0.1, cumulative([1], [1]))).toBe(-Infinity);
    expect(histogramQuantile(1.1, cumulative([1], [1]))).toBe(Infinity);
  });

  it("sorts buckets, adds up repeated bounds (two shards) and lifts dips in cumulative counts", () => {
    const whole = cumulative([1, 2, 4], [10, 10, 20]);
    const shardA = cumulative([1, 2, 4], [4, 6, 10]);
    const shardB = cumulative([1, 2, 4], [6, 4, 10]);
    expect(histogramQuantile(0.75, [...shardB.reverse(), ...shardA])).toBe(histogramQuantile(0.75, whole));
    expect(histogramQuantile(0.75, whole)).toBe(3);
    const dipped = [{ upperBound: 1, count: 10 }, { upperBound: 2, count: 8 }, { upperBound: 4, count: 20 }, { upperBound: Infinity, count: 20 }];
    expect(histogramQuantile(0.5, dipped)).toBe(histogramQuantile(0.5, cumulative([1, 2, 4], [10, 0, 10])));
  });

  it("never decreases as q grows, and stays within the finite bounds", () => {
    const bounds = [0.001, 0.01, 0.1, 1, 10];
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 5, maxLength: 5 }), fc.nat(1000), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (counts, overflow, q1, q2) => {
        fc.pre(counts.some((n) => n > 0) || overflow > 0);
        const buckets = cumulative(bounds, counts, overflow);
        const [low, high] = q1 <= q2 ? [q1, q2] : [q2, q1];
        const a = histogramQuantile(low, buckets);
        const b = histogramQuantile(high, buckets);
        expect(a).toBeLessThanOrEqual(b + 1e-12);
        expect(a).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThanOrEqual(10);
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe("upperBoundOf", () => {
  it("reads prom-client's le labels: numbers as they are, \"+Inf\" as Infinity, strings as numbers", () => {
    expect(upperBoundOf(0.25)).toBe(0.25);
    expect(upperBoundOf("+Inf")).toBe(Infinity);
    expect(upperBoundOf("0.5")).toBe(0.5);
    expect(upperBoundOf(undefined)).toBeNaN();
  });
});
