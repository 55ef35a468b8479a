/**
 * A seeded discrete-event simulator of the same system the latency model describes, used to
 * measure the model's error. Assumptions (shared with the model):
 * - arrivals follow the MAP (a Poisson process is its one-phase case), started in its stationary
 *   phase distribution; each request goes to one of `shards` buffers uniformly at random;
 * - a buffer's window opens at the arrival that finds it empty; the batch is released when it holds
 *   maxBatch requests (at that arrival) or windowMs after the window opened, whichever is first;
 * - unbounded servers start every batch at its release; fixed servers with sealed formation (the
 *   default) are FIFO in release order, either one pool for all shards (scope "shared") or `count`
 *   servers per shard ("per-shard");
 * - fixed servers with lazy formation (the runtime's policy) keep one FIFO queue of requests per
 *   shard (per-shard) or one for the pool (shared: every request joins it, whatever its shard);
 *   whenever a server is free it starts a batch of min(maxBatch, queued) as soon as maxBatch requests
 *   are queued or the oldest has waited windowMs (serveLazy); with `sharedThread` (one server, the
 *   front door on its thread) a request that arrives while a batch runs joins the queue when the
 *   batch ends, and its wait for the window counts from then;
 * - a batch of size k takes exactly s(k) ms; every request of the batch completes with it (with
 *   fixed servers' `answerMsPerRow` a, the i-th of the k in arrival order (k - i) a before), and
 *   `extraMs` is added to each latency;
 * - the first `warmupRequests` arrivals are not measured (their batches still load the servers).
 */
import type { MarkovianArrival } from "./arrival";
import type { LatencyInput } from "./latency-model";
import { serviceTable } from "./service-time";

/** A seeded uniform generator on [0, 1) (mulberry32, two draws per number for 53 bits). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  const next32 = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return () => (next32() * 2 ** 21 + (next32() >>> 11)) / 2 ** 53;
}

/** Arrival times (ms, increasing) of `count` requests from a MAP, starting in its stationary phase. */
export function sampleArrivals(arrival: MarkovianArrival, count: number, rng: () => number): Float64Array {
  const m = arrival.phases;
  const rates = Array.from({ length: m }, (_, i) => -arrival.d0.data[i * m + i]!);
  // For each phase: cumulative probabilities over the 2m - 1 possible events (hidden moves, arrivals).
  const events = rates.map((rate, i) => {
    const list: { to: number; isArrival: boolean; cumulative: number }[] = [];
    let c = 0;
    for (let j = 0; j < m; j++) {
      if (j !== i && arrival.d0.data[i * m + j]! > 0) list.push({ to: j, isArrival: false, cumulative: (c += arrival.d0.data[i * m + j]! / rate) });
      if (arrival.d1.data[i * m + j]! > 0) list.push({ to: j, isArrival: true, cumulative: (c += arrival.d1.data[i * m + j]! / rate) });
    }
    return list;
  });
  let phase = pick(arrival.phaseStationary, rng());
  const times = new Float64Array(count);
  let now = 0;
  for (let n = 0; n < count; ) {
    now += (-Math.log(1 - rng()) / rates[phase]!) * 1000;
    const u = rng();
    const list = events[phase]!;
    const event = list.find((e) => u < e.cumulative) ?? list[list.length - 1]!;
    phase = event.to;
    if (event.isArrival) times[n++] = now;
  }
  return times;
}

function pick(probs: ArrayLike<number>, u: number): number {
  let c = 0;
  for (let i = 0; i < probs.length; i++) if (u < (c += probs[i]!)) return i;
  return probs.length - 1;
}

/** Inputs of one simulation run. */
export interface SimulationInput extends Omit<LatencyInput, "gridSteps"> {
  /** Measured requests. */
  requests: number;
  /** Requests simulated first and not measured; default requests / 10. */
  warmupRequests?: number;
  seed: number;
}

/** What a simulation measured. */
export interface SimulationResult {
  latencyMs: { p50: number; p95: number; p99: number; mean: number };
  meanBatch: number;
  /** batchSizeProbs[k - 1]: fraction of batches of size k. */
  batchSizeProbs: number[];
  /** Busy fraction per server (fixed) or mean busy batches (unbounded). */
  utilisation: number;
  /** Sorted measured latencies, ms. */
  latencies: Float64Array;
}

interface Batch {
  releaseMs: number;
  first: number; // index into the shard's member list
  size: number;
}

/** Runs the simulation. */
export function simulate(input: SimulationInput): SimulationResult {
  const rng = createRng(input.seed);
  const shards = input.shards ?? 1;
  const warmup = input.warmupRequests ?? Math.floor(input.requests / 10);
  const total = warmup + input.requests;
  const arrivals = sampleArrivals(input.arrival, total, rng);
  const shardOf = Uint16Array.from({ length: total }, () => Math.floor(rng() * shards));
  const service = serviceTable(input.service, input.maxBatch);

  // Requests of each shard in arrival order, and the batches each buffer releases.
  const members: number[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; i < total; i++) members[shardOf[i]!]!.push(i);
  const isLazyFormation = input.servers.kind === "fixed" && input.servers.formation === "lazy";
  const batches: Batch[][] = isLazyFormation ? [] : members.map((list) => formBatches(list, arrivals, input.maxBatch, input.windowMs));

  const completion = new Float64Array(total);
  let busyMs = 0;
  const servers = input.servers;
  // With answers in turn the i-th of a batch's k requests is done (k - i) answerMsPerRow before its end.
  const answerMs = servers.kind === "fixed" ? (servers.answerMsPerRow ?? 0) : 0;
  const complete = (list: ArrayLike<number>, first: number, size: number, startMs: number): number => {
    const done = startMs + service[size - 1]!;
    busyMs += service[size - 1]!;
    for (let r = first; r < first + size; r++) completion[list[r]!] = done - (first + size - 1 - r) * answerMs;
    return done;
  };
  const finish = (shard: number, batch: Batch, startMs: number): number => complete(members[shard]!, batch.first, batch.size, startMs);
  const isLazy = servers.kind === "fixed" && servers.formation === "lazy";
  const isPerShard = servers.kind === "fixed" && (servers.scope ?? "shared") === "per-shard";
  let batchCount = 0;
  const counts = new Float64Array(input.maxBatch);
  if (isLazy) {
    // Lazy formation: one request queue per shard (per-shard) or one for the pool (shared).
    const queues = isPerShard ? members : [Array.from({ length: total }, (_, i) => i)];
    for (const list of queues)
      serveLazy(list, arrivals, input.maxBatch, input.windowMs, servers.count, service, servers.sharedThread === true, (first, size, startMs) => {
        complete(list, first, size, startMs);
        counts[size - 1]! += 1;
        batchCount++;
      });
  } else if (servers.kind === "unbounded") batches.forEach((list, s) => list.forEach((b) => finish(s, b, b.releaseMs)));
  else if ((servers.scope ?? "shared") === "per-shard") batches.forEach((list, s) => serveFifo(list.map((b) => ({ shard: s, batch: b })), servers.count, finish));
  else {
    const all = batches.flatMap((list, s) => list.map((b) => ({ shard: s, batch: b })));
    all.sort((x, y) => x.batch.releaseMs - y.batch.releaseMs);
    serveFifo(all, servers.count, finish);
  }

  const latencies = new Float64Array(input.requests);
  const extra = input.extraMs ?? 0;
  let sum = 0;
  for (let i = warmup; i < total; i++) sum += latencies[i - warmup] = completion[i]! + extra - arrivals[i]!;
  latencies.sort();
  const q = (p: number): number => latencies[Math.max(0, Math.ceil(p * latencies.length) - 1)]!;
  if (!isLazy) for (const list of batches) for (const b of list) (counts[b.size - 1]! += 1), batchCount++;
  const spanMs = arrivals[total - 1]! - arrivals[0]!;
  const serverCount = servers.kind === "fixed" ? servers.count * (isPerShard ? shards : 1) : 1;
  return {
    latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99), mean: sum / input.requests },
    meanBatch: total / batchCount,
    batchSizeProbs: Array.from(counts, (c) => c / batchCount),
    utilisation: busyMs / (serverCount * spanMs),
    latencies,
  };
}

function formBatches(list: number[], arrivals: Float64Array, maxBatch: number, windowMs: number): Batch[] {
  const out: Batch[] = [];
  let open: Batch | undefined;
  let deadline = 0;
  list.forEach((req, r) => {
    const t = arrivals[req]!;
    if (open && t > deadline) {
      open.releaseMs = deadline;
      out.push(open);
      open = undefined;
    }
    if (!open) {
      open = { releaseMs: NaN, first: r, size: 0 };
      deadline = t + windowMs;
    }
    open.size++;
    if (open.size === maxBatch) {
      open.releaseMs = t;
      out.push(open);
      open = undefined;
    }
  });
  if (open) {
    open.releaseMs = deadline;
    out.push(open);
  }
  return out;
}

/** FIFO service of batches (in release order) by `servers` servers; `finish` returns the completion time. */
function serveFifo(queue: { shard: number; batch: Batch }[], servers: number, finish: (shard: number, batch: Batch, startMs: number) => number): void {
  const freeAt = new Float64Array(servers);
  for (const { shard, batch } of queue) {
    let s = 0;
    for (let i = 1; i < servers; i++) if (freeAt[i]! < freeAt[s]!) s = i;
    freeAt[s] = finish(shard, batch, Math.max(batch.releaseMs, freeAt[s]!));
  }
}

/**
 * Lazy formation on one request queue (`list`: request indices in arrival order) with `servers`
 * servers: the next batch starts at max(previous start, earliest free server, ready time), the ready
 * time being when maxBatch requests are queued or the oldest queued request has waited windowMs,
 * and takes the min(maxBatch, queued) oldest requests. With `sharedThread` (one server) a request
 * that arrives while a batch runs is queued when that batch ends. `start(first, size, startMs)`
 * records each batch.
 */
export function serveLazy(list: ArrayLike<number>, arrivals: Float64Array, maxBatch: number, windowMs: number, servers: number, service: Float64Array, sharedThread: boolean, start: (first: number, size: number, startMs: number) => void): void {
  if (sharedThread && servers !== 1) throw new RangeError("serveLazy: a shared thread is one server");
  const freeAt = new Float64Array(servers);
  const n = list.length;
  // When each request joined the queue: its arrival, or on a shared thread the end of the batch it arrived during (set up to `queuedUpTo`).
  const queuedAt = Float64Array.from({ length: n }, (_, r) => arrivals[list[r]!]!);
  let queuedUpTo = 0;
  let previousStart = -Infinity;
  for (let head = 0; head < n; ) {
    let s = 0;
    for (let i = 1; i < servers; i++) if (freeAt[i]! < freeAt[s]!) s = i;
    const fullAt = head + maxBatch - 1 < n ? queuedAt[head + maxBatch - 1]! : Infinity;
    const readyAt = Math.min(queuedAt[head]! + windowMs, fullAt);
    const startMs = Math.max(previousStart, freeAt[s]!, readyAt);
    let size = 1;
    while (size < maxBatch && head + size < n && queuedAt[head + size]! <= startMs) size++;
    start(head, size, startMs);
    freeAt[s] = startMs + service[size - 1]!;
    previousStart = startMs;
    head += size;
    if (!sharedThread) continue;
    // Requests that arrive while this batch runs join the queue when it ends.
    for (queuedUpTo = Math.max(queuedUpTo, head); queuedUpTo < n && queuedAt[queuedUpTo]! < freeAt[s]!; queuedUpTo++) {
      if (queuedAt[queuedUpTo]! >= startMs) queuedAt[queuedUpTo] = freeAt[s]!;
    }
  }
}
