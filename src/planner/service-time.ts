/**
 * Service time of one batch as a function of its size k: `linear` (baseMs + perItemMs * k) or a
 * `table` of measured ms for k = 1 .. n (sizes beyond the table extrapolate along its last step).
 * Also the least-squares fit of the linear model to measured (k, ms) samples.
 */

/** How a problem describes service time per batch (ms). */
export type ServiceSpec = { kind: "linear"; baseMs: number; perItemMs: number } | { kind: "table"; ms: number[] };

/** Service time in ms of a batch of `size` requests (size >= 1). */
export function serviceMs(spec: ServiceSpec, size: number): number {
  if (spec.kind === "linear") return spec.baseMs + spec.perItemMs * size;
  const table = spec.ms;
  if (size <= table.length) return table[size - 1]!;
  const last = table[table.length - 1]!;
  const slope = table.length > 1 ? last - table[table.length - 2]! : last;
  return last + slope * (size - table.length);
}

/** Service times for sizes 1 .. maxBatch; entry k - 1 is s(k). */
export function serviceTable(spec: ServiceSpec, maxBatch: number): Float64Array {
  return Float64Array.from({ length: maxBatch }, (_, i) => serviceMs(spec, i + 1));
}

/**
 * A line below the service times of a table (entry k - 1 is s(k)): s(k) >= baseMs + perItemMs * k
 * for every size k, with both >= 0. The slope is the smallest step between sizes, or 0 when a step
 * goes down (the exact line for a linear spec), lowered to touch the table; when that line would
 * start below 0, the line through the origin under every s(k).
 */
export function serviceLowerLine(service: Float64Array): { baseMs: number; perItemMs: number } {
  let perItemMs = Infinity;
  for (let k = 1; k < service.length; k++) perItemMs = Math.min(perItemMs, service[k]! - service[k - 1]!);
  perItemMs = Number.isFinite(perItemMs) ? Math.max(0, perItemMs) : 0;
  const baseMs = Math.min(...service.map((s, i) => s - perItemMs * (i + 1)));
  if (baseMs >= 0) return { baseMs, perItemMs };
  return { baseMs: 0, perItemMs: Math.min(...service.map((s, i) => s / (i + 1))) };
}

/** One measured batch: its size and how long it took, ms. */
export interface ServiceSample {
  batchSize: number;
  ms: number;
}

/** A linear fit with its quality. */
export interface LinearFit {
  kind: "linear";
  baseMs: number;
  perItemMs: number;
  /** Root-mean-square residual, ms. */
  rmseMs: number;
  /** Coefficient of determination (1 when all sizes are equal and the fit is exact). */
  r2: number;
}

/**
 * Least-squares fit of ms = baseMs + perItemMs * batchSize. Needs at least one sample; with a single
 * distinct batch size the slope is 0 and the base is the mean. The base is clamped at 0 (a negative
 * intercept is a measurement artefact), refitting the slope through the origin in that case.
 */
export function fitLinear(samples: readonly ServiceSample[]): LinearFit {
  if (samples.length === 0) throw new RangeError("fitLinear needs at least one sample");
  const n = samples.length;
  const meanK = samples.reduce((s, x) => s + x.batchSize, 0) / n;
  const meanMs = samples.reduce((s, x) => s + x.ms, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const x of samples) {
    sxx += (x.batchSize - meanK) ** 2;
    sxy += (x.batchSize - meanK) * (x.ms - meanMs);
  }
  let perItemMs = sxx > 0 ? sxy / sxx : 0;
  let baseMs = meanMs - perItemMs * meanK;
  if (baseMs < 0) {
    baseMs = 0;
    perItemMs = samples.reduce((s, x) => s + x.batchSize * x.ms, 0) / samples.reduce((s, x) => s + x.batchSize ** 2, 0);
  }
  let sse = 0;
  let sst = 0;
  for (const x of samples) {
    sse += (x.ms - baseMs - perItemMs * x.batchSize) ** 2;
    sst += (x.ms - meanMs) ** 2;
  }
  return { kind: "linear", baseMs, perItemMs, rmseMs: Math.sqrt(sse / n), r2: sst > 0 ? 1 - sse / sst : 1 };
}
