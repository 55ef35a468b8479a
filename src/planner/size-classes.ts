/**
 * Size-class boundaries (MBS, multi-buffer serving): from an observed width histogram and a service
 * model s(W, k) (one batch of k rows padded to width W), the class widths that minimise the server
 * time the load needs, trading padding (a request pays for its class's width) against batching
 * (fewer classes hold more requests, so their batches are larger). Pure: no I/O, no clock.
 *
 * Model. Requests arrive as Poisson at `ratePerS`, each width with its observed share. A class of
 * width W takes the requests wider than the previous class and at most W (rate lambda). Its batches
 * form as the runtime's do when the server is free: a batch opens at a request and holds it plus the
 * arrivals of the next `formationMs`, at most `maxBatch` (K = min(maxBatch, 1 + Poisson(lambda T)),
 * exact for Poisson; src/planner/batch-size.ts computes the same for MAPs). The class then keeps
 * the server busy lambda / E[K] * E[s(W, K)] ms per second. The plan minimises the sum over classes
 * (busy ms per second; 1000 saturates one server), so padding is in the service model: every request
 * of a class costs s at the class's width. The sum is separable over contiguous classes of the
 * sorted widths, so dynamic programming over the distinct observed widths finds the optimum exactly
 * (O(n^2) classes evaluated, n distinct widths), also under a bound on the classes' count or on
 * each request's padding. The last class is always `maxWidth` (the input's bound), so a width never
 * observed still has a class.
 */

/** How many requests of one width were observed. */
export interface WidthCount {
  width: number;
  count: number;
}

/** Service time of one batch of `batch` rows, each padded to `width`, in ms. */
export type WidthServiceMs = (width: number, batch: number) => number;

/** What the plan is for. */
export interface SizeClassProblem {
  /** Observed widths (each rounded up to a multiple of stepPx). */
  histogram: WidthCount[];
  /** The widest request the model takes: the last class. */
  maxWidth: number;
  serviceMs: WidthServiceMs;
  /** All requests, per second. */
  ratePerS: number;
  /** Most rows in a batch. */
  maxBatch: number;
  /** How long a class's batch gathers company after its first request, ms (the window at light load; the queueing delay under load). */
  formationMs: number;
  /** Class widths are multiples of this (the model's stride; default 8). */
  stepPx?: number;
  /** Most classes, the catch-all at maxWidth not counted (default: no bound). */
  maxClasses?: number;
  /**
   * Most padding a request may get, as a share of its own width (default: no bound): a quality
   * bound, since padding changes what some models read (PP-OCRv4: bench/reports/size-classes.md).
   */
  maxPadRatio?: number;
}

/** What the model predicts for one class. */
export interface ClassPrediction {
  width: number;
  ratePerS: number;
  meanBatch: number;
  /** Server time per second this class needs, ms. */
  busyMsPerS: number;
  /** Padded columns / real columns of its requests. */
  paddingWaste: number;
}

/** A set of class widths and what the model predicts for it. */
export interface SizeClassPlan {
  /** Class widths, ascending, ending at maxWidth (the manifest's batching.sizeClasses.widths). */
  widths: number[];
  classes: ClassPrediction[];
  /** Server time per second all classes need, ms (1000: one server saturated). */
  busyMsPerS: number;
  /** Padded columns / real columns over all requests. */
  paddingWaste: number;
}

/** Mean of f(K) for K = min(maxBatch, 1 + N), N Poisson with mean `mean`. */
export function meanOverBatch(mean: number, maxBatch: number, f: (k: number) => number): { meanBatch: number; meanValue: number } {
  let p = Math.exp(-mean); // P(N = 0)
  let tail = 1;
  let meanBatch = 0;
  let meanValue = 0;
  for (let k = 1; k < maxBatch; k++) {
    meanBatch += k * p;
    meanValue += f(k) * p;
    tail -= p;
    p *= mean / k;
  }
  tail = Math.max(0, tail);
  return { meanBatch: meanBatch + maxBatch * tail, meanValue: meanValue + f(maxBatch) * tail };
}

/** The observed widths rounded up to stepPx, merged, ascending; widths beyond maxWidth count at maxWidth. */
export function roundedHistogram(histogram: WidthCount[], stepPx: number, maxWidth: number): WidthCount[] {
  const counts = new Map<number, number>();
  for (const { width, count } of histogram) {
    if (count <= 0) continue;
    const w = Math.min(maxWidth, Math.ceil(width / stepPx) * stepPx);
    counts.set(w, (counts.get(w) ?? 0) + count);
  }
  return [...counts].map(([width, count]) => ({ width, count })).sort((a, b) => a.width - b.width);
}

/** The model's prediction for given class widths (ascending; maxWidth is added when missing). */
export function evaluateSizeClasses(problem: SizeClassProblem, widths: number[]): SizeClassPlan {
  const bins = roundedHistogram(problem.histogram, problem.stepPx ?? 8, problem.maxWidth);
  const total = bins.reduce((n, b) => n + b.count, 0);
  const bounds = widths.at(-1) === problem.maxWidth ? widths : [...widths, problem.maxWidth];
  const classes: ClassPrediction[] = [];
  let next = 0;
  let realColumns = 0;
  let paddedColumns = 0;
  for (const width of bounds) {
    const members: WidthCount[] = [];
    while (next < bins.length && bins[next]!.width <= width) members.push(bins[next++]!);
    classes.push(classOf(problem, members, width, total));
    for (const m of members) {
      realColumns += m.count * m.width;
      paddedColumns += m.count * (width - m.width);
    }
  }
  return { widths: bounds, classes, busyMsPerS: classes.reduce((sum, c) => sum + c.busyMsPerS, 0), paddingWaste: realColumns > 0 ? paddedColumns / realColumns : 0 };
}

/** The class widths that minimise busy ms per second (see the module doc), with their prediction. */
export function planSizeClasses(problem: SizeClassProblem): SizeClassPlan {
  const bins = roundedHistogram(problem.histogram, problem.stepPx ?? 8, problem.maxWidth);
  const n = bins.length;
  if (n === 0) return evaluateSizeClasses(problem, [problem.maxWidth]);
  const total = bins.reduce((s, b) => s + b.count, 0);
  const maxClasses = Math.min(n, problem.maxClasses ?? n);
  // cost[i][j]: the class of bins i..j (inclusive) at width bins[j].
  const cost = bins.map((_, i) => {
    const row = new Float64Array(n).fill(Infinity);
    const widest = bins[i]!.width * (1 + (problem.maxPadRatio ?? Infinity));
    for (let j = i; j < n && bins[j]!.width <= widest; j++) row[j] = classOf(problem, bins.slice(i, j + 1), bins[j]!.width, total).busyMsPerS;
    return row;
  });
  // best[c][j]: least cost of bins 0..j in c + 1 classes; from[c][j]: where its last class starts.
  const best: Float64Array[] = [];
  const from: Int32Array[] = [];
  for (let c = 0; c < maxClasses; c++) {
    best.push(new Float64Array(n).fill(Infinity));
    from.push(new Int32Array(n).fill(-1));
    for (let j = 0; j < n; j++) {
      if (c === 0) {
        best[0]![j] = cost[0]![j]!;
        from[0]![j] = 0;
        continue;
      }
      for (let i = c; i <= j; i++) {
        const value = best[c - 1]![i - 1]! + cost[i]![j]!;
        if (value < best[c]![j]!) {
          best[c]![j] = value;
          from[c]![j] = i;
        }
      }
    }
  }
  let classes = 0;
  for (let c = 1; c < maxClasses; c++) if (best[c]![n - 1]! < best[classes]![n - 1]!) classes = c;
  const widths: number[] = [];
  for (let c = classes, j = n - 1; c >= 0; c--) {
    widths.unshift(bins[j]!.width);
    j = from[c]![j]! - 1;
  }
  return evaluateSizeClasses(problem, widths);
}

/** What bounds how long a class gathers company under load (loadedFormationMs). */
export interface LoadBounds {
  /** The latency target, ms. */
  sloMs: number;
  /** Most rows the buffer queues. */
  maxQueueRows: number;
  /** The longest batch: s(maxWidth, maxBatch), ms. */
  longestBatchMs: number;
  /** The window: a class gathers at least this long. */
  windowMs: number;
}

/**
 * How long a class gathers company near the highest rate at the SLO, ms. A lazy server (the
 * runtime's scheduler) busy with other classes' batches lets each class's queue grow until its turn:
 * its batch holds what arrived over about one cycle of the server through the classes, not only over
 * the window. That cycle is bounded by the SLO (the oldest request waits it, then its batch runs:
 * sloMs - longestBatchMs) and by the queue (all classes together queue at most maxQueueRows rows:
 * maxQueueRows / rate); never less than the window.
 */
export function loadedFormationMs(bounds: LoadBounds, ratePerS: number): number {
  return Math.max(bounds.windowMs, Math.min(bounds.sloMs - bounds.longestBatchMs, (1000 * bounds.maxQueueRows) / ratePerS));
}

/**
 * The highest rate whose planned busy time stays within `maxBusyMsPerS` (default 1000: one server),
 * with the plan for it (by bisection: the least busy time only grows with the rate). With fixed
 * `widths`, the highest rate of those classes instead. `formationMsAt` (e.g. loadedFormationMs)
 * sets the formation time per rate; default the problem's formationMs.
 */
export function highestRateSizeClasses(problem: Omit<SizeClassProblem, "ratePerS">, options: { maxBusyMsPerS?: number; widths?: number[]; formationMsAt?: (ratePerS: number) => number } = {}): { ratePerS: number; plan: SizeClassPlan } {
  const limit = options.maxBusyMsPerS ?? 1000;
  const problemAt = (ratePerS: number): SizeClassProblem => ({ ...problem, ratePerS, formationMs: options.formationMsAt?.(ratePerS) ?? problem.formationMs });
  const planAt = (ratePerS: number) => (options.widths ? evaluateSizeClasses(problemAt(ratePerS), options.widths) : planSizeClasses(problemAt(ratePerS)));
  let lo = 0;
  let hi = 1;
  while (planAt(hi).busyMsPerS <= limit && hi < 1e7) hi *= 2;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (planAt(mid).busyMsPerS <= limit) lo = mid;
    else hi = mid;
  }
  return { ratePerS: lo, plan: planAt(lo) };
}

function classOf(problem: SizeClassProblem, members: WidthCount[], width: number, total: number): ClassPrediction {
  const count = members.reduce((n, m) => n + m.count, 0);
  const ratePerS = total > 0 ? (problem.ratePerS * count) / total : 0;
  const realColumns = members.reduce((n, m) => n + m.count * m.width, 0);
  const paddingWaste = realColumns > 0 ? (count * width - realColumns) / realColumns : 0;
  if (ratePerS === 0) return { width, ratePerS: 0, meanBatch: 1, busyMsPerS: 0, paddingWaste };
  const { meanBatch, meanValue } = meanOverBatch((ratePerS * problem.formationMs) / 1000, problem.maxBatch, (k) => problem.serviceMs(width, k));
  return { width, ratePerS, meanBatch, busyMsPerS: (ratePerS / meanBatch) * meanValue, paddingWaste };
}
