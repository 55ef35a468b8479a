import { describe, expect, it } from "vitest";
import { countingGrid, countingMatrices } from "../../../src/planner/counting-process";
import { expm, zeros } from "../../../src/planner/matrix";
import { BURSTY_MAP3, EXAMPLE_MAP, poisson } from "./fixtures";

/** The level-phase CTMC generator truncated at `levels` (block bidiagonal: D0 on, D1 above the diagonal). */
function blockGenerator(map: typeof EXAMPLE_MAP, levels: number, tS: number) {
  const m = map.phases;
  const g = zeros(levels * m);
  for (let n = 0; n < levels; n++)
    for (let r = 0; r < m; r++)
      for (let c = 0; c < m; c++) {
        g.data[(n * m + r) * g.n + n * m + c] = map.d0.data[r * m + c]! * tS;
        if (n + 1 < levels) g.data[(n * m + r) * g.n + (n + 1) * m + c] = map.d1.data[r * m + c]! * tS;
      }
  return g;
}

describe("countingMatrices", () => {
  it.each([
    ["two-phase MAP, short horizon", EXAMPLE_MAP, 0.1],
    ["two-phase MAP, long horizon (scaling and squaring)", EXAMPLE_MAP, 3],
    ["three-phase bursty MAP", BURSTY_MAP3, 0.4],
  ])("matches the matrix exponential of the level-phase CTMC (%s)", (_, map, tS) => {
    const levels = 12;
    const m = map.phases;
    const c = countingMatrices(map, tS, levels);
    const e = expm(blockGenerator(map, levels, tS));
    for (let n = 0; n < levels; n++)
      for (let r = 0; r < m; r++)
        for (let col = 0; col < m; col++) expect(c.p[n * m * m + r * m + col]).toBeCloseTo(e.data[r * e.n + n * m + col]!, 11);
  });

  it("uses the Poisson closed forms for one phase", () => {
    const c = countingMatrices(poisson(40), 0.1, 8);
    expect(c.p[3]).toBeCloseTo((Math.exp(-4) * 4 ** 3) / 6, 14);
    // J(0, t) = int_0^t e^(-40 u) du
    expect(c.j[0]).toBeCloseTo((1 - Math.exp(-4)) / 40, 14);
    // K(0, t) = int_0^t u e^(-40 u) du
    expect(c.k![0]).toBeCloseTo((1 - Math.exp(-4) * (1 + 4)) / 1600, 14);
  });

  it("integrates consistently: J and K agree with Simpson's rule over the grid", () => {
    const tS = 0.3;
    const steps = 600;
    const grid = countingGrid(EXAMPLE_MAP, tS, 6, steps);
    const at = countingMatrices(EXAMPLE_MAP, tS, 6);
    const h = tS / steps;
    for (const idx of [0, 5, 4 * 3 + 1]) {
      let j = 0;
      let k = 0;
      for (let i = 0; i <= steps; i++) {
        const weight = ((i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2) * h) / 3;
        j += weight * grid[i]!.p[idx]!;
        k += weight * i * h * grid[i]!.p[idx]!;
      }
      expect(at.j[idx]).toBeCloseTo(j, 10);
      expect(at.k![idx]).toBeCloseTo(k, 10);
      expect(grid[steps]!.p[idx]).toBeCloseTo(at.p[idx]!, 12);
    }
  });
});
