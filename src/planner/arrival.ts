/**
 * Arrival processes: Poisson, or a Markovian Arrival Process (MAP) given by its D0/D1 matrices
 * (rates per second) with any number of phases, as BATCH fits them. Validation, the mean rate, the
 * phase seen just after an arrival, and random splitting of the stream across shards.
 */
import { type Matrix, add, fromRows, identity, inverse, mul, rowSums, scale, stationary, vecMul, dot } from "./matrix";

/** How a problem describes arrivals (rates per second). */
export type ArrivalSpec = { kind: "poisson"; ratePerS: number } | { kind: "map"; D0: number[][]; D1: number[][] };

/** A validated MAP with its derived quantities. A Poisson process is the one-phase MAP. */
export interface MarkovianArrival {
  /** Transitions without an arrival (per second); diagonal negative. */
  readonly d0: Matrix;
  /** Transitions with an arrival (per second); non-negative. */
  readonly d1: Matrix;
  /** Number of phases. */
  readonly phases: number;
  /** Stationary distribution of the phase process (generator D0 + D1). */
  readonly phaseStationary: Float64Array;
  /** Long-run arrival rate, requests per second. */
  readonly ratePerS: number;
}

/** Absolute tolerance, relative to the largest rate in a row, for rows of D0 + D1 summing to zero. */
export const GENERATOR_ROW_TOLERANCE = 1e-5;

/**
 * Checks that D0/D1 define a MAP: square and of equal size, D1 >= 0, off-diagonal D0 >= 0,
 * rows of D0 + D1 summing to 0 (within GENERATOR_ROW_TOLERANCE, since published fits are rounded),
 * and a positive arrival rate. Returns the problems found, empty when valid.
 */
export function mapProblems(D0: number[][], D1: number[][]): string[] {
  const n = D0.length;
  const problems: string[] = [];
  if (n === 0) return ["D0 is empty"];
  if (D1.length !== n) problems.push(`D1 has ${D1.length} rows, D0 has ${n}`);
  [D0, D1].forEach((m, which) =>
    m.forEach((row, i) => {
      if (row.length !== n) problems.push(`D${which} row ${i} has ${row.length} entries, expected ${n}`);
      row.forEach((v, j) => {
        if (!Number.isFinite(v)) problems.push(`D${which}[${i}][${j}] is not a finite number`);
      });
    }),
  );
  if (problems.length > 0) return problems;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let largest = 0;
    for (let j = 0; j < n; j++) {
      const a = D0[i]![j]!;
      const b = D1[i]![j]!;
      if (b < 0) problems.push(`D1[${i}][${j}] = ${b} is negative (arrival rates must be >= 0)`);
      if (i !== j && a < 0) problems.push(`D0[${i}][${j}] = ${a} is negative (off-diagonal rates must be >= 0)`);
      sum += a + b;
      largest = Math.max(largest, Math.abs(a), Math.abs(b));
    }
    if (!(D0[i]![i]! < 0)) problems.push(`D0[${i}][${i}] = ${D0[i]![i]} must be negative`);
    if (Math.abs(sum) > GENERATOR_ROW_TOLERANCE * Math.max(1, largest))
      problems.push(`row ${i} of D0 + D1 sums to ${sum}, not 0: D0 + D1 is not a generator`);
  }
  if (problems.length === 0 && D1.every((row) => row.every((v) => v === 0))) problems.push("D1 is all zero: no arrivals");
  return problems;
}

/**
 * Builds a MarkovianArrival from a spec. Throws a RangeError listing the problems when invalid.
 * The diagonal of D0 is adjusted so that rows of D0 + D1 sum to exactly zero (removing rounding).
 */
export function toMarkovianArrival(spec: ArrivalSpec): MarkovianArrival {
  if (spec.kind === "poisson") {
    if (!(spec.ratePerS > 0) || !Number.isFinite(spec.ratePerS)) throw new RangeError(`ratePerS must be > 0, got ${spec.ratePerS}`);
    return fromMatrices(fromRows([[-spec.ratePerS]]), fromRows([[spec.ratePerS]]));
  }
  const problems = mapProblems(spec.D0, spec.D1);
  if (problems.length > 0) throw new RangeError(problems.join("; "));
  const d0 = fromRows(spec.D0);
  const d1 = fromRows(spec.D1);
  const sums = rowSums(add(d0, d1));
  for (let i = 0; i < d0.n; i++) d0.data[i * d0.n + i]! -= sums[i]!;
  return fromMatrices(d0, d1);
}

function fromMatrices(d0: Matrix, d1: Matrix): MarkovianArrival {
  const phaseStationary = stationary(add(d0, d1), true);
  const ratePerS = dot(phaseStationary, rowSums(d1));
  if (!(ratePerS > 0)) throw new RangeError("the MAP has no arrivals in its stationary regime");
  return { d0, d1, phases: d0.n, phaseStationary, ratePerS };
}

/**
 * The stream one shard sees when each request independently goes to one of `shards` shards
 * uniformly at random: thinning a MAP by p = 1/shards gives the MAP (D0 + (1 - p) D1, p D1).
 */
export function splitAcrossShards(arrival: MarkovianArrival, shards: number): MarkovianArrival {
  if (shards === 1) return arrival;
  const p = 1 / shards;
  return fromMatrices(add(arrival.d0, scale(arrival.d1, 1 - p)), scale(arrival.d1, p));
}

/**
 * The largest arrival rate of any phase (row sum of D1), requests per second: no interval of t
 * seconds expects more than peakRatePerS * t arrivals, whatever the phase at its start.
 */
export function peakRatePerS(arrival: MarkovianArrival): number {
  return Math.max(...rowSums(arrival.d1));
}

/** (-D0)^-1: expected time (seconds) spent in each phase before the next arrival, by start phase. */
export function timeToArrivalMatrix(arrival: MarkovianArrival): Matrix {
  return inverse(scale(arrival.d0, -1));
}

/** (-D0)^-1 D1: the phase just after the next arrival, given the current phase (a stochastic matrix). */
export function nextArrivalPhaseMatrix(arrival: MarkovianArrival): Matrix {
  return mul(timeToArrivalMatrix(arrival), arrival.d1);
}

/** Phase distribution just after a typical arrival: pi D1 / rate. */
export function phaseAfterArrival(arrival: MarkovianArrival): Float64Array {
  const v = vecMul(arrival.phaseStationary, arrival.d1);
  return v.map((x) => x / arrival.ratePerS);
}

/**
 * Mean and second moment (seconds, seconds^2) of the time to the next arrival from a phase
 * distribution `start`: start (-D0)^-1 1 and 2 start (-D0)^-2 1.
 */
export function timeToArrivalMoments(arrival: MarkovianArrival, start: ArrayLike<number>): { meanS: number; secondMomentS2: number } {
  const inv = timeToArrivalMatrix(arrival);
  const ones = rowSums(identity(arrival.phases));
  const first = vecMul(start, inv);
  return { meanS: dot(first, ones), secondMomentS2: 2 * dot(vecMul(first, inv), ones) };
}
