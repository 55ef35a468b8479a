/**
 * How much counters grew between consecutive snapshots, as Prometheus's `increase` sees it: per
 * series (one label set), a value that went down means the counter restarted, so the step's increase
 * is the new value; a series that was absent from the previous snapshot started at 0. Histograms
 * are handled per `le` bucket, so a window's bucket increases can be summed and fed to
 * histogramQuantile. Pure: snapshots in, numbers out.
 */
import { upperBoundOf } from "./histogram-quantile";
import { modelSamples, type Labels, type Sample, type Snapshot } from "./metrics-snapshot";

/** A stable key for a label set. */
const labelKey = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((key) => `${key}=${String(labels[key])}`)
    .join(",");

/** The increase of one series from `previous` (undefined: absent) to `current`, restarts counted from 0. */
export function counterIncrease(previous: number | undefined, current: number): number {
  if (previous === undefined || current < previous) return current;
  return current - previous;
}

/** Sums, per step, the increase of the given samples; `samplesAt(i)` picks them in snapshot i. Step 0 has no increase (0). */
export function stepIncreases(count: number, samplesAt: (i: number) => Sample[]): number[] {
  const increases = [0];
  let previous = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const current = new Map(samplesAt(i).map((s) => [labelKey(s.labels), s.value] as const));
    if (i > 0) {
      let sum = 0;
      for (const [key, value] of current) sum += counterIncrease(previous.get(key), value);
      increases.push(sum);
    }
    previous = current;
  }
  return increases;
}

/** Per step, the increase of each bucket of `family` (a histogram) for `model`, by upper bound. Step 0 is empty. */
export function bucketIncreases(snapshots: readonly Snapshot[], family: string, model: string): Array<Map<number, number>> {
  // Each snapshot's buckets grouped by bound once, then each bound's series followed across snapshots.
  const grouped = snapshots.map((snapshot) => {
    const byBound = new Map<number, Sample[]>();
    for (const sample of modelSamples(snapshot, family, model, `${family}_bucket`)) {
      const bound = upperBoundOf(sample.labels.le);
      if (!Number.isNaN(bound)) byBound.set(bound, [...(byBound.get(bound) ?? []), sample]);
    }
    return byBound;
  });
  const bounds = new Set(grouped.flatMap((byBound) => [...byBound.keys()]));
  const perBound = [...bounds].map((bound) => ({ bound, increases: stepIncreases(snapshots.length, (i) => grouped[i]!.get(bound) ?? []) }));
  return snapshots.map((_, i) => new Map(i === 0 ? [] : perBound.map(({ bound, increases }) => [bound, increases[i]!] as const)));
}

/** The first step whose end lies inside the window of `windowMs` that ends at snapshot `i` (at least step 1). */
export function windowStart(timesMs: readonly number[], i: number, windowMs: number): number {
  let m = i;
  while (m > 1 && timesMs[m - 1]! > timesMs[i]! - windowMs) m--;
  return Math.max(m, 1);
}

/** The cumulative buckets of the increases over steps `from`..`to` (inclusive). */
export function windowBuckets(increases: ReadonlyArray<ReadonlyMap<number, number>>, from: number, to: number): Array<{ upperBound: number; count: number }> {
  const sums = new Map<number, number>();
  for (let step = from; step <= to; step++) for (const [bound, value] of increases[step] ?? []) sums.set(bound, (sums.get(bound) ?? 0) + value);
  return [...sums].map(([upperBound, count]) => ({ upperBound, count })).sort((a, b) => a.upperBound - b.upperBound);
}
