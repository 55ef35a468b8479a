/** Percentiles and summaries of latency samples (exact: the sample sets here are small). */

/** The q-quantile (0..1) of `samples` by nearest rank; NaN when empty. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Median of `samples`. */
export const median = (samples: readonly number[]) => quantile(samples, 0.5);

/** Rounds to `digits` decimals for reports. */
export const round = (value: number, digits = 2) => Number(value.toFixed(digits));
