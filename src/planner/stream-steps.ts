/**
 * The step-level batch of streaming (cellular batching, BatchMaker EuroSys'18, as src/stream/ runs
 * it with the step policy, src/scheduler/step-policy.ts): for N streams spread evenly over shards
 * (one server each, a Durable Object), the batch sizes of the steps, the chunk latency (arrival at
 * the server to its answer) and the chunks per second.
 *
 * The load is deterministic. Paced streams each send a chunk every intervalMs, their phases spread
 * evenly (stream i at i * intervalMs / N); closed-loop streams all start together and each sends its
 * next chunk thinkMs (> 0: the round trip and the client's own time) after its answer left. The
 * server follows the step rule: when it is free, the queued chunks (FIFO) start, at most maxBatch,
 * as soon as min(N, maxBatch) are queued (a chunk of every stream) or the oldest has waited
 * windowMs; a batch of k chunks takes s(k). Chunks that arrive at the same moment move together as
 * a cohort (a closed-loop cohort is the batch its chunks left in, which returns as one), so the
 * recursion runs over cohorts, batch after batch, for `rounds` chunks per stream; the statistics are
 * those of the second half (the system settles into a cycle long before). A paced load at or above
 * what full batches serve (N / intervalMs >= maxBatch / s(maxBatch)) has no steady state: reported
 * unstable, with infinite latency. Paced chunks are assumed answered within intervalMs (a stream
 * has one chunk in a step); closed-loop streams satisfy it by construction.
 */
import { type ServiceSpec, serviceMs } from "./service-time";

/** How streams send their chunks. */
export type StreamLoad = { kind: "paced"; intervalMs: number } | { kind: "closed"; thinkMs: number };

/** What the prediction needs. */
export interface StreamStepsInput {
  streams: number;
  load: StreamLoad;
  /** Service time of one batch by its rows. */
  service: ServiceSpec;
  maxBatch: number;
  windowMs: number;
  /** Servers (Durable Objects) the streams spread over evenly; default 1. */
  shards?: number;
  /** The latency percentile to report (0..1); default 0.99. */
  percentile?: number;
  /** Chunks per stream in the recursion (the second half is measured); default 120. */
  rounds?: number;
}

/** The prediction, for the busiest shard (ceil(N / shards) streams) except the totals. */
export interface StreamStepsPrediction {
  streamsPerShard: number;
  /** Whether the load has a steady state (always, closed-loop). */
  isStable: boolean;
  /** Fraction of time a shard's server runs batches. */
  utilisation: number;
  /** Chunks answered per second, all shards together. */
  chunksPerS: number;
  /** Mean rows per batch. */
  meanBatchRows: number;
  /** Batches per step: one step (a chunk of every stream) leaves in this many batches on average. */
  batchesPerStep: number;
  meanLatencyMs: number;
  p50LatencyMs: number;
  /** Latency at `percentile`. */
  percentileLatencyMs: number;
  percentile: number;
}

interface Cohort {
  atMs: number;
  count: number;
}

/** Predicts steps, latency and throughput for `input` (see the module doc). */
export function predictStreamSteps(input: StreamStepsInput): StreamStepsPrediction {
  const shards = input.shards ?? 1;
  const percentile = input.percentile ?? 0.99;
  if (!(input.streams >= 1 && shards >= 1 && input.maxBatch >= 1 && input.windowMs >= 0)) throw new RangeError("streams, shards and maxBatch must be >= 1 and windowMs >= 0");
  if (input.load.kind === "closed" && !(input.load.thinkMs > 0)) throw new RangeError("thinkMs must be > 0");
  if (input.load.kind === "paced" && !(input.load.intervalMs > 0)) throw new RangeError("intervalMs must be > 0");
  const n = Math.ceil(input.streams / shards);
  const s = (k: number) => serviceMs(input.service, k);
  const capacityPerMs = input.maxBatch / s(input.maxBatch);
  if (input.load.kind === "paced" && n / input.load.intervalMs >= capacityPerMs) {
    return { streamsPerShard: n, isStable: false, utilisation: 1, chunksPerS: 1000 * capacityPerMs * shards, meanBatchRows: input.maxBatch, batchesPerStep: n / input.maxBatch, meanLatencyMs: Infinity, p50LatencyMs: Infinity, percentileLatencyMs: Infinity, percentile };
  }
  const batches = runSteps(n, input, s);
  // The second half of the run, by batch start, up to the start of the last batch.
  const lastStartMs = batches.at(-1)!.startMs;
  const measured = batches.filter((b) => b.startMs >= lastStartMs / 2 && b.startMs < lastStartMs);
  const spanMs = lastStartMs - measured[0]!.startMs;
  let chunks = 0;
  let busyMs = 0;
  let latencySum = 0;
  const latencies: Cohort[] = [];
  for (const b of measured) {
    chunks += b.rows;
    busyMs += b.endMs - b.startMs;
    for (const c of b.cohorts) {
      latencies.push({ atMs: b.endMs - c.atMs, count: c.count });
      latencySum += (b.endMs - c.atMs) * c.count;
    }
  }
  latencies.sort((a, b) => a.atMs - b.atMs);
  const meanBatchRows = chunks / measured.length;
  return {
    streamsPerShard: n,
    isStable: true,
    utilisation: busyMs / spanMs,
    chunksPerS: input.load.kind === "paced" ? (1000 * input.streams) / input.load.intervalMs : (1000 * chunks * shards) / spanMs,
    meanBatchRows,
    batchesPerStep: n / meanBatchRows,
    meanLatencyMs: latencySum / chunks,
    p50LatencyMs: weightedQuantile(latencies, chunks, 0.5),
    percentileLatencyMs: weightedQuantile(latencies, chunks, percentile),
    percentile,
  };
}

/**
 * The fewest shards (up to maxShards) whose predicted latency at `slo.percentile`, plus `extraMs`
 * (network, parsing), is within `slo.ms`; undefined when none is.
 */
export function minShardsForSlo(input: Omit<StreamStepsInput, "shards" | "percentile">, slo: { percentile: number; ms: number }, maxShards: number, extraMs = 0): number | undefined {
  for (let shards = 1; shards <= maxShards; shards++) {
    const p = predictStreamSteps({ ...input, shards, percentile: slo.percentile });
    if (p.isStable && p.percentileLatencyMs + extraMs <= slo.ms) return shards;
  }
  return undefined;
}

/**
 * The most paced streams one shard takes with the chunk latency at `slo.percentile`, plus `extraMs`,
 * within `slo.ms` and its server busy at most `maxUtilisation` of the time (0 when not even one
 * stream fits): what a stream shard admits (src/stream/stream-buffer.ts). The headroom is the
 * controller's (0.85): near full use the latency turns on a few hundredths of a millisecond of
 * service time, more than the shard's estimate of it is worth. Each count n is predicted as the
 * shard runs it, steps of at most min(maxBatch, n) chunks; the largest passing n is found by
 * bisection below the count full batches can serve at all (latency and use grow with the streams).
 * `rounds` as in predictStreamSteps (default 40: an admission decision).
 */
export function maxStreamsForSlo(input: Omit<StreamStepsInput, "streams" | "shards" | "percentile" | "load"> & { load: Extract<StreamLoad, { kind: "paced" }> }, slo: { percentile: number; ms: number }, extraMs = 0, maxUtilisation = 0.85): number {
  const rounds = input.rounds ?? 40;
  const fits = (n: number) => {
    const p = predictStreamSteps({ ...input, streams: n, maxBatch: Math.min(input.maxBatch, n), percentile: slo.percentile, rounds });
    return p.isStable && p.utilisation <= maxUtilisation && p.percentileLatencyMs + extraMs <= slo.ms;
  };
  // Above this count even steps of maxBatch chunks cannot keep up (predictStreamSteps: unstable).
  const bound = Math.ceil((input.load.intervalMs * input.maxBatch) / serviceMs(input.service, input.maxBatch));
  let lo = 0; // fits (or 0)
  let hi = Math.max(1, bound) + 1; // does not fit
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** A shard's step windows: for each candidate window, the most paced streams it keeps within the SLO. */
export interface StreamWindowPlan {
  /** Ascending by window. */
  windows: Array<{ windowMs: number; maxStreams: number }>;
  /** The most streams any window keeps within the SLO (what the shard admits). */
  maxStreams: number;
}

/**
 * The step windows of a shard of paced streams (maxStreamsForSlo at each of `windowsMs`). A wider
 * window lets streams whose chunks arrive apart share a step, so fewer, larger batches carry them:
 * where each batch costs much beyond its rows, far more streams fit, at a latency the SLO still
 * bounds. `windowForStreams` then picks, for the streams open, the narrowest window that carries them.
 */
export function planStreamWindows(input: Omit<Parameters<typeof maxStreamsForSlo>[0], "windowMs">, slo: { percentile: number; ms: number }, windowsMs: readonly number[], extraMs = 0, maxUtilisation = 0.85): StreamWindowPlan {
  const windows = [...new Set(windowsMs)].sort((a, b) => a - b).map((windowMs) => ({ windowMs, maxStreams: maxStreamsForSlo({ ...input, windowMs }, slo, extraMs, maxUtilisation) }));
  return { windows, maxStreams: Math.max(0, ...windows.map((w) => w.maxStreams)) };
}

/** The narrowest window of `plan` that carries `streams` streams within the SLO (the one that carries the most when none does). */
export function windowForStreams(plan: StreamWindowPlan, streams: number): number {
  const fitting = plan.windows.find((w) => w.maxStreams >= streams);
  if (fitting) return fitting.windowMs;
  return plan.windows.reduce((best, w) => (w.maxStreams > best.maxStreams ? w : best), plan.windows[0]!).windowMs;
}

interface BatchRecord {
  startMs: number;
  endMs: number;
  rows: number;
  /** The arrival times and counts of its chunks. */
  cohorts: Cohort[];
}

/** The step rule on one server for `n` streams, batch after batch (see the module doc). */
function runSteps(n: number, input: StreamStepsInput, s: (k: number) => number): BatchRecord[] {
  const { maxBatch, windowMs, load } = input;
  const rounds = input.rounds ?? 120;
  const target = Math.min(n, maxBatch);
  const queue: Cohort[] = [];
  let head = 0;
  if (load.kind === "closed") queue.push({ atMs: 0, count: n });
  else for (let j = 0; j < n * rounds; j++) queue.push({ atMs: (j * load.intervalMs) / n, count: 1 });
  const batches: BatchRecord[] = [];
  let freeAtMs = 0;
  let served = 0;
  while (head < queue.length && served < n * rounds) {
    // Due: once min(n, maxBatch) chunks have arrived (the step is complete), or the window ends.
    let fullAtMs = Infinity;
    for (let i = head, count = 0; i < queue.length; i++) {
      count += queue[i]!.count;
      if (count >= target) {
        fullAtMs = queue[i]!.atMs;
        break;
      }
    }
    const startMs = Math.max(freeAtMs, Math.min(fullAtMs, queue[head]!.atMs + windowMs));
    // It takes what has arrived by its start, FIFO, at most maxBatch.
    const cohorts: Cohort[] = [];
    let rows = 0;
    while (head < queue.length && rows < maxBatch && queue[head]!.atMs <= startMs) {
      const cohort = queue[head]!;
      const taken = Math.min(cohort.count, maxBatch - rows);
      cohorts.push({ atMs: cohort.atMs, count: taken });
      rows += taken;
      if (taken === cohort.count) head++;
      else cohort.count -= taken;
    }
    const endMs = startMs + s(rows);
    batches.push({ startMs, endMs, rows, cohorts });
    served += rows;
    freeAtMs = endMs;
    // Closed loop: the batch's chunks come back together, thinkMs after their answers.
    if (load.kind === "closed") queue.push({ atMs: endMs + load.thinkMs, count: rows });
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  }
  return batches;
}

/** The nearest-rank q-quantile of weighted values (`atMs` the value, sorted ascending; `total` the weights' sum). */
function weightedQuantile(sorted: Cohort[], total: number, q: number): number {
  const rank = Math.max(1, Math.ceil(q * total));
  let cumulative = 0;
  for (const v of sorted) {
    cumulative += v.count;
    if (cumulative >= rank) return v.atMs;
  }
  return sorted.at(-1)!.atMs;
}
