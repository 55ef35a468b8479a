import { describe, expect, it } from "vitest";
import { HoltForecast } from "../../../src/control/forecast";

describe("HoltForecast", () => {
  it("forecasts 0 with no level and no trend before any value", () => {
    const holt = new HoltForecast();
    expect(holt.level).toBeUndefined();
    expect(holt.trend).toBe(0);
    expect(holt.forecast(5)).toBe(0);
  });

  it("forecasts the first value at every horizon until a second arrives", () => {
    const holt = new HoltForecast();
    holt.push(12);
    expect(holt.level).toBe(12);
    expect(holt.trend).toBe(0);
    expect([0, 1, 10].map((h) => holt.forecast(h))).toEqual([12, 12, 12]);
  });

  it("updates level and trend by Holt's equations with the defaults alpha 0.5 and beta 0.3", () => {
    const holt = new HoltForecast();
    holt.push(10);
    holt.push(20);
    // level = 0.5 * 20 + 0.5 * (10 + 0) = 15; trend = 0.3 * (15 - 10) + 0.7 * 0 = 1.5
    expect(holt.level).toBeCloseTo(15, 12);
    expect(holt.trend).toBeCloseTo(1.5, 12);
    expect(holt.forecast(2)).toBeCloseTo(18, 12);
  });

  it("extrapolates a linear ramp exactly once it has settled", () => {
    const holt = new HoltForecast({ alpha: 0.4, beta: 0.2 });
    for (let t = 0; t < 200; t++) holt.push(5 + 2 * t);
    expect(holt.trend).toBeCloseTo(2, 6);
    expect(holt.forecast(3)).toBeCloseTo(5 + 2 * 202, 4);
  });

  it("keeps a constant series flat", () => {
    const holt = new HoltForecast();
    for (let t = 0; t < 20; t++) holt.push(7);
    expect(holt.trend).toBe(0);
    expect(holt.forecast(30)).toBe(7);
  });

  it("never forecasts below 0 when the trend points down", () => {
    const holt = new HoltForecast();
    for (const value of [50, 40, 30, 20, 10]) holt.push(value);
    expect(holt.trend).toBeLessThan(0);
    expect(holt.forecast(100)).toBe(0);
    expect(holt.forecast(0)).toBeGreaterThan(0);
  });

  it("rejects smoothing factors outside (0, 1] and non-finite values", () => {
    expect(() => new HoltForecast({ alpha: 0 })).toThrow(/alpha/);
    expect(() => new HoltForecast({ beta: 1.5 })).toThrow(/beta/);
    expect(() => new HoltForecast().push(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });
});
