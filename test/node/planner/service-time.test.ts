import { describe, expect, it } from "vitest";
import { fitLinear, serviceLowerLine, serviceMs, serviceTable } from "../../../src/planner/service-time";

describe("service time", () => {
  it("evaluates linear and table models, extrapolating a table along its last step", () => {
    expect(serviceMs({ kind: "linear", baseMs: 10, perItemMs: 34 }, 3)).toBe(112);
    const table = { kind: "table" as const, ms: [2, 3, 5] };
    expect(serviceMs(table, 2)).toBe(3);
    expect(serviceMs(table, 5)).toBe(9);
  });

  it("recovers an exact line by least squares", () => {
    const fit = fitLinear([1, 2, 4, 8, 16].map((k) => ({ batchSize: k, ms: 2.2 + 1.1 * k })));
    expect(fit.baseMs).toBeCloseTo(2.2, 10);
    expect(fit.perItemMs).toBeCloseTo(1.1, 10);
    expect(fit.r2).toBeCloseTo(1, 12);
  });

  it("fits noisy samples and reports the residual", () => {
    const samples = [1, 1, 2, 2, 4, 4].map((k, i) => ({ batchSize: k, ms: 5 + 2 * k + (i % 2 === 0 ? 0.5 : -0.5) }));
    const fit = fitLinear(samples);
    expect(fit.perItemMs).toBeCloseTo(2, 10);
    expect(fit.rmseMs).toBeCloseTo(0.5, 10);
  });

  it("clamps a negative intercept to zero and refits the slope through the origin", () => {
    const fit = fitLinear([{ batchSize: 1, ms: 1 }, { batchSize: 2, ms: 4 }]);
    expect(fit.baseMs).toBe(0);
    expect(fit.perItemMs).toBeCloseTo(9 / 5, 12);
  });

  it("puts the lower line of a linear model on the model itself", () => {
    const line = serviceLowerLine(serviceTable({ kind: "linear", baseMs: 10, perItemMs: 4 }, 64));
    expect(line.baseMs).toBeCloseTo(10, 12);
    expect(line.perItemMs).toBeCloseTo(4, 12);
  });

  it("keeps the lower line of a table under every entry, through the origin when the step line would start below 0", () => {
    const tables = [[12, 15, 30, 31, 33, 60], [8, 7, 9, 12], [1, 5, 9, 13]].map((ms) => Float64Array.from(ms));
    for (const service of tables) {
      const { baseMs, perItemMs } = serviceLowerLine(service);
      expect(baseMs).toBeGreaterThanOrEqual(0);
      expect(perItemMs).toBeGreaterThanOrEqual(0);
      service.forEach((s, i) => expect(baseMs + perItemMs * (i + 1)).toBeLessThanOrEqual(s + 1e-12));
    }
    expect(serviceLowerLine(tables[2]!)).toEqual({ baseMs: 0, perItemMs: 1 }); // steps of 4 would start at -3
  });
});
