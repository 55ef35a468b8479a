/** Shared inputs of the planner tests. */
import { type MarkovianArrival, toMarkovianArrival } from "../../../src/planner/arrival";

/** The example MAP (two phases, about 15 requests/s). */
export const EXAMPLE_MAP: MarkovianArrival = toMarkovianArrival({ kind: "map", D0: [[-10.82, 0], [0, -16.66]], D1: [[0.63, 10.19], [0.68, 15.98]] });

/** BATCH's Twitter fit for hour 12 (rates per second). */
export const TWITTER_MAP12: MarkovianArrival = toMarkovianArrival({
  kind: "map",
  D0: [[-46.765837, 0], [0, -55.137172]],
  D1: [[45.516032, 1.249805], [53.561308, 1.575864]],
});

/** A bursty three-phase MAP (to exercise more than two phases). */
export const BURSTY_MAP3: MarkovianArrival = toMarkovianArrival({
  kind: "map",
  D0: [[-52, 1, 1], [0.5, -8, 0.5], [2, 2, -204]],
  D1: [[40, 5, 5], [1, 5, 1], [0, 0, 200]],
});

/** Poisson arrivals at `ratePerS`. */
export const poisson = (ratePerS: number): MarkovianArrival => toMarkovianArrival({ kind: "poisson", ratePerS });

/** Relative difference |a - b| / |b|. */
export const relativeError = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/**
 * Exact M/D/1 waiting-time CDF (Erlang), computed independently of the planner:
 * P(Wq <= x) = (1 - rho) sum_{k <= x/D} (lambda (k D - x))^k / k! e^(-lambda (k D - x)).
 */
export function md1WaitCdf(ratePerS: number, serviceMs: number, xMs: number): number {
  const lambda = ratePerS / 1000;
  const rho = lambda * serviceMs;
  let sum = 0;
  let factorial = 1;
  for (let k = 0; k <= Math.floor(xMs / serviceMs); k++) {
    if (k > 0) factorial *= k;
    const a = lambda * (k * serviceMs - xMs);
    sum += (a ** k / factorial) * Math.exp(-a);
  }
  return (1 - rho) * sum;
}
