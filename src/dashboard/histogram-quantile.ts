/**
 * Prometheus's `histogram_quantile` for classic histograms, as a pure function: the dashboard turns
 * the increase of each `le` bucket over a window into p50/p95/p99. Same rules as Prometheus
 * (promql/quantile.go, bucketQuantile): buckets sorted by upper bound, made monotonic, equal
 * bounds merged; the rank `q * count` is found by linear interpolation inside its bucket, the first
 * bucket starting at 0; a rank in the +Inf bucket answers the highest finite bound.
 */

/** One cumulative bucket: how many observations were at most `upperBound` (Infinity for "+Inf"). */
export interface Bucket {
  upperBound: number;
  count: number;
}

/**
 * The `q`-quantile (0..1) of the observations the cumulative `buckets` describe. NaN when it is not
 * defined: no +Inf bucket, fewer than two buckets, no observations, or `q` NaN; -Infinity below 0
 * and +Infinity above 1, as in Prometheus.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = monotonic(mergeEqualBounds([...buckets].sort((a, b) => a.upperBound - b.upperBound)));
  const last = sorted.length - 1;
  if (last < 1 || sorted[last]!.upperBound !== Infinity) return NaN;
  const observations = sorted[last]!.count;
  if (!(observations > 0)) return NaN;
  let rank = q * observations;
  const b = sorted.findIndex((bucket) => bucket.count >= rank);
  if (b === last) return sorted[last - 1]!.upperBound;
  if (b === 0 && sorted[0]!.upperBound <= 0) return sorted[0]!.upperBound;
  let start = 0;
  let count = sorted[b]!.count;
  if (b > 0) {
    start = sorted[b - 1]!.upperBound;
    count -= sorted[b - 1]!.count;
    rank -= sorted[b - 1]!.count;
  }
  return start + (sorted[b]!.upperBound - start) * (rank / count);
}

/** Buckets with the same upper bound (shards, isolates) added together. */
function mergeEqualBounds(sorted: Bucket[]): Bucket[] {
  const merged: Bucket[] = [];
  for (const bucket of sorted) {
    const previous = merged[merged.length - 1];
    if (previous && previous.upperBound === bucket.upperBound) previous.count += bucket.count;
    else merged.push({ ...bucket });
  }
  return merged;
}

/** Cumulative counts can dip when buckets are scraped at slightly different moments; Prometheus lifts them. */
function monotonic(sorted: Bucket[]): Bucket[] {
  let max = 0;
  return sorted.map((bucket) => ({ upperBound: bucket.upperBound, count: (max = Math.max(max, bucket.count)) }));
}

/** A bucket's `le` label as a number: "+Inf" is Infinity; prom-client gives finite bounds as numbers. */
export function upperBoundOf(le: string | number | undefined): number {
  if (typeof le === "number") return le;
  if (le === undefined) return NaN;
  return le === "+Inf" ? Infinity : Number(le);
}
