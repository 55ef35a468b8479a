import { describe, expect, it } from "vitest";
import { expm, fromRows, inverse, mul, stationary, toRows } from "../../../src/planner/matrix";

describe("matrix", () => {
  it("exponentiates a diagonal matrix entry by entry", () => {
    const e = toRows(expm(fromRows([[1, 0], [0, -2]])));
    expect(e[0]![0]).toBeCloseTo(Math.E, 12);
    expect(e[1]![1]).toBeCloseTo(Math.exp(-2), 12);
    expect(e[0]![1]).toBe(0);
  });

  it("exponentiates a rotation generator to a rotation, also for a large norm", () => {
    const angle = 40; // forces many squarings
    const e = toRows(expm(fromRows([[0, -angle], [angle, 0]])));
    expect(e[0]![0]).toBeCloseTo(Math.cos(angle), 9);
    expect(e[1]![0]).toBeCloseTo(Math.sin(angle), 9);
  });

  it("inverts with pivoting", () => {
    const a = fromRows([[0, 2, 1], [1, 0, 0], [3, 1, 4]]);
    const product = toRows(mul(a, inverse(a)));
    product.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(i === j ? 1 : 0, 12)));
  });

  it("finds the stationary vector of a generator", () => {
    const pi = stationary(fromRows([[-2, 2], [1, -1]]), true);
    expect(pi[0]).toBeCloseTo(1 / 3, 12);
    expect(pi[1]).toBeCloseTo(2 / 3, 12);
  });
});
