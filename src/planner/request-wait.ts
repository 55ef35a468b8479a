/**
 * The joint distribution of a request's wait in the buffer W and the size K of the batch it leaves
 * in, for a request picked at random among all requests (so batches are weighted by their size).
 *
 * With the opening arrival at time 0, alpha the opening phase, P/J the counting matrices and
 * E_k(y) = E[#requests of a batch with wait <= y; batch size k]:
 *   k < B, 0 <= y < T: E_k(y) = sum_{j=1}^{k-1} (k - j) alpha P(j-1, T-y) P(k-j, y) 1
 *                      (j requests are in the buffer at T - y; the k - j later ones wait <= y)
 *   k < B, y >= T:     E_k(y) = k P(K = k)                       (the opener waits exactly T)
 *   k = B, y >= 0:     E_B(y) = sum_{j=1}^{B-1} (B - j) alpha J(j-1, T-y) P(B-j-1, y) D1 1
 *                               + B P(the B-th arrival comes before min(y, T))
 * and P(W <= y, K = k) = E_k(y) / E[K]. The values are exact at the grid points y_i = i T / steps;
 * between them the table interpolates linearly (the functions are smooth there).
 */
import type { MarkovianArrival } from "./arrival";
import type { BatchSizeDistribution } from "./batch-size";
import type { CountingMatrices } from "./counting-process";
import { rowSums } from "./matrix";

/** P(W <= y, K = k) on a grid over the window, for k = 1 .. maxBatch. */
export interface RequestWaitTable {
  readonly maxBatch: number;
  readonly windowMs: number;
  readonly steps: number;
  readonly stepMs: number;
  /** values[(k - 1) * (steps + 1) + i] = P(W <= i * stepMs, K = k); at i = steps the limit from below T. */
  readonly values: Float64Array;
  /** P(K = k) for the request (the value for y >= T). */
  readonly taggedProbs: Float64Array;
  /** Second moment of the time a window stays open, ms^2 (trapezoid rule on the grid). */
  readonly openSecondMomentMs2: number;
}

/**
 * Builds the table from the counting matrices at the grid points (entry i at i * T / steps, each
 * with at least max(1, B - 1) levels) and the batch size distribution for the same window.
 */
export function requestWaitTable(arrival: MarkovianArrival, grid: readonly CountingMatrices[], batches: BatchSizeDistribution): RequestWaitTable {
  const B = batches.maxBatch;
  const steps = grid.length - 1;
  const m = arrival.phases;
  const mm = m * m;
  const alpha = batches.openingPhase;
  const stepMs = batches.windowMs / steps;
  const width = steps + 1;
  const values = new Float64Array(B * width);
  const L = Math.max(0, B - 1); // levels used: n = 0 .. B - 2
  // a[i][n] = alpha P(n, t_i) and c[i][n] = alpha J(n, t_i) (row vectors); b = P 1, d = P D1 1 (columns).
  const a = new Float64Array(width * L * m);
  const c = new Float64Array(width * L * m);
  const b = new Float64Array(width * L * m);
  const d = new Float64Array(width * L * m);
  const d1Ones = rowSums(arrival.d1);
  for (let i = 0; i < width; i++) {
    const { p, j } = grid[i]!;
    for (let n = 0; n < L; n++) {
      const o = (i * L + n) * m;
      for (let r = 0; r < m; r++)
        for (let col = 0; col < m; col++) {
          const pv = p[n * mm + r * m + col]!;
          a[o + col]! += alpha[r]! * pv;
          c[o + col]! += alpha[r]! * j[n * mm + r * m + col]!;
          b[o + r]! += pv;
          d[o + r]! += pv * d1Ones[col]!;
        }
    }
  }
  const dotAt = (x: Float64Array, xi: number, y: Float64Array, yi: number): number => {
    let s = 0;
    for (let r = 0; r < m; r++) s += x[xi + r]! * y[yi + r]!;
    return s;
  };
  const survival = new Float64Array(width); // P(window still open at t_i), t_i < T
  for (let i = 0; i < width; i++) {
    for (let n = 0; n < L; n++) for (let r = 0; r < m; r++) survival[i]! += a[(i * L + n) * m + r]!;
    const back = steps - i; // grid index of T - y_i
    for (let k = 2; k < B; k++) {
      let e = 0;
      for (let jj = 1; jj <= k - 1; jj++) e += (k - jj) * dotAt(a, (back * L + jj - 1) * m, b, (i * L + k - jj) * m);
      values[(k - 1) * width + i] = e;
    }
    let full = B * Math.max(0, 1 - survival[i]!);
    for (let jj = 1; jj <= B - 1; jj++) full += (B - jj) * dotAt(c, (back * L + jj - 1) * m, d, (i * L + B - jj - 1) * m);
    values[(B - 1) * width + i] = full;
  }
  for (let i = 0; i < values.length; i++) values[i]! /= batches.meanBatch;
  let openSecond = 0;
  for (let i = 0; i < steps; i++) {
    const u0 = i * stepMs;
    const u1 = (i + 1) * stepMs;
    openSecond += (u0 * survival[i]! + u1 * survival[i + 1]!) * stepMs; // 2 * trapezoid of u S(u)
  }
  if (B === 1) openSecond = 0;
  return { maxBatch: B, windowMs: batches.windowMs, steps, stepMs, values, taggedProbs: batches.taggedProbs, openSecondMomentMs2: openSecond };
}

/** P(W <= yMs, K = size) from the table (linear between grid points). */
export function jointWaitCdf(table: RequestWaitTable, size: number, yMs: number): number {
  if (yMs < 0) return 0;
  if (yMs >= table.windowMs) return table.taggedProbs[size - 1]!;
  const x = yMs / table.stepMs;
  const i = Math.min(Math.floor(x), table.steps - 1);
  const f = x - i;
  const o = (size - 1) * (table.steps + 1) + i;
  return table.values[o]! * (1 - f) + table.values[o + 1]! * f;
}

/** P(W <= yMs): the distribution of a request's wait in the buffer. */
export function waitCdf(table: RequestWaitTable, yMs: number): number {
  let s = 0;
  for (let k = 1; k <= table.maxBatch; k++) s += jointWaitCdf(table, k, yMs);
  return Math.min(1, s);
}
