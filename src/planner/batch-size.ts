/**
 * Batch sizes of one buffer. The window opens when a request enters an empty buffer and the batch
 * is released when it holds `maxBatch` requests or `windowMs` after it opened. Between releases the
 * buffer is a CTMC over (requests in buffer, phase) started at the opening arrival, run for the
 * window and absorbed at maxBatch; its transient blocks are the counting matrices P(n, T).
 *
 * The phase at the opening arrival is not the phase after a typical arrival: it is the stationary
 * vector of the embedded chain "opening phase -> release phase -> phase after the next arrival",
 * alpha = alpha (S + J(B-2, T) D1) (-D0)^-1 D1 with S = sum_{n <= B-2} P(n, T). For Poisson it is 1.
 */
import { type MarkovianArrival, nextArrivalPhaseMatrix, timeToArrivalMatrix } from "./arrival";
import type { CountingMatrices } from "./counting-process";
import { type Matrix, dot, mul, stationary, vecMul } from "./matrix";

/** What one buffer does for a (maxBatch, windowMs) pair under one shard's arrivals. */
export interface BatchSizeDistribution {
  readonly maxBatch: number;
  readonly windowMs: number;
  /** Phase distribution at the arrival that opens a window. */
  readonly openingPhase: Float64Array;
  /** Phase distribution at the release of a batch. */
  readonly releasePhase: Float64Array;
  /** probs[k - 1] = P(batch size = k), k = 1 .. maxBatch. */
  readonly probs: Float64Array;
  /** taggedProbs[k - 1] = P(a request's batch has size k) = k probs[k - 1] / meanBatch. */
  readonly taggedProbs: Float64Array;
  /** Mean batch size. */
  readonly meanBatch: number;
  /** P(the batch is released because it reached maxBatch). */
  readonly fullProb: number;
  /** Mean and second moment of the time the window stays open (first arrival to release), ms, ms^2. */
  readonly meanOpenMs: number;
  readonly openSecondMomentMs2: number;
  /** Mean and second moment of the empty-buffer time after a release (ms, ms^2). */
  readonly meanIdleMs: number;
  readonly idleSecondMomentMs2: number;
  /** Batches released per second by this buffer. */
  readonly batchRatePerS: number;
}

/**
 * The batch size distribution for maxBatch B from the counting matrices at the window's end
 * (`atWindow.tS` = windowMs / 1000, with at least max(1, B - 1) levels).
 */
export function batchSizeDistribution(arrival: MarkovianArrival, atWindow: CountingMatrices, maxBatch: number, nextPhase: Matrix = nextArrivalPhaseMatrix(arrival)): BatchSizeDistribution {
  return batchSizeSweep(arrival, atWindow, nextPhase)(maxBatch);
}

/** The scalar part of a batch size distribution, as the optimizer's fast path needs it. */
export interface BatchSummary {
  meanBatch: number;
  fullProb: number;
  meanOpenMs: number;
  openSecondMomentMs2: number;
  meanIdleMs: number;
  idleSecondMomentMs2: number;
  batchRatePerS: number;
}

/** Batch size distributions of one window for every maxBatch up to its levels + 1. */
export interface BatchSizeSweep {
  /** The full distribution for maxBatch (allocates). */
  (maxBatch: number): BatchSizeDistribution;
  /** The scalars for maxBatch; P(size = k) is written to probsOut[k - 1] (no other allocation for <= 2 phases). */
  summarise(maxBatch: number, probsOut: Float64Array): BatchSummary;
}

/**
 * Prepares the batch size distributions of one window (counting matrices from countingMatrices(),
 * which carry K(n, T) for the second moment of the open time) for every maxBatch up to
 * atWindow.levels + 1. Shared prefix sums make each maxBatch cost O(B m + m^3).
 */
export function batchSizeSweep(arrival: MarkovianArrival, atWindow: CountingMatrices, nextPhase: Matrix = nextArrivalPhaseMatrix(arrival)): BatchSizeSweep {
  const m = arrival.phases;
  const mm = m * m;
  const L = atWindow.levels;
  // rows[n] = P(n, T) 1, openRows[n] = J(n, T) 1, momentRows[n] = K(n, T) 1;
  // prefix[n] = sum_{i < n} P(i, T); viaFull[n] = J(n, T) D1.
  if (!atWindow.k) throw new RangeError("batchSizeSweep needs the counting matrices of countingMatrices() (with K)");
  const rows = new Float64Array(L * m);
  const openRows = new Float64Array(L * m);
  const momentRows = new Float64Array(L * m);
  const prefix = new Float64Array((L + 1) * mm);
  const viaFull = new Float64Array(L * mm);
  for (let n = 0; n < L; n++) {
    for (let r = 0; r < m; r++)
      for (let c = 0; c < m; c++) {
        const idx = n * mm + r * m + c;
        rows[n * m + r]! += atWindow.p[idx]!;
        openRows[n * m + r]! += atWindow.j[idx]!;
        momentRows[n * m + r]! += atWindow.k[idx]!;
        prefix[(n + 1) * mm + r * m + c] = prefix[n * mm + r * m + c]! + atWindow.p[idx]!;
        for (let q = 0; q < m; q++) viaFull[idx]! += atWindow.j[n * mm + r * m + q]! * arrival.d1.data[q * m + c]!;
      }
  }
  const toArrival = timeToArrivalMatrix(arrival);
  const ones = new Float64Array(m).fill(1);
  const firstMoment = vecMul(ones, transpose(toArrival)); // (-D0)^-1 1
  const secondMoment = vecMul(firstMoment, transpose(toArrival)); // (-D0)^-2 1
  const windowMs = atWindow.tS * 1000;
  const release: Matrix = { n: m, data: new Float64Array(mm) };
  const alpha = new Float64Array(m);
  const releasePhase = new Float64Array(m);

  const summarise = (maxBatch: number, probs: Float64Array): BatchSummary => {
    if (maxBatch < 1 || (maxBatch > 1 && L < maxBatch - 1)) throw new RangeError(`maxBatch ${maxBatch} needs ${maxBatch - 1} levels, have ${L}`);
    // release = sum_{n <= B-2} P(n, T) + J(B-2, T) D1: from the opening phase to the phase at release.
    if (maxBatch === 1) for (let i = 0; i < mm; i++) release.data[i] = i % (m + 1) === 0 ? 1 : 0;
    else for (let i = 0; i < mm; i++) release.data[i] = prefix[(maxBatch - 1) * mm + i]! + viaFull[(maxBatch - 2) * mm + i]!;
    openingPhaseInto(release, nextPhase, alpha);
    releasePhase.fill(0);
    for (let r = 0; r < m; r++) for (let c = 0; c < m; c++) releasePhase[c]! += alpha[r]! * release.data[r * m + c]!;
    let below = 0;
    let meanOpenS = 0;
    let openMomentS2 = 0; // int_0^T u P(window open at u) du
    let meanBatch = 0;
    for (let k = 1; k < maxBatch; k++) {
      let pk = 0;
      for (let r = 0; r < m; r++) {
        pk += alpha[r]! * rows[(k - 1) * m + r]!;
        meanOpenS += alpha[r]! * openRows[(k - 1) * m + r]!;
        openMomentS2 += alpha[r]! * momentRows[(k - 1) * m + r]!;
      }
      probs[k - 1] = Math.max(0, pk);
      below += probs[k - 1]!;
      meanBatch += k * probs[k - 1]!;
    }
    const fullProb = Math.max(0, 1 - below);
    probs[maxBatch - 1] = fullProb;
    meanBatch += maxBatch * fullProb;
    return {
      meanBatch,
      fullProb,
      meanOpenMs: meanOpenS * 1000,
      openSecondMomentMs2: 2 * openMomentS2 * 1e6,
      meanIdleMs: dot(releasePhase, firstMoment) * 1000,
      idleSecondMomentMs2: 2 * dot(releasePhase, secondMoment) * 1e6,
      batchRatePerS: arrival.ratePerS / meanBatch,
    };
  };
  const sweep = ((maxBatch: number): BatchSizeDistribution => {
    const probs = new Float64Array(maxBatch);
    const summary = summarise(maxBatch, probs);
    const taggedProbs = probs.map((p, i) => ((i + 1) * p) / summary.meanBatch);
    return { maxBatch, windowMs, openingPhase: Float64Array.from(alpha), releasePhase: Float64Array.from(releasePhase), probs, taggedProbs, ...summary };
  }) as BatchSizeSweep;
  sweep.summarise = summarise;
  return sweep;
}

/** Stationary vector of release * nextPhase (the opening phase), written to out; closed form for m <= 2. */
function openingPhaseInto(release: Matrix, nextPhase: Matrix, out: Float64Array): void {
  const m = release.n;
  if (m === 1) {
    out[0] = 1;
    return;
  }
  if (m === 2) {
    const [r00, r01, r10, r11] = release.data as unknown as [number, number, number, number];
    const [x00, x01, x10, x11] = nextPhase.data as unknown as [number, number, number, number];
    const leave0 = r00 * x01 + r01 * x11; // P(0 -> 1) of the embedded chain
    const leave1 = r10 * x00 + r11 * x10; // P(1 -> 0)
    const total = leave0 + leave1;
    out[0] = total > 0 ? leave1 / total : 0.5;
    out[1] = 1 - out[0]!;
    return;
  }
  out.set(stationary(mul(release, nextPhase)));
}

function transpose(a: Matrix): Matrix {
  const t: Matrix = { n: a.n, data: new Float64Array(a.n * a.n) };
  for (let i = 0; i < a.n; i++) for (let j = 0; j < a.n; j++) t.data[j * a.n + i] = a.data[i * a.n + j]!;
  return t;
}
