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
}

/**
 * Builds the table from the counting matrices at the grid points (entry i at i * T / steps, each
 * with at least max(1, B - 1) levels) and the batch size distribution for the same window.
 */
export function requestWaitTable(arrival: MarkovianArrival, grid: readonly CountingMatrices[], batches: BatchSizeDistribution): RequestWaitTable {
  return windowWaitTables(arrival, grid)(batches);
}

/** The request-wait tables of one window for every maxBatch it allows. */
export interface WindowWaitTables {
  /** The table for one maxBatch (allocates B x (steps + 1) numbers). */
  (batches: BatchSizeDistribution): RequestWaitTable;
  /**
   * The latency CDF at xMs without building the table: offsetsMs[k - 1] = s(k) + extra, and the
   * optional queue delay (0 w.p. 1 - waitProb, else exponential at decayPerMs). The optimizer's check.
   */
  latencyCdfAt(batches: BatchSizeDistribution, offsetsMs: ArrayLike<number>, xMs: number, queue?: { waitProb: number; decayPerMs: number }): number;
}

/**
 * Prepares the tables of one window for every maxBatch the grid's levels allow (B <= levels + 1)
 * and returns a function of the batch size distribution. E_k is linear in the opening phase
 * distribution alpha, which depends on maxBatch, so the sums are kept per opening phase and combined
 * with each maxBatch's alpha. Each sum E_k(y_i) (O(m^2 k)) is computed when first used: a whole
 * table needs them all (O(m^2 B^2 steps)), but the CDF at one point without queueing needs two grid
 * points per size, the same for every maxBatch.
 */
export function windowWaitTables(arrival: MarkovianArrival, grid: readonly CountingMatrices[]): WindowWaitTables {
  const steps = grid.length - 1;
  const width = steps + 1;
  const m = arrival.phases;
  const mm = m * m;
  const L = grid[0]!.levels; // levels n = 0 .. L - 1; sizes up to L + 1
  const sizes = L + 1;
  // b[i][n] = P(n, t_i) 1 and d[i][n] = P(n, t_i) D1 1 (columns, indexed by start phase r).
  const b = new Float64Array(width * L * m);
  const d = new Float64Array(width * L * m);
  const d1Ones = new Float64Array(m);
  for (let r = 0; r < m; r++) for (let c = 0; c < m; c++) d1Ones[r]! += arrival.d1.data[r * m + c]!;
  for (let i = 0; i < width; i++) {
    const p = grid[i]!.p;
    for (let n = 0; n < L; n++)
      for (let r = 0; r < m; r++)
        for (let c = 0; c < m; c++) {
          const v = p[n * mm + r * m + c]!;
          b[(i * L + n) * m + r]! += v;
          d[(i * L + n) * m + r]! += v * d1Ones[c]!;
        }
  }
  // below[r][k][i]: E_k(y_i) for k < B from opening phase r; full[r][B][i]: E_B(y_i) from phase r;
  // NaN until first used. Sizes that a window almost never ends with (E_k <= k P(k-1 more arrivals
  // in T) < 1e-15) and maxBatch values it almost never reaches (E_B <= B P(reach B) < 1e-15) are 0.
  const below = new Float64Array(m * sizes * width).fill(NaN);
  const full = new Float64Array(m * sizes * width).fill(NaN);
  const isSizeNegligible = new Uint8Array(sizes + 1);
  const isFullNegligible = new Uint8Array(sizes + 1);
  for (let k = 1; k <= sizes; k++) {
    let endsAtK = 0;
    let reachesK = 0;
    for (let r = 0; r < m; r++) {
      endsAtK = Math.max(endsAtK, k - 1 < L ? b[(steps * L + k - 1) * m + r]! : 1);
      let notReached = 0;
      for (let n = 0; n <= k - 2; n++) notReached += b[(steps * L + n) * m + r]!;
      reachesK = Math.max(reachesK, 1 - notReached);
    }
    isSizeNegligible[k] = k * endsAtK < 1e-15 ? 1 : 0;
    isFullNegligible[k] = k * reachesK < 1e-15 ? 1 : 0;
  }
  /** E_k(y_i) for k < B, from opening phase r. */
  const belowAt = (r: number, k: number, i: number): number => {
    const at = (r * sizes + k - 1) * width + i;
    if (!Number.isNaN(below[at]!)) return below[at]!;
    let e = 0;
    if (k >= 2 && !isSizeNegligible[k]) {
      const backP = grid[steps - i]!.p; // P(., T - y_i)
      for (let j = Math.max(1, k - L + 1); j <= k - 1; j++) {
        const ao = (j - 1) * mm + r * m; // row r of P(j-1, T - y_i)
        const bo = (i * L + k - j) * m;
        let s = 0;
        for (let c = 0; c < m; c++) s += backP[ao + c]! * b[bo + c]!;
        e += (k - j) * s;
      }
    }
    return (below[at] = e);
  };
  /** E_B(y_i) from opening phase r. */
  const fullAt = (r: number, B: number, i: number): number => {
    const at = (r * sizes + B - 1) * width + i;
    if (!Number.isNaN(full[at]!)) return full[at]!;
    let e = 0;
    if (!isFullNegligible[B]) {
      const backJ = grid[steps - i]!.j; // J(., T - y_i)
      let reached = 1; // P(B-th arrival by y_i) = 1 - sum_{n <= B-2} P(n, y_i) 1, from phase r
      for (let n = 0; n <= B - 2; n++) reached -= b[(i * L + n) * m + r]!;
      let viaOpen = 0;
      for (let j = 1; j <= B - 1; j++) {
        const co = (j - 1) * mm + r * m; // row r of J(j-1, T - y_i)
        const dO = (i * L + B - j - 1) * m;
        let s = 0;
        for (let c = 0; c < m; c++) s += backJ[co + c]! * d[dO + c]!;
        viaOpen += (B - j) * s;
      }
      e = viaOpen + B * Math.max(0, reached);
    }
    return (full[at] = e);
  };
  const checkLevels = (B: number): void => {
    if (B > sizes) throw new RangeError(`maxBatch ${B} needs ${B - 1} levels, the grid has ${L}`);
  };

  const tableOf = (batches: BatchSizeDistribution): RequestWaitTable => {
    const B = batches.maxBatch;
    checkLevels(B);
    const alpha = batches.openingPhase;
    const values = new Float64Array(B * width);
    for (let r = 0; r < m; r++) {
      const w = alpha[r]! / batches.meanBatch;
      if (w === 0) continue;
      for (let k = 2; k < B; k++) for (let i = 0; i < width; i++) values[(k - 1) * width + i]! += w * belowAt(r, k, i);
      for (let i = 0; i < width; i++) values[(B - 1) * width + i]! += w * fullAt(r, B, i);
    }
    const stepMs = batches.windowMs / steps;
    return { maxBatch: B, windowMs: batches.windowMs, steps, stepMs, values, taggedProbs: batches.taggedProbs };
  };

  const latencyCdfAt = (batches: BatchSizeDistribution, offsetsMs: ArrayLike<number>, xMs: number, queue?: { waitProb: number; decayPerMs: number }): number => {
    const B = batches.maxBatch;
    checkLevels(B);
    const windowMs = batches.windowMs;
    const stepMs = windowMs / steps;
    const alpha = batches.openingPhase;
    const waitProb = queue?.waitProb ?? 0;
    const eta = queue?.decayPerMs ?? Infinity;
    // value(k, i) = P(W <= y_i, K = k), combined over opening phases on the fly.
    const value = (k: number, i: number): number => {
      let v = 0;
      if (k === 1 && B > 1) return 0;
      for (let r = 0; r < m; r++) v += alpha[r]! * (k === B ? fullAt(r, k, i) : belowAt(r, k, i));
      return v / batches.meanBatch;
    };
    let direct = 0;
    let delayed = 0;
    for (let k = 1; k <= B; k++) {
      const y = xMs - offsetsMs[k - 1]!;
      if (y < 0) continue;
      const tagged = batches.taggedProbs[k - 1]!;
      if (y >= windowMs || stepMs === 0) direct += tagged;
      else {
        const x = y / stepMs;
        const i = Math.min(Math.floor(x), steps - 1);
        direct += value(k, i) * (1 - (x - i)) + value(k, i + 1) * (x - i);
      }
      if (waitProb > 0) delayed += smoothedAt(k, y, tagged);
    }
    return Math.min(1, (1 - waitProb) * direct + waitProb * delayed);

    // int_{-inf}^{y} P(W <= u, K = k) eta e^(-eta (y - u)) du over the piecewise-linear values.
    function smoothedAt(k: number, y: number, tagged: number): number {
      const end = Math.min(y, windowMs);
      let acc = 0;
      let u = 0;
      let previous = value(k, 0);
      for (let i = 1; i <= steps && u < end; i++) {
        const next = i * stepMs;
        const to = Math.min(next, end);
        const atTo = to === next ? value(k, i) : previous + ((value(k, i) - previous) * (to - u)) / stepMs;
        acc = Math.exp(-eta * (to - u)) * acc + segment(previous, atTo, to - u, eta);
        u = to;
        previous = atTo;
      }
      if (y <= windowMs) return acc;
      const e = Math.exp(-eta * (y - windowMs));
      return e * acc + (1 - e) * tagged;
    }
  };

  const tables = tableOf as WindowWaitTables;
  tables.latencyCdfAt = latencyCdfAt;
  return tables;
}

/** int_0^len (v0 + (v1 - v0) u / len) eta e^(-eta (len - u)) du. */
export function segment(v0: number, v1: number, len: number, eta: number): number {
  if (len <= 0) return 0;
  const e = Math.exp(-eta * len);
  const slope = (v1 - v0) / len;
  return v1 - slope / eta - e * (v0 - slope / eta);
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
