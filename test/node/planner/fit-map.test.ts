import { describe, expect, it } from "vitest";
import { toMarkovianArrival } from "../../../src/planner/arrival";
import { fitMmpp2, fitMmpp2Details, mapGapScv, scaleArrival } from "../../../src/planner/fit-map";
import { createRng, sampleArrivals } from "../../../src/planner/simulator";
import { EXAMPLE_MAP, poisson, relativeError } from "./fixtures";

/** A bursty MMPP(2): 50/s for ~2 s, 2/s for ~8 s. */
const BURSTY = toMarkovianArrival({ kind: "map", D0: [[-50.5, 0.5], [0.125, -2.125]], D1: [[50, 0], [0, 2]] });

describe("fitMmpp2", () => {
  it("recovers the rate, the gap SCV and the switching time scale of an MMPP(2)", () => {
    const times = sampleArrivals(BURSTY, 200_000, createRng(7));
    const d = fitMmpp2Details(times);
    // The fitted MAP reproduces the sample's rate and gap SCV; the sample itself (about 1,700
    // on/off cycles) is a few per cent off the process's, and the switching rate is loosely identified.
    expect(d.arrival.ratePerS).toBeCloseTo(d.ratePerS, 6);
    expect(relativeError(mapGapScv(d.arrival), d.gapScv)).toBeLessThan(1e-3);
    expect(relativeError(d.arrival.ratePerS, BURSTY.ratePerS)).toBeLessThan(0.06);
    expect(relativeError(mapGapScv(d.arrival), mapGapScv(BURSTY))).toBeLessThan(0.1);
    expect(d.decayPerS).toBeGreaterThan(0.625 / 2);
    expect(d.decayPerS).toBeLessThan(0.625 * 2);
    expect(d.arrival.phases).toBe(2);
  });

  it("on-off keeps phase 2 silent and makes the gaps at least as variable as the counts say", () => {
    const times = sampleArrivals(BURSTY, 100_000, createRng(8));
    const a = fitMmpp2(times, { kind: "on-off" });
    expect(a.d1.data[3]).toBe(0);
    expect(mapGapScv(a)).toBeGreaterThan(mapGapScv(BURSTY) * 0.9);
  });

  it("fits Poisson timestamps with (nearly) Poisson", () => {
    const times = sampleArrivals(poisson(30), 50_000, createRng(9));
    const a = fitMmpp2(times);
    expect(relativeError(a.ratePerS, 30)).toBeLessThan(0.03);
    expect(Math.abs(mapGapScv(a) - 1)).toBeLessThan(0.1);
  });

  it("accepts unsorted timestamps and rejects too few", () => {
    const times = Array.from(sampleArrivals(BURSTY, 20_000, createRng(10))).reverse();
    expect(fitMmpp2(times).ratePerS).toBeGreaterThan(0);
    expect(() => fitMmpp2([1, 2, 3])).toThrow(/at least 20/);
  });
});

describe("scaleArrival", () => {
  it("multiplies the rate and keeps the shape", () => {
    const fast = scaleArrival(EXAMPLE_MAP, 3);
    expect(fast.ratePerS).toBeCloseTo(3 * EXAMPLE_MAP.ratePerS, 9);
    expect(mapGapScv(fast)).toBeCloseTo(mapGapScv(EXAMPLE_MAP), 9);
    expect(scaleArrival(poisson(10), 0.5).ratePerS).toBeCloseTo(5, 12);
    expect(() => scaleArrival(EXAMPLE_MAP, 0)).toThrow(RangeError);
  });
});
