import { describe, expect, it } from "vitest";
import { batchSizeDistribution } from "../../../src/planner/batch-size";
import { countingMatrices } from "../../../src/planner/counting-process";
import { simulate } from "../../../src/planner/simulator";
import { BURSTY_MAP3, EXAMPLE_MAP, TWITTER_MAP12, poisson } from "./fixtures";

const distribution = (arrival: typeof EXAMPLE_MAP, windowMs: number, maxBatch: number) =>
  batchSizeDistribution(arrival, countingMatrices(arrival, windowMs / 1000, Math.max(1, maxBatch - 1)), maxBatch);

describe("batchSizeDistribution", () => {
  it("is 1 + Poisson(rate * window) truncated at maxBatch for Poisson arrivals", () => {
    const [rate, windowMs, maxBatch] = [40, 100, 6];
    const d = distribution(poisson(rate), windowMs, maxBatch);
    const mean = (rate * windowMs) / 1000;
    const pmf = (n: number) => (Math.exp(-mean) * mean ** n) / [1, 1, 2, 6, 24, 120][n]!;
    for (let k = 1; k < maxBatch; k++) expect(d.probs[k - 1]).toBeCloseTo(pmf(k - 1), 14);
    expect(d.probs[maxBatch - 1]).toBeCloseTo(1 - [0, 1, 2, 3, 4].reduce((s, n) => s + pmf(n), 0), 14);
    expect(d.fullProb).toBe(d.probs[maxBatch - 1]);
  });

  it("weights the size a request sees by k", () => {
    const d = distribution(EXAMPLE_MAP, 200, 8);
    d.taggedProbs.forEach((p, i) => expect(p).toBeCloseTo(((i + 1) * d.probs[i]!) / d.meanBatch, 14));
    expect(d.taggedProbs.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
  });

  it.each([
    ["the example MAP", EXAMPLE_MAP],
    ["Twitter hour 12", TWITTER_MAP12],
    ["a three-phase bursty MAP", BURSTY_MAP3],
  ])("closes the renewal cycle: mean batch = rate * (idle + open time) for %s", (_, map) => {
    const d = distribution(map, 150, 10);
    expect(d.meanBatch).toBeCloseTo((map.ratePerS * (d.meanIdleMs + d.meanOpenMs)) / 1000, 9);
  });

  it.each([
    ["the example MAP", EXAMPLE_MAP, 300, 12],
    ["a three-phase bursty MAP", BURSTY_MAP3, 100, 16],
  ])("matches the simulator for %s", (_, map, windowMs, maxBatch) => {
    const d = distribution(map, windowMs, maxBatch);
    const sim = simulate({ arrival: map, service: { kind: "linear", baseMs: 1, perItemMs: 0 }, servers: { kind: "unbounded" }, maxBatch, windowMs, requests: 200_000, seed: 11 });
    expect(sim.meanBatch).toBeCloseTo(d.meanBatch, 1);
    d.probs.forEach((p, i) => expect(Math.abs(sim.batchSizeProbs[i]! - p)).toBeLessThan(0.006));
  });

  it("gives batches of one when maxBatch is 1 or the window is 0", () => {
    expect(Array.from(distribution(EXAMPLE_MAP, 500, 1).probs)).toEqual([1]);
    const zero = distribution(poisson(100), 0, 4);
    expect(zero.probs[0]).toBe(1);
    expect(zero.meanOpenMs).toBe(0);
  });
});
