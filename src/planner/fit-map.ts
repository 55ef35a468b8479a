/**
 * Fitting a two-phase MMPP (Markov-modulated Poisson process) to arrival timestamps, and time
 * scaling of a MAP.
 *
 * Method of moments on counts and gaps. An MMPP(2) with arrival rates l1, l2 and switching rates
 * r1 (phase 1 -> 2), r2 (2 -> 1) has a rate process of mean L = p1 l1 + p2 l2 (p1 = r2 / g,
 * g = r1 + r2), variance v = (l1 - l2)^2 p1 p2 and autocorrelation e^(-g t), so its index of
 * dispersion of counts over windows of length t is
 *   IDC(t) = Var N(t) / E N(t) = 1 + K (1 - (1 - e^(-g t)) / (g t)),   K = 2 v / (L g).
 * The fit takes L from the timestamps, (K, g) by least squares on the empirical IDC over
 * geometrically spaced window lengths (from about 5 mean gaps to a tenth of the span, or
 * `maxTimescaleMs`), and then the last degree of freedom, the split between l1 and l2 (l2 = x, with
 * l1 - x = (L - x) + v / (L - x)), by bisection on the squared coefficient of variation (SCV) of the
 * gaps, which falls from 1 + K (the on/off fit, l2 = 0, a renewal process) as x grows. `kind: "on-off"`
 * keeps l2 = 0 (an interrupted Poisson process: the most bursty gaps for the measured counts).
 * Without over-dispersion (K ~ 0) the fit is Poisson (a one-phase MAP).
 */
import { type MarkovianArrival, toMarkovianArrival } from "./arrival";
import { dot, inverse, mul, scale, stationary, vecMul } from "./matrix";

/** Options of fitMmpp2. */
export interface FitMmpp2Options {
  /** "general" (default): also match the SCV of the gaps; "on-off": phase 2 has no arrivals. */
  kind?: "general" | "on-off";
  /** Longest counting window used for the index of dispersion, ms; default a tenth of the span. */
  maxTimescaleMs?: number;
}

/** What the fit measured and chose (fitMmpp2Details). */
export interface FitMmpp2Details {
  arrival: MarkovianArrival;
  /** Requests per second over the span. */
  ratePerS: number;
  /** Squared coefficient of variation of the gaps: measured, and of the fitted MAP. */
  gapScv: number;
  fittedGapScv: number;
  /** IDC(t) = 1 + K (1 - (1 - e^(-g t)) / (g t)): K and g (per second). */
  dispersionK: number;
  decayPerS: number;
  /** The empirical IDC points used (window ms, IDC). */
  idc: { windowMs: number; idc: number }[];
}

/** Fits an MMPP(2) to arrival timestamps (ms, any order); see the module doc. Needs >= 20 distinct times. */
export function fitMmpp2(timestampsMs: ArrayLike<number>, options: FitMmpp2Options = {}): MarkovianArrival {
  return fitMmpp2Details(timestampsMs, options).arrival;
}

/** fitMmpp2 with the measured quantities. */
export function fitMmpp2Details(timestampsMs: ArrayLike<number>, options: FitMmpp2Options = {}): FitMmpp2Details {
  const times = Float64Array.from(timestampsMs).sort();
  const n = times.length;
  if (n < 20) throw new RangeError(`fitMmpp2 needs at least 20 timestamps, got ${n}`);
  if (!times.every(Number.isFinite)) throw new RangeError("fitMmpp2: timestamps must be finite numbers");
  const spanMs = times[n - 1]! - times[0]!;
  if (!(spanMs > 0)) throw new RangeError("fitMmpp2: timestamps must span a positive time");
  const ratePerS = ((n - 1) / spanMs) * 1000;
  let gapSum = 0;
  let gapSquares = 0;
  for (let i = 1; i < n; i++) {
    const g = times[i]! - times[i - 1]!;
    gapSum += g;
    gapSquares += g * g;
  }
  const gapMean = gapSum / (n - 1);
  const gapScv = Math.max(0, gapSquares / (n - 1) / gapMean ** 2 - 1);

  // Empirical IDC over geometrically spaced window lengths.
  const minWindow = 5 * gapMean;
  const maxWindow = Math.min(spanMs / 10, options.maxTimescaleMs ?? Infinity);
  const idc: { windowMs: number; idc: number }[] = [];
  if (maxWindow > minWindow) {
    const points = 16;
    for (let i = 0; i < points; i++) {
      const w = minWindow * (maxWindow / minWindow) ** (i / (points - 1));
      const bins = Math.floor(spanMs / w);
      if (bins < 10) continue;
      const counts = new Float64Array(bins);
      for (let r = 0; r < n; r++) {
        const b = Math.floor((times[r]! - times[0]!) / w);
        if (b < bins) counts[b]! += 1;
      }
      let mean = 0;
      for (const c of counts) mean += c;
      mean /= bins;
      let variance = 0;
      for (const c of counts) variance += (c - mean) ** 2;
      variance /= bins - 1;
      if (mean > 0) idc.push({ windowMs: w, idc: variance / mean });
    }
  }

  // Least squares for (K, g): for each g on a log grid K is linear; keep the best.
  let best = { k: 0, g: 1, sse: Infinity };
  for (let i = 0; i <= 400 && idc.length > 0; i++) {
    const gLo = 1 / (maxWindow / 1000); // a decay slower than the longest window is not identifiable
    const gHi = 100 / (minWindow / 1000);
    const g = gLo * (gHi / gLo) ** (i / 400); // per second
    let sxy = 0;
    let sxx = 0;
    const shapes = idc.map(({ windowMs }) => {
      const x = g * (windowMs / 1000);
      return 1 - (x < 1e-8 ? 1 - x / 2 : (1 - Math.exp(-x)) / x);
    });
    idc.forEach(({ idc: y }, j) => {
      sxy += shapes[j]! * (y - 1);
      sxx += shapes[j]! ** 2;
    });
    const k = sxx > 0 ? Math.max(0, sxy / sxx) : 0;
    let sse = 0;
    idc.forEach(({ idc: y }, j) => (sse += (1 + k * shapes[j]! - y) ** 2));
    if (sse < best.sse) best = { k, g, sse };
  }
  const { k: dispersionK, g: decayPerS } = best;
  const variance = (dispersionK * ratePerS * decayPerS) / 2;
  if (dispersionK < 1e-3 || variance <= 0) {
    const arrival = toMarkovianArrival({ kind: "poisson", ratePerS });
    return { arrival, ratePerS, gapScv, fittedGapScv: 1, dispersionK, decayPerS, idc };
  }
  const build = (x: number): MarkovianArrival => {
    const d = ratePerS - x + variance / (ratePerS - x); // l1 - l2
    const p1 = (ratePerS - x) / d;
    const l1 = x + d;
    const r1 = decayPerS * (1 - p1); // leaves phase 1 (high rate)
    const r2 = decayPerS * p1;
    return toMarkovianArrival({
      kind: "map",
      D0: [
        [-(l1 + r1), r1],
        [r2, -(x + r2)],
      ],
      D1: [
        [l1, 0],
        [0, x],
      ],
    });
  };
  let x = 0;
  let arrival = build(0);
  let fittedGapScv = mapGapScv(arrival);
  if (options.kind !== "on-off" && gapScv < fittedGapScv) {
    // SCV falls as x grows; bisection on x in [0, L).
    let lo = 0;
    let hi = ratePerS * (1 - 1e-9);
    for (let it = 0; it < 60; it++) {
      const mid = (lo + hi) / 2;
      if (mapGapScv(build(mid)) > gapScv) lo = mid;
      else hi = mid;
    }
    x = (lo + hi) / 2;
    arrival = build(x);
    fittedGapScv = mapGapScv(arrival);
  }
  return { arrival, ratePerS, gapScv, fittedGapScv, dispersionK, decayPerS, idc };
}

/** SCV of the stationary gap between arrivals of a MAP: phi = stationary of (-D0)^-1 D1, E[X^k] = k! phi (-D0)^-k 1. */
export function mapGapScv(arrival: MarkovianArrival): number {
  const inv = inverse(scale(arrival.d0, -1));
  const phi = stationary(mul(inv, arrival.d1));
  const ones = new Float64Array(arrival.phases).fill(1);
  const first = vecMul(phi, inv);
  const m1 = dot(first, ones);
  const m2 = 2 * dot(vecMul(first, inv), ones);
  return m2 / m1 ** 2 - 1;
}

/**
 * The same MAP run `factor` times faster: every rate (D0 and D1) multiplied by factor, so the mean
 * rate is factor times larger and dimensionless shape (gap SCV, correlations) is unchanged.
 */
export function scaleArrival(arrival: MarkovianArrival, factor: number): MarkovianArrival {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new RangeError(`scaleArrival: factor must be > 0, got ${factor}`);
  const m = arrival.phases;
  const rows = (data: Float64Array) => Array.from({ length: m }, (_, i) => Array.from(data.subarray(i * m, (i + 1) * m), (v) => v * factor));
  return toMarkovianArrival({ kind: "map", D0: rows(arrival.d0.data), D1: rows(arrival.d1.data) });
}

/** The matrices of a MAP as plain rows (for JSON problems). */
export function arrivalRows(arrival: MarkovianArrival): { D0: number[][]; D1: number[][] } {
  const m = arrival.phases;
  const rows = (data: Float64Array) => Array.from({ length: m }, (_, i) => Array.from(data.subarray(i * m, (i + 1) * m)));
  return { D0: rows(arrival.d0.data), D1: rows(arrival.d1.data) };
}
