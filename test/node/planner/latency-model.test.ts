import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { estimateLatency } from "../../../src/planner/latency-model";
import { simulate } from "../../../src/planner/simulator";
import { EXAMPLE_MAP, TWITTER_MAP12, md1WaitCdf, poisson, relativeError } from "./fixtures";

function md1WaitPercentile(ratePerS: number, serviceMs: number, q: number): number {
  // Erlang's alternating sum loses precision for large x / D; 15 D covers the 99th percentile at rho <= 0.8.
  let [lo, hi] = [0, 15 * serviceMs];
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (md1WaitCdf(ratePerS, serviceMs, mid) >= q) hi = mid;
    else lo = mid;
  }
  return hi;
}

describe("latency model: closed forms", () => {
  it("gives latency s(1) when maxBatch is 1 and servers are unbounded", () => {
    const e = estimateLatency({ arrival: EXAMPLE_MAP, service: { kind: "linear", baseMs: 10, perItemMs: 34 }, servers: { kind: "unbounded" }, maxBatch: 1, windowMs: 250 });
    expect(e.latencyMs.p50).toBeCloseTo(44, 5);
    expect(e.latencyMs.p99).toBeCloseTo(44, 5);
    expect(e.meanBatch).toBe(1);
  });

  it("gives latency window + s(1) at every percentile when the window never fills (maxBatch 2, tiny rate)", () => {
    const e = estimateLatency({ arrival: poisson(0.001), service: { kind: "linear", baseMs: 5, perItemMs: 1 }, servers: { kind: "unbounded" }, maxBatch: 2, windowMs: 100 });
    expect(e.latencyMs.p50).toBeCloseTo(106, 3);
    expect(e.latencyMs.p95).toBeCloseTo(106, 3);
  });

  it.each([0.5, 0.8])("has the Pollaczek-Khinchine mean wait and P(no wait) = 1 - rho for M/D/1 (rho %s)", (rho) => {
    const [rate, serviceMs] = [100, rho * 10];
    for (const formation of ["sealed", "lazy"] as const) {
      const e = estimateLatency({ arrival: poisson(rate), service: { kind: "table", ms: [serviceMs] }, servers: { kind: "fixed", count: 1, formation }, maxBatch: 1, windowMs: 50 });
      // Tolerances: the wait lives on a grid of about s / 48 (the mean is kept by splitting mass
      // between grid points; the point mass at s is read off one histogram bin of s / 96).
      expect(relativeError(e.meanLatencyMs, serviceMs + (rho * serviceMs) / (2 * (1 - rho)))).toBeLessThan(5e-3);
      expect(Math.abs(e.distribution.cdf(serviceMs * 1.011) - (1 - rho))).toBeLessThan(0.02);
      expect(e.utilisation).toBeCloseTo(rho, 6);
    }
  });

  it("gives the M/D/1 latency percentiles within 1.5 % (rho 0.8), and the simulator matches Erlang's formula", () => {
    const [rate, serviceMs] = [100, 8];
    const e = estimateLatency({ arrival: poisson(rate), service: { kind: "table", ms: [serviceMs] }, servers: { kind: "fixed", count: 1 }, maxBatch: 1, windowMs: 50 });
    const sim = simulate({ arrival: poisson(rate), service: { kind: "table", ms: [serviceMs] }, servers: { kind: "fixed", count: 1 }, maxBatch: 1, windowMs: 50, requests: 400_000, seed: 3 });
    for (const q of [0.9, 0.95, 0.99]) {
      const exact = md1WaitPercentile(rate, serviceMs, q) + serviceMs;
      expect(relativeError(e.distribution.percentile(q), exact)).toBeLessThan(0.015);
      const simulated = sim.latencies[Math.ceil(q * sim.latencies.length) - 1]!;
      expect(relativeError(simulated, exact)).toBeLessThan(0.02);
    }
  });
});

describe("latency model: properties", () => {
  const config = fc.record({
    ratePerS: fc.double({ min: 1, max: 300, noNaN: true }),
    maxBatch: fc.integer({ min: 1, max: 24 }),
    windowMs: fc.double({ min: 1, max: 300, noNaN: true }),
    baseMs: fc.double({ min: 0, max: 20, noNaN: true }),
    perItemMs: fc.double({ min: 0.1, max: 10, noNaN: true }),
  });

  it("gives percentiles that increase with the percentile", () => {
    fc.assert(
      fc.property(config, fc.double({ min: 0.01, max: 0.98, noNaN: true }), fc.double({ min: 0.001, max: 0.2, noNaN: true }), (c, q, dq) => {
        const e = estimateLatency({ arrival: poisson(c.ratePerS), service: { kind: "linear", baseMs: c.baseMs, perItemMs: c.perItemMs }, servers: { kind: "unbounded" }, maxBatch: c.maxBatch, windowMs: c.windowMs, gridSteps: 32 });
        expect(e.distribution.percentile(q)).toBeLessThanOrEqual(e.distribution.percentile(Math.min(0.999, q + dq)));
      }),
      { numRuns: 40, seed: 1 },
    );
  });

  // The issue asks for "latency non-decreasing in the window at fixed maxBatch". That holds for the
  // mean, and for the tail percentiles up to a fraction of a percent, but not for the median: a longer
  // window moves requests from timed-out batches (latency T + s) into full batches that leave early.
  const widen = fc.double({ min: 1.05, max: 4, noNaN: true });
  type Config = typeof config extends fc.Arbitrary<infer T> ? T : never;
  const at = (c: Config, windowMs: number) =>
    estimateLatency({ arrival: poisson(c.ratePerS), service: { kind: "linear", baseMs: c.baseMs, perItemMs: c.perItemMs }, servers: { kind: "unbounded" }, maxBatch: c.maxBatch, windowMs });

  it("gives a mean latency that does not decrease with the window (unbounded servers, service growing with size)", () => {
    fc.assert(
      fc.property(config, widen, (c, factor) => {
        // Tolerance: the mean buffer wait is integrated on the grid (about 1e-5 relative).
        expect(at(c, c.windowMs).meanLatencyMs).toBeLessThanOrEqual(at(c, c.windowMs * factor).meanLatencyMs * (1 + 1e-4));
      }),
      { numRuns: 60, seed: 2 },
    );
  });

  it("gives p95 and p99 that do not decrease with the window by more than 1 %", () => {
    fc.assert(
      fc.property(config, widen, fc.constantFrom(0.95, 0.99), (c, factor, q) => {
        expect(at(c, c.windowMs).distribution.percentile(q)).toBeLessThanOrEqual(at(c, c.windowMs * factor).distribution.percentile(q) * 1.01);
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  it("lets the median fall as the window grows when batches start to fill, as the simulator does", () => {
    const c = { arrival: poisson(16.8), service: { kind: "linear" as const, baseMs: 0, perItemMs: 3.25 }, servers: { kind: "unbounded" as const }, maxBatch: 3 };
    const model = (windowMs: number) => estimateLatency({ ...c, windowMs }).latencyMs.p50;
    const simulated = (windowMs: number) => simulate({ ...c, windowMs, requests: 100_000, seed: 9 }).latencyMs.p50;
    const [short, long, simShort, simLong] = [model(93), model(208), simulated(93), simulated(208)];
    expect(long).toBeLessThan(short * 0.9);
    expect(simLong).toBeLessThan(simShort * 0.9);
  });
});

describe("latency model vs simulator (fixed seeds)", () => {
  const cases = [
    { name: "Poisson, unbounded", arrival: poisson(80), servers: { kind: "unbounded" as const }, maxBatch: 16, windowMs: 60, shards: 1, tolerance: 0.02 },
    { name: "example MAP, unbounded, 2 shards", arrival: EXAMPLE_MAP, servers: { kind: "unbounded" as const }, maxBatch: 8, windowMs: 200, shards: 2, tolerance: 0.02 },
    { name: "Twitter hour 12, unbounded", arrival: TWITTER_MAP12, servers: { kind: "unbounded" as const }, maxBatch: 32, windowMs: 300, shards: 1, tolerance: 0.02 },
    { name: "Poisson, one DO per shard", arrival: poisson(150), servers: { kind: "fixed" as const, count: 1, scope: "per-shard" as const }, maxBatch: 8, windowMs: 20, shards: 2, tolerance: 0.1 },
    { name: "Twitter hour 12, shared pool of 2", arrival: TWITTER_MAP12, servers: { kind: "fixed" as const, count: 2 }, maxBatch: 4, windowMs: 30, shards: 3, tolerance: 0.1 },
  ];
  it.each(cases)("agrees on p50/p95/p99 and the mean batch: $name", (c) => {
    const service = { kind: "linear" as const, baseMs: 12, perItemMs: 3 };
    const model = estimateLatency({ ...c, service });
    const sim = simulate({ ...c, service, requests: 200_000, seed: 42 });
    expect(relativeError(model.meanBatch, sim.meanBatch)).toBeLessThan(0.01);
    expect(relativeError(model.utilisation, sim.utilisation)).toBeLessThan(0.02);
    for (const key of ["p50", "p95", "p99"] as const) expect(relativeError(model.latencyMs[key], sim.latencyMs[key])).toBeLessThan(c.tolerance);
  });
});
