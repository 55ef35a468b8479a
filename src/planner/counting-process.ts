/**
 * The counting process of a MAP: P(n, t), the m x m matrix whose (i, j) entry is the probability of
 * exactly n arrivals in (0, t] and phase j at t given phase i at 0, and its integral
 * J(n, t) = int_0^t P(n, u) du (seconds). These are the blocks of the matrix exponential of the
 * level-phase CTMC (requests in buffer, phase), whose generator is block bidiagonal with D0 on the
 * diagonal and D1 above it; they do not depend on where the CTMC is truncated, so one computation
 * serves every maxBatch.
 *
 * Computed by uniformisation (exact up to a 1e-15 truncation of the Poisson series) with scaling and
 * squaring for long horizons: P(., s + t) = P(., s) * P(., t) (block convolution in n),
 * J(., s + t) = J(., s) + P(., s) * J(., t) and, for the first moment K(n, t) = int_0^t u P(n, u) du,
 * K(., s + t) = K(., s) + P(., s) * (s J(., t) + K(., t)).
 */
import type { MarkovianArrival } from "./arrival";

/** P(n, t) and J(n, t) for n = 0 .. levels - 1, each block m x m row-major at offset n * m * m. */
export interface CountingMatrices {
  readonly levels: number;
  readonly phases: number;
  /** Horizon, seconds. */
  readonly tS: number;
  readonly p: Float64Array;
  readonly j: Float64Array;
  /** K(n, t) = int_0^t u P(n, u) du (seconds^2); computed by countingMatrices, absent on grid points. */
  readonly k?: Float64Array;
}

/** Largest uniformised mean (theta * t) handled without splitting the horizon. */
const MAX_UNIFORM_MEAN = 16;

/** Truncated block convolution: out_n = sum_{k <= n} x_k y_{n-k}, for n < levels; y_k is taken as 0 for k > yBand. */
export function blockConvolve(x: Float64Array, y: Float64Array, levels: number, m: number, out = new Float64Array(levels * m * m), yBand = levels - 1): Float64Array {
  const mm = m * m;
  out.fill(0);
  if (m === 1) {
    for (let n = 0; n < levels; n++) {
      let s = 0;
      for (let k = Math.max(0, n - yBand); k <= n; k++) s += x[k]! * y[n - k]!;
      out[n] = s;
    }
    return out;
  }
  if (m === 2) {
    // Unrolled, adding the same products in the same order (k, then q) as the general case.
    for (let n = 0; n < levels; n++)
      for (let r = 0; r < 2; r++) {
        let s0 = 0;
        let s1 = 0;
        for (let k = Math.max(0, n - yBand); k <= n; k++) {
          const a0 = x[k * 4 + r * 2]!;
          const a1 = x[k * 4 + r * 2 + 1]!;
          const yo = (n - k) * 4;
          s0 += a0 * y[yo]!;
          s0 += a1 * y[yo + 2]!;
          s1 += a0 * y[yo + 1]!;
          s1 += a1 * y[yo + 3]!;
        }
        out[n * 4 + r * 2] = s0;
        out[n * 4 + r * 2 + 1] = s1;
      }
    return out;
  }
  for (let n = 0; n < levels; n++) {
    const o = n * mm;
    for (let k = Math.max(0, n - yBand); k <= n; k++) {
      const xo = k * mm;
      const yo = (n - k) * mm;
      for (let r = 0; r < m; r++)
        for (let q = 0; q < m; q++) {
          const a = x[xo + r * m + q]!;
          if (a === 0) continue;
          for (let c = 0; c < m; c++) out[o + r * m + c]! += a * y[yo + q * m + c]!;
        }
    }
  }
  return out;
}

/** P(., 0) = [I, 0, 0, ...] and J(., 0) = 0. */
export function countingAtZero(phases: number, levels: number): CountingMatrices {
  const p = new Float64Array(levels * phases * phases);
  for (let i = 0; i < phases; i++) p[i * phases + i] = 1;
  return { levels, phases, tS: 0, p, j: new Float64Array(levels * phases * phases), k: new Float64Array(levels * phases * phases) };
}

/** P(n, t) and J(n, t) for n < levels by uniformisation, splitting long horizons. */
export function countingMatrices(arrival: MarkovianArrival, tS: number, levels: number): CountingMatrices {
  const m = arrival.phases;
  if (tS <= 0) return countingAtZero(m, levels);
  if (m === 1) return poissonCounting(-arrival.d0.data[0]!, tS, levels);
  let theta = 0;
  for (let i = 0; i < m; i++) theta = Math.max(theta, -arrival.d0.data[i * m + i]!);
  const halvings = theta * tS > MAX_UNIFORM_MEAN ? Math.ceil(Math.log2((theta * tS) / MAX_UNIFORM_MEAN)) : 0;
  let result = uniformise(arrival, tS / 2 ** halvings, levels, theta);
  for (let h = 0; h < halvings; h++) result = combine(result, result);
  return result;
}

/** The counting matrices over s + t from those over s (first) and over t (second). */
export function combine(first: CountingMatrices, second: CountingMatrices): CountingMatrices {
  const { levels, phases } = first;
  const p = blockConvolve(first.p, second.p, levels, phases);
  const j = blockConvolve(first.p, second.j, levels, phases);
  for (let i = 0; i < j.length; i++) j[i]! += first.j[i]!;
  if (!first.k || !second.k) return { levels, phases, tS: first.tS + second.tS, p, j };
  const shifted = Float64Array.from(second.k, (v, i) => v + first.tS * second.j[i]!);
  const k = blockConvolve(first.p, shifted, levels, phases);
  for (let i = 0; i < k.length; i++) k[i]! += first.k[i]!;
  return { levels, phases, tS: first.tS + second.tS, p, j, k };
}

function uniformise(arrival: MarkovianArrival, tS: number, levels: number, theta: number): CountingMatrices {
  const m = arrival.phases;
  const mm = m * m;
  // A0 = I + D0 / theta (no arrival), A1 = D1 / theta (one arrival): one step of the uniformised chain.
  const a0 = new Float64Array(mm);
  const a1 = new Float64Array(mm);
  for (let i = 0; i < mm; i++) {
    a0[i] = arrival.d0.data[i]! / theta;
    a1[i] = arrival.d1.data[i]! / theta;
  }
  for (let i = 0; i < m; i++) a0[i * m + i]! += 1;
  const mean = theta * tS;
  let v = new Float64Array(levels * mm); // V^(k)_n: n arrivals in k uniformised steps
  let next = new Float64Array(levels * mm);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  const p = new Float64Array(levels * mm);
  const j = new Float64Array(levels * mm);
  const firstMoment = new Float64Array(levels * mm);
  let weight = Math.exp(-mean);
  let cumulative = 0;
  for (let k = 0; ; k++) {
    cumulative += weight;
    const nextWeight = (weight * mean) / (k + 1);
    const tail = Math.max(0, 1 - cumulative) / theta; // int_0^t Poisson(theta u) pmf at k du
    const tail2 = (Math.max(0, 1 - cumulative - nextWeight) * (k + 1)) / theta ** 2; // int_0^t u (same) du
    const top = Math.min(k, levels - 1);
    for (let idx = 0; idx < (top + 1) * mm; idx++) {
      p[idx]! += weight * v[idx]!;
      j[idx]! += tail * v[idx]!;
      firstMoment[idx]! += tail2 * v[idx]!;
    }
    if (1 - cumulative < 1e-15 && k >= mean) break;
    // V^(k+1)_n = V^(k)_n A0 + V^(k)_{n-1} A1
    const nextTop = Math.min(k + 1, levels - 1);
    next.fill(0, 0, (nextTop + 1) * mm);
    for (let n = 0; n <= nextTop; n++) {
      const o = n * mm;
      for (let r = 0; r < m; r++)
        for (let q = 0; q < m; q++) {
          const stay = n <= top ? v[o + r * m + q]! : 0;
          const up = n > 0 ? v[o - mm + r * m + q]! : 0;
          if (stay === 0 && up === 0) continue;
          for (let c = 0; c < m; c++) next[o + r * m + c]! += stay * a0[q * m + c]! + up * a1[q * m + c]!;
        }
    }
    [v, next] = [next, v];
    weight = nextWeight;
  }
  return { levels, phases: m, tS, p, j, k: firstMoment };
}

/**
 * The counting matrices at the grid points t_i = i * tS / steps, i = 0 .. steps: entry i holds
 * P(., t_i) and J(., t_i). Poisson uses the closed forms; a MAP steps by the counting matrices over
 * one grid step, whose blocks vanish (below 1e-18) beyond a few levels, so the convolution is banded.
 */
export function countingGrid(arrival: MarkovianArrival, tS: number, levels: number, steps: number): CountingMatrices[] {
  if (arrival.phases === 1) return poissonGrid(-arrival.d0.data[0]!, tS, levels, steps);
  const step = countingMatrices(arrival, tS / steps, levels);
  const band = significantLevels(step) - 1;
  const grid: CountingMatrices[] = [countingAtZero(arrival.phases, levels)];
  for (let i = 1; i <= steps; i++) {
    const prev = grid[i - 1]!;
    const p = blockConvolve(prev.p, step.p, levels, arrival.phases, undefined, band);
    const j = blockConvolve(prev.p, step.j, levels, arrival.phases, undefined, band);
    for (let x = 0; x < j.length; x++) j[x]! += prev.j[x]!;
    grid.push({ levels, phases: arrival.phases, tS: (tS * i) / steps, p, j });
  }
  return grid;
}

/** Number of leading levels of c with an entry of P above 1e-18 or of J above 1e-18 * t. */
function significantLevels(c: CountingMatrices): number {
  const mm = c.phases * c.phases;
  for (let n = c.levels - 1; n >= 0; n--)
    for (let i = 0; i < mm; i++) if (c.p[n * mm + i]! > 1e-18 || c.j[n * mm + i]! > 1e-18 * c.tS) return n + 1;
  return 1;
}

/**
 * Closed forms for Poisson(rate): P(n, t) = e^(-rate t) (rate t)^n / n!, J(n, t) = P(N(t) > n) / rate
 * and K(n, t) = (n + 1) P(N(t) > n + 1) / rate^2.
 */
export function poissonCounting(ratePerS: number, tS: number, levels: number): CountingMatrices {
  const p = new Float64Array(levels + 1);
  const j = new Float64Array(levels);
  const k = new Float64Array(levels);
  const mean = ratePerS * tS;
  if (mean <= 0) p[0] = 1;
  else if (mean < 500) {
    // e^(-mean) does not underflow: the recursion p_n = p_(n-1) mean / n (one exp per call).
    p[0] = Math.exp(-mean);
    for (let n = 1; n <= levels; n++) p[n] = (p[n - 1]! * mean) / n;
  } else for (let n = 0; n <= levels; n++) p[n] = Math.exp(-mean + n * Math.log(mean) - logFactorial(n));
  let cdf = 0;
  for (let n = 0; n < levels; n++) {
    cdf += p[n]!;
    j[n] = Math.max(0, 1 - cdf) / ratePerS;
    k[n] = ((n + 1) * Math.max(0, 1 - cdf - p[n + 1]!)) / ratePerS ** 2;
  }
  return { levels, phases: 1, tS, p: p.subarray(0, levels), j, k };
}

function poissonGrid(ratePerS: number, tS: number, levels: number, steps: number): CountingMatrices[] {
  // P and J only (grid points carry no K), in two shared buffers: a grid may have hundreds of points.
  const pAll = new Float64Array((steps + 1) * levels);
  const jAll = new Float64Array((steps + 1) * levels);
  const grid: CountingMatrices[] = [];
  for (let i = 0; i <= steps; i++) {
    const t = (tS * i) / steps;
    const mean = ratePerS * t;
    const p = pAll.subarray(i * levels, (i + 1) * levels);
    const j = jAll.subarray(i * levels, (i + 1) * levels);
    if (mean >= 500) {
      const c = poissonCounting(ratePerS, t, levels);
      p.set(c.p);
      j.set(c.j);
    } else {
      let term = Math.exp(-mean);
      let cdf = 0;
      for (let n = 0; n < levels; n++) {
        if (n > 0) term = (term * mean) / n;
        p[n] = term;
        cdf += term;
        j[n] = Math.max(0, 1 - cdf) / ratePerS;
      }
    }
    grid.push({ levels, phases: 1, tS: t, p, j });
  }
  return grid;
}

const logFactorials: number[] = [0];
function logFactorial(n: number): number {
  for (let k = logFactorials.length; k <= n; k++) logFactorials.push(logFactorials[k - 1]! + Math.log(k));
  return logFactorials[n]!;
}
