/**
 * The arrival process seen in recent per-bin arrival counts, for the planner: Poisson at the mean
 * rate, or a two-phase MMPP (a MAP; D0/D1 in rates per second, as src/planner/arrival.ts and
 * fit-map.ts use them) when the counts are clearly over-dispersed.
 *
 * Over-dispersion test: the index of dispersion D = variance / mean of the counts summed over
 * `aggregateBins` bins (the bin counts themselves when that leaves fewer than 20 sums) must exceed
 * 1 + z sd, where sd = sqrt(2 / (n - 1) + 1 / (n m)) is the standard deviation of D for n Poisson
 * counts of mean m (from the exact variance of a Poisson sample variance; the usual sqrt(2 / (n - 1))
 * underrates it when m is small). The aggregated scale is the one that sees modulation: the IDC of
 * an MMPP grows with the counting window. Measured by the tests: at most 1 of 100 Poisson windows
 * (5 minutes of 100 ms bins, 1 to 100/s) is taken for over-dispersed.
 *
 * Fit: maximum likelihood for a two-state hidden Markov model on the bins (Baum-Welch, i.e. EM for a
 * two-component Poisson mixture that also learns which bins follow which): Poisson counts of mean
 * m_h or m_l per bin of dt seconds, and a per-bin transition matrix P = [[1 - a, a], [b, 1 - b]]. The
 * MMPP(2) follows by treating each bin as spent in one phase (good while phases last several bins;
 * faster switching is underrated): phase 0 arrives at m_h / dt per second and phase 1 at m_l / dt
 * (m_l may be 0, on/off traffic: mapProblems accepts a silent phase), and the switching rates solve
 * e^(Q dt) = P for the two-state generator Q: g = -ln(1 - a - b) / dt, r01 = g a / (a + b),
 * r10 = g b / (a + b). Both arrival rates are then scaled by one factor so that the MAP's mean rate
 * equals the counts' mean rate exactly. EM starts from the bins whose neighbourhood (a centred window
 * of aggregateBins bins, widened to hold about 10 arrivals) is busier than the mean, and stops when
 * no parameter moves by 1e-4 relative, or after `maxIterations`. A degenerate fit (the two rates not
 * separated, anti-correlated counts, anything not finite) falls back to Poisson.
 *
 * Measured by the tests on 10 minutes of 100 ms counts from an MMPP(2) at 100/s for a mean 2 s and
 * 5/s (or 0/s) for 6 s, 5 seeds each: arrival rates within 6 %, switching rates within 28 %.
 * Cost: O(bins x iterations), an emission table per distinct count; 3000 bins take 0.5 ms (bursty,
 * about 10 iterations) to 3 ms (50 iterations, weakly separated phases) in Node.
 */
import { type ArrivalSpec, mapProblems } from "../planner/arrival";

/** What estimateArrival measured and chose. */
export interface ArrivalEstimate {
  /** Mean arrival rate over the bins used, requests per second (0 for no arrivals or no bins). */
  ratePerS: number;
  /** Index of dispersion of counts (variance / mean) at the bin scale; 1 when the mean is 0 or there are < 2 bins. */
  dispersion: number;
  /** The arrival process for the planner; Poisson with ratePerS 0 when there were no arrivals (the caller decides). */
  spec: ArrivalSpec;
}

/** Options of estimateArrival. */
export interface ArrivalEstimateOptions {
  /** How many of the most recent bins to use (Infinity: all); default 3000 (5 minutes of 100 ms bins). */
  maxBins?: number;
  /** Bins per aggregated bin for the second dispersion test; default 10. */
  aggregateBins?: number;
  /** Standard deviations above 1 that count as over-dispersed; default 3. */
  significanceZ?: number;
  /** Fewer bins than this always give Poisson; default 100. */
  minBinsForMap?: number;
  /** Bound on EM iterations of the MMPP(2) fit; default 50. */
  maxIterations?: number;
}

/**
 * Estimates the arrival process from per-bin arrival counts (oldest first, each >= 0) of bins
 * `binMs` long: the mean rate, the index of dispersion, and a Poisson or MMPP(2) spec (see the
 * module doc). Pure; throws a RangeError for a non-positive binMs or a negative or non-finite count.
 */
export function estimateArrival(counts: ArrayLike<number>, binMs: number, options: ArrivalEstimateOptions = {}): ArrivalEstimate {
  if (!(binMs > 0) || !Number.isFinite(binMs)) throw new RangeError(`estimateArrival: binMs must be > 0, got ${binMs}`);
  const maxBins = options.maxBins ?? 3000;
  const aggregateBins = options.aggregateBins ?? 10;
  const z = options.significanceZ ?? 3;
  const minBinsForMap = options.minBinsForMap ?? 100;
  const maxIterations = options.maxIterations ?? 50;
  const isCount = (v: number) => Number.isInteger(v) && v >= 1;
  for (const [field, value] of Object.entries({ maxBins, aggregateBins, minBinsForMap, maxIterations }))
    if (!isCount(value) && !(field === "maxBins" && value === Infinity)) throw new RangeError(`estimateArrival: ${field} must be an integer >= 1, got ${value}`);
  if (!(z >= 0)) throw new RangeError(`estimateArrival: significanceZ must be >= 0, got ${z}`);
  const n = Math.min(counts.length, maxBins);
  const x = new Float64Array(n);
  const start = counts.length - n;
  for (let i = 0; i < n; i++) {
    const c = counts[start + i]!;
    if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`estimateArrival: counts must be finite and >= 0, got ${c} at ${start + i}`);
    x[i] = c;
  }
  const binS = binMs / 1000;
  const { mean, dispersion } = dispersionOf(x, 1);
  const ratePerS = n === 0 ? 0 : mean / binS;
  const poisson: ArrivalEstimate = { ratePerS, dispersion, spec: { kind: "poisson", ratePerS } };
  if (mean === 0 || n < minBinsForMap) return poisson;
  const aggregated = Math.floor(n / aggregateBins);
  const coarse = aggregated >= 20 ? dispersionOf(x.subarray(n - aggregated * aggregateBins), aggregateBins) : undefined;
  const isBursty = coarse ? isOverDispersed(coarse.dispersion, aggregated, coarse.mean, z) : isOverDispersed(dispersion, n, mean, z);
  if (!isBursty) return poisson;
  const smoothBins = Math.min(Math.max(aggregateBins, Math.ceil(10 / mean)), Math.floor(n / 10));
  const spec = fitMmpp2Bins(x, mean, binS, smoothBins, maxIterations);
  return spec === undefined ? poisson : { ratePerS, dispersion, spec };
}

/** Mean and variance / mean of the sums of `group` consecutive values (dispersion 1 when undefined). */
function dispersionOf(x: Float64Array, group: number): { mean: number; dispersion: number } {
  const n = Math.floor(x.length / group);
  const sumAt = (i: number): number => {
    let s = 0;
    for (let j = 0; j < group; j++) s += x[i * group + j]!;
    return s;
  };
  let total = 0;
  for (let i = 0; i < n; i++) total += sumAt(i);
  const mean = n === 0 ? 0 : total / n;
  if (n < 2 || mean === 0) return { mean, dispersion: 1 };
  let squares = 0; // two passes: no cancellation for large, nearly constant counts
  for (let i = 0; i < n; i++) squares += (sumAt(i) - mean) ** 2;
  return { mean, dispersion: squares / (n - 1) / mean };
}

/** D above 1 + z sd(D) for n Poisson counts of mean m. */
function isOverDispersed(dispersion: number, n: number, mean: number, z: number): boolean {
  return dispersion > 1 + z * Math.sqrt(2 / (n - 1) + 1 / (n * mean));
}

/** Baum-Welch for a two-state Poisson HMM on the bins, turned into an MMPP(2) spec (module doc); undefined when degenerate. */
function fitMmpp2Bins(x: Float64Array, mean: number, binS: number, smoothBins: number, maxIterations: number): ArrivalSpec | undefined {
  const n = x.length;
  // Start: the bins whose neighbourhood (a centred window of smoothBins bins) is busier than the
  // mean are phase 0 (high), the others phase 1 (low); smoothing keeps sparse counts from
  // splitting the bins into "had an arrival" and "had none".
  const half = Math.floor(smoothBins / 2);
  const isHigh = new Uint8Array(n);
  let window = 0;
  let windowBins = 0;
  for (let t = 0; t < Math.min(half, n); t++) {
    window += x[t]!;
    windowBins += 1;
  }
  let high = 0;
  let highSum = 0;
  let highToLow = 0;
  let lowToHigh = 0;
  for (let t = 0; t < n; t++) {
    if (t + half < n) {
      window += x[t + half]!;
      windowBins += 1;
    }
    if (t - half - 1 >= 0) {
      window -= x[t - half - 1]!;
      windowBins -= 1;
    }
    isHigh[t] = window > mean * windowBins ? 1 : 0;
    if (isHigh[t]) {
      high += 1;
      highSum += x[t]!;
    }
    if (t > 0 && isHigh[t - 1] !== isHigh[t]) {
      if (isHigh[t]) lowToHigh += 1;
      else highToLow += 1;
    }
  }
  if (high === 0 || high === n) return undefined;
  let mHigh = highSum / high;
  let mLow = Math.max(0, (mean * n - highSum) / (n - high));
  const minSwitch = 0.5 / n;
  const maxSwitch = 0.499;
  const tolerance = 1e-4; // relative change of every parameter in one EM step (far below their sampling error)
  const clampSwitch = (p: number) => Math.min(maxSwitch, Math.max(minSwitch, p));
  let a = clampSwitch((highToLow + 1) / (high + 2)); // high -> low, per bin
  let b = clampSwitch((lowToHigh + 1) / (n - high + 2)); // low -> high, per bin

  const e0 = new Float64Array(n); // emission likelihoods, scaled per bin so that the larger is 1
  const e1 = new Float64Array(n);
  const f0 = new Float64Array(n); // normalised forward probabilities
  const f1 = new Float64Array(n);
  const inverseScale = new Float64Array(n);
  let maxCount = 0;
  let isIntegral = true;
  for (let t = 0; t < n; t++) {
    maxCount = Math.max(maxCount, x[t]!);
    if (!Number.isInteger(x[t]!)) isIntegral = false;
  }
  const isTabulated = isIntegral && maxCount < n;
  const t0 = new Float64Array(isTabulated ? maxCount + 1 : 0);
  const t1 = new Float64Array(isTabulated ? maxCount + 1 : 0);

  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const logHigh = Math.log(mHigh);
    const logLow = mLow > 0 ? Math.log(mLow) : -Infinity;
    // Emission likelihoods depend on the count only: tabulate them when counts are small integers.
    const tableSize = isTabulated ? maxCount + 1 : 0;
    for (let c = 0; c < tableSize; c++) emit(c, c, logHigh, logLow, mHigh, mLow, t0, t1);
    for (let t = 0; t < n; t++) {
      const c = x[t]!;
      if (isTabulated) {
        e0[t] = t0[c]!;
        e1[t] = t1[c]!;
      } else emit(t, c, logHigh, logLow, mHigh, mLow, e0, e1);
    }
    // Forward pass, starting from the stationary phase distribution.
    let p0 = b / (a + b);
    let p1 = 1 - p0;
    for (let t = 0; t < n; t++) {
      if (t > 0) {
        const q0 = f0[t - 1]! * (1 - a) + f1[t - 1]! * b;
        p1 = f0[t - 1]! * a + f1[t - 1]! * (1 - b);
        p0 = q0;
      }
      const u0 = p0 * e0[t]!;
      const u1 = p1 * e1[t]!;
      const inverse = 1 / (u0 + u1);
      inverseScale[t] = inverse;
      f0[t] = u0 * inverse;
      f1[t] = u1 * inverse;
    }
    // Backward pass, accumulating the expected sufficient statistics.
    let g0Sum = 0;
    let g0x = 0;
    let g1x = 0;
    let g0Head = 0; // sum of P(phase 0 at t) over t < n - 1
    let g1Head = 0;
    let xi01 = 0;
    let xi10 = 0;
    let bk0 = 1;
    let bk1 = 1;
    for (let t = n - 1; t >= 0; t--) {
      const g0 = f0[t]! * bk0; // P(phase 0 at t | all counts)
      const g1 = f1[t]! * bk1;
      g0Sum += g0;
      g0x += g0 * x[t]!;
      g1x += g1 * x[t]!;
      if (t === 0) break;
      // Two-bin posteriors for (t - 1, t), then beta at t - 1.
      const w0 = e0[t]! * bk0 * inverseScale[t]!;
      const w1 = e1[t]! * bk1 * inverseScale[t]!;
      xi01 += f0[t - 1]! * a * w1;
      xi10 += f1[t - 1]! * b * w0;
      g0Head += f0[t - 1]! * ((1 - a) * w0 + a * w1);
      g1Head += f1[t - 1]! * (b * w0 + (1 - b) * w1);
      bk0 = (1 - a) * w0 + a * w1;
      bk1 = b * w0 + (1 - b) * w1;
    }
    const g1Sum = n - g0Sum;
    if (!(g0Sum > 0 && g1Sum > 0)) return undefined;
    const previous = [mHigh, mLow, a, b];
    mHigh = g0x / g0Sum;
    mLow = g1x / g1Sum;
    a = clampSwitch(xi01 / g0Head);
    b = clampSwitch(xi10 / g1Head);
    if (mLow > mHigh) [mHigh, mLow, a, b] = [mLow, mHigh, b, a]; // keep phase 0 the busier one
    if (![mHigh, mLow, a, b].every(Number.isFinite)) return undefined;
    const isConverged = [mHigh, mLow, a, b].every((v, i) => Math.abs(v - previous[i]!) <= tolerance * Math.abs(v) + 1e-12);
    if (isConverged) break;
  }
  if (!(mHigh > mLow * (1 + 1e-6)) || !Number.isFinite(mHigh)) return undefined;

  const decayPerS = -Math.log(1 - a - b) / binS;
  const highToLowPerS = (decayPerS * a) / (a + b);
  const lowToHighPerS = (decayPerS * b) / (a + b);
  const highShare = b / (a + b);
  const fittedMean = highShare * mHigh + (1 - highShare) * mLow;
  const factor = mean / fittedMean / binS; // counts per bin -> per second, at exactly the measured mean
  const highPerS = mHigh * factor;
  const lowPerS = mLow * factor;
  const spec: ArrivalSpec = {
    kind: "map",
    D0: [
      [-(highPerS + highToLowPerS), highToLowPerS],
      [lowToHighPerS, -(lowPerS + lowToHighPerS)],
    ],
    D1: [
      [highPerS, 0],
      [0, lowPerS],
    ],
  };
  return mapProblems(spec.D0, spec.D1).length === 0 ? spec : undefined;
}

/**
 * Poisson likelihoods of count c under means mHigh and mLow (log means given; mLow may be 0),
 * scaled so that the larger is 1 (a common factor of both phases cancels), into e0[i] and e1[i].
 */
function emit(i: number, c: number, logHigh: number, logLow: number, mHigh: number, mLow: number, e0: Float64Array, e1: Float64Array): void {
  const l0 = c * logHigh - mHigh;
  const l1 = c === 0 ? -mLow : c * logLow - mLow;
  e0[i] = l0 >= l1 ? 1 : Math.exp(l0 - l1);
  e1[i] = l0 >= l1 ? Math.exp(l1 - l0) : 1;
}
