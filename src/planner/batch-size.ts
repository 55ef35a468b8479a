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
import { type MarkovianArrival, nextArrivalPhaseMatrix, timeToArrivalMoments } from "./arrival";
import type { CountingMatrices } from "./counting-process";
import { type Matrix, dot, stationary, vecMul, mul, rowSums } from "./matrix";

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
  /** Mean time the window stays open (first arrival to release), ms. */
  readonly meanOpenMs: number;
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
  const m = arrival.phases;
  const mm = m * m;
  if (maxBatch > 1 && atWindow.levels < maxBatch - 1) throw new RangeError(`need ${maxBatch - 1} levels, have ${atWindow.levels}`);
  // release = S + J(B-2, T) D1: from the opening phase to the phase at release.
  const release: Matrix = { n: m, data: new Float64Array(mm) };
  if (maxBatch === 1) for (let i = 0; i < m; i++) release.data[i * m + i] = 1;
  else {
    for (let n = 0; n <= maxBatch - 2; n++) for (let i = 0; i < mm; i++) release.data[i]! += atWindow.p[n * mm + i]!;
    const jLast: Matrix = { n: m, data: atWindow.j.subarray((maxBatch - 2) * mm, (maxBatch - 1) * mm) };
    const viaFull = mul(jLast, arrival.d1);
    for (let i = 0; i < mm; i++) release.data[i]! += viaFull.data[i]!;
  }
  const openingPhase = m === 1 ? Float64Array.of(1) : stationary(mul(release, nextPhase));
  const releasePhase = vecMul(openingPhase, release);

  const probs = new Float64Array(maxBatch);
  let below = 0;
  let meanOpenS = 0;
  for (let k = 1; k < maxBatch; k++) {
    const block: Matrix = { n: m, data: atWindow.p.subarray((k - 1) * mm, k * mm) };
    probs[k - 1] = Math.max(0, dot(openingPhase, rowSums(block)));
    below += probs[k - 1]!;
    const jBlock: Matrix = { n: m, data: atWindow.j.subarray((k - 1) * mm, k * mm) };
    meanOpenS += dot(openingPhase, rowSums(jBlock));
  }
  const fullProb = Math.max(0, 1 - below);
  probs[maxBatch - 1] = fullProb;
  let meanBatch = 0;
  probs.forEach((p, i) => (meanBatch += (i + 1) * p));
  const taggedProbs = probs.map((p, i) => ((i + 1) * p) / meanBatch);
  const idle = timeToArrivalMoments(arrival, releasePhase);
  return {
    maxBatch,
    windowMs: atWindow.tS * 1000,
    openingPhase,
    releasePhase,
    probs,
    taggedProbs,
    meanBatch,
    fullProb,
    meanOpenMs: meanOpenS * 1000,
    meanIdleMs: idle.meanS * 1000,
    idleSecondMomentMs2: idle.secondMomentS2 * 1e6,
    batchRatePerS: arrival.ratePerS / meanBatch,
  };
}
