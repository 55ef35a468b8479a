import { describe, expect, it } from "vitest";
import { type ArrivalEstimate, estimateArrival } from "../../../src/control/arrival-estimate";
import { type MarkovianArrival, mapProblems, toMarkovianArrival } from "../../../src/planner/arrival";
import { mapGapScv } from "../../../src/planner/fit-map";
import { createRng, sampleArrivals } from "../../../src/planner/simulator";

const BIN_MS = 100;

/** Counts per BIN_MS bin of `spanS` seconds of arrivals from `arrival` (seeded). */
function binnedCounts(arrival: MarkovianArrival, spanS: number, seed: number): Float64Array {
  const times = sampleArrivals(arrival, Math.ceil(arrival.ratePerS * spanS * 1.5) + 100, createRng(seed));
  const counts = new Float64Array((spanS * 1000) / BIN_MS);
  for (const t of times) {
    const bin = Math.floor(t / BIN_MS);
    if (bin < counts.length) counts[bin]! += 1;
  }
  return counts;
}

/** An on/off-like MMPP(2): `onPerS` for a mean 2 s, then `offPerS` for a mean 6 s. */
function onOff(onPerS: number, offPerS: number): MarkovianArrival {
  return toMarkovianArrival({ kind: "map", D0: [[-(onPerS + 0.5), 0.5], [1 / 6, -(offPerS + 1 / 6)]], D1: [[onPerS, 0], [0, offPerS]] });
}

const poisson = (ratePerS: number): MarkovianArrival => toMarkovianArrival({ kind: "poisson", ratePerS });
const relativeError = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const meanRatePerS = (counts: ArrayLike<number>): number => Array.from(counts).reduce((s, c) => s + c, 0) / ((counts.length * BIN_MS) / 1000);

/** The MMPP(2) of a "map" estimate: arrival and switching rates per second (phase 0 the busier). */
function mmpp(estimate: ArrivalEstimate) {
  if (estimate.spec.kind !== "map") throw new Error(`expected a map, got ${estimate.spec.kind}`);
  const { D0, D1 } = estimate.spec;
  return { highPerS: D1[0]![0]!, lowPerS: D1[1]![1]!, highToLowPerS: D0[0]![1]!, lowToHighPerS: D0[1]![0]!, arrival: toMarkovianArrival(estimate.spec) };
}

/** A spec is usable by the planner: no problems, and its mean rate is the estimate's. */
function expectUsable(estimate: ArrivalEstimate): void {
  expect(Number.isFinite(estimate.ratePerS) && Number.isFinite(estimate.dispersion)).toBe(true);
  if (estimate.spec.kind === "poisson") {
    expect(estimate.spec.ratePerS).toBe(estimate.ratePerS);
    return;
  }
  expect(mapProblems(estimate.spec.D0, estimate.spec.D1)).toEqual([]);
  expect(relativeError(toMarkovianArrival(estimate.spec).ratePerS, estimate.ratePerS)).toBeLessThan(1e-9);
}

describe("estimateArrival", () => {
  it("gives Poisson at the mean rate (within 5 %) for Poisson counts", () => {
    for (const ratePerS of [1, 30, 300]) {
      const estimate = estimateArrival(binnedCounts(poisson(ratePerS), 300, 11), BIN_MS);
      expect(estimate.spec.kind).toBe("poisson");
      expect(relativeError(estimate.ratePerS, ratePerS)).toBeLessThan(0.05);
      expect(Math.abs(estimate.dispersion - 1)).toBeLessThan(0.1);
    }
  });

  it("takes at most 2 of 100 Poisson windows (5 min of 100 ms bins) for over-dispersed, at 1, 10 and 100/s", () => {
    for (const ratePerS of [1, 10, 100]) {
      let maps = 0;
      for (let seed = 1; seed <= 100; seed++) if (estimateArrival(binnedCounts(poisson(ratePerS), 300, seed), BIN_MS).spec.kind === "map") maps += 1;
      expect(maps, `${ratePerS}/s`).toBeLessThanOrEqual(2);
    }
  });

  it("recovers an MMPP(2) (100/s for 2 s, 5/s for 6 s) from 10 minutes of 100 ms counts in 5 seeded runs", () => {
    const truth = onOff(100, 5);
    for (let seed = 1; seed <= 5; seed++) {
      const counts = binnedCounts(truth, 600, seed);
      const estimate = estimateArrival(counts, BIN_MS, { maxBins: counts.length });
      const fit = mmpp(estimate);
      expectUsable(estimate);
      expect(relativeError(estimate.ratePerS, meanRatePerS(counts))).toBeLessThan(1e-12);
      expect(relativeError(fit.arrival.ratePerS, meanRatePerS(counts))).toBeLessThan(1e-9);
      expect(relativeError(fit.highPerS, 100)).toBeLessThan(0.15);
      expect(relativeError(fit.lowPerS, 5)).toBeLessThan(0.15);
      expect(relativeError(fit.highToLowPerS, 0.5)).toBeLessThan(0.3);
      expect(relativeError(fit.lowToHighPerS, 1 / 6)).toBeLessThan(0.3);
      expect(mapGapScv(fit.arrival)).toBeGreaterThan(5); // the truth's is 7.5
      expect(estimate.dispersion).toBeGreaterThan(5);
    }
  });

  it("recovers on/off traffic (100/s for 2 s, silent for 6 s) with a silent phase in 5 seeded runs", () => {
    const truth = onOff(100, 0);
    for (let seed = 1; seed <= 5; seed++) {
      const counts = binnedCounts(truth, 600, seed);
      const estimate = estimateArrival(counts, BIN_MS, { maxBins: counts.length });
      const fit = mmpp(estimate);
      expectUsable(estimate);
      expect(relativeError(fit.highPerS, 100)).toBeLessThan(0.15);
      expect(fit.lowPerS).toBeLessThan(0.5);
      expect(relativeError(fit.highToLowPerS, 0.5)).toBeLessThan(0.3);
      expect(relativeError(fit.lowToHighPerS, 1 / 6)).toBeLessThan(0.3);
      expect(mapGapScv(fit.arrival)).toBeGreaterThan(100); // the truth's is 226
    }
  });

  it("gives Poisson at rate 0 with dispersion 1 when there are no arrivals or no bins", () => {
    for (const counts of [new Float64Array(3000), []]) {
      expect(estimateArrival(counts, BIN_MS)).toEqual({ ratePerS: 0, dispersion: 1, spec: { kind: "poisson", ratePerS: 0 } });
    }
  });

  it("returns a spec the planner accepts, at the counts' mean rate, for awkward counts", () => {
    const spike = new Float64Array(3000);
    spike[1500] = 50;
    const awkward = [
      spike,
      Float64Array.from({ length: 3000 }, (_, i) => Math.round(2 + i / 100)), // a ramp
      Float64Array.from({ length: 3000 }, (_, i) => (i < 1500 ? 1 : 10)), // one step
      Float64Array.from({ length: 3000 }, (_, i) => (i % 2 ? 0 : 10)), // alternating: no MMPP has it
      Float64Array.from({ length: 3000 }, (_, i) => (i % 400 < 100 ? 5000 : 2000) + (i % 7)), // huge counts
      Float64Array.from({ length: 3000 }, (_, i) => (i % 400 < 100 ? 2.5 : 0.25)), // fractional counts
    ];
    for (const counts of awkward) {
      const estimate = estimateArrival(counts, BIN_MS);
      expectUsable(estimate);
      expect(relativeError(estimate.ratePerS, meanRatePerS(counts))).toBeLessThan(1e-12);
    }
  });

  it("uses only the most recent maxBins bins and gives Poisson for fewer than minBinsForMap", () => {
    const counts = [...new Array<number>(1000).fill(100), ...binnedCounts(poisson(10), 300, 5)];
    const estimate = estimateArrival(counts, BIN_MS);
    expect(estimate.spec.kind).toBe("poisson");
    expect(relativeError(estimate.ratePerS, 10)).toBeLessThan(0.05);
    const bursty = binnedCounts(onOff(100, 0), 600, 1);
    expect(estimateArrival(bursty.subarray(0, 99), BIN_MS).spec.kind).toBe("poisson");
    expect(estimateArrival(bursty.subarray(0, 99), BIN_MS, { minBinsForMap: 50 }).spec.kind).toBe("map");
  });

  it("takes under 5 ms for 3000 bins of bursty counts", () => {
    const counts = binnedCounts(onOff(100, 5), 300, 9);
    for (let i = 0; i < 5; i++) estimateArrival(counts, BIN_MS); // warm up the JIT
    const calls = 50;
    const startMs = performance.now();
    for (let i = 0; i < calls; i++) estimateArrival(counts, BIN_MS);
    expect((performance.now() - startMs) / calls).toBeLessThan(5);
  });

  it("rejects a non-positive bin, negative or non-finite counts and a fractional maxBins", () => {
    expect(() => estimateArrival([1, 2], 0)).toThrow(/binMs/);
    expect(() => estimateArrival([1, -2], BIN_MS)).toThrow(/counts/);
    expect(() => estimateArrival([1, Number.NaN], BIN_MS)).toThrow(/counts/);
    expect(() => estimateArrival([1, 2], BIN_MS, { maxBins: 2.5 })).toThrow(/maxBins/);
  });
});
