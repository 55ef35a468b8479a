import { describe, expect, it } from "vitest";
import { mapProblems, peakRatePerS, phaseAfterArrival, splitAcrossShards, toMarkovianArrival } from "../../../src/planner/arrival";
import { EXAMPLE_MAP } from "./fixtures";

describe("arrival", () => {
  it("computes the rate of a MAP as pi D1 1", () => {
    // pi solves pi (D0 + D1) = 0: phase 0 leaves at 10.19, phase 1 at 0.68.
    const pi0 = 0.68 / (0.68 + 10.19);
    expect(EXAMPLE_MAP.ratePerS).toBeCloseTo(pi0 * 10.82 + (1 - pi0) * 16.66, 6);
  });

  it("treats Poisson as a one-phase MAP", () => {
    const p = toMarkovianArrival({ kind: "poisson", ratePerS: 40 });
    expect(p.phases).toBe(1);
    expect(p.ratePerS).toBe(40);
  });

  it("rejects D0 + D1 that is not a generator, negative rates and ragged rows", () => {
    expect(mapProblems([[-1, 0], [0, -2]], [[0.5, 0], [0, 2]])[0]).toMatch(/row 0 of D0 \+ D1 sums to -0.5/);
    expect(mapProblems([[-1]], [[-1]]).join()).toMatch(/D1\[0\]\[0\] = -1 is negative/);
    expect(mapProblems([[-1, 1], [0]], [[0, 0], [0, 0]]).join()).toMatch(/D0 row 1 has 1 entries/);
    expect(() => toMarkovianArrival({ kind: "poisson", ratePerS: 0 })).toThrow(/ratePerS must be > 0/);
  });

  it("splits a stream across shards by thinning, keeping the phase process", () => {
    const shard = splitAcrossShards(EXAMPLE_MAP, 4);
    expect(shard.ratePerS).toBeCloseTo(EXAMPLE_MAP.ratePerS / 4, 10);
    expect(Array.from(shard.phaseStationary)).toEqual(Array.from(EXAMPLE_MAP.phaseStationary).map((x) => expect.closeTo(x, 10)));
  });

  it("gives the phase after an arrival as a distribution", () => {
    const after = phaseAfterArrival(EXAMPLE_MAP);
    expect(after[0]! + after[1]!).toBeCloseTo(1, 12);
  });

  it("gives the largest arrival rate of any phase as the peak rate, scaled down by splitting", () => {
    expect(peakRatePerS(EXAMPLE_MAP)).toBeCloseTo(0.68 + 15.98, 12);
    expect(peakRatePerS(splitAcrossShards(EXAMPLE_MAP, 4))).toBeCloseTo((0.68 + 15.98) / 4, 12);
    expect(peakRatePerS(toMarkovianArrival({ kind: "poisson", ratePerS: 40 }))).toBe(40);
  });
});
