/**
 * The scheduler replayed offline: one-row requests arriving at given times, one server, batches of
 * k rows taking exactly serviceMs[k - 1], no deadlines. It runs the runtime's own Scheduler (same
 * formation rules), so it is what the running system would do without noise: the fidelity benchmark
 * compares it with the live system and the planner, and a test checks it against the planner's
 * simulator request by request. With `sharedThread` the requests' front door runs on the server's
 * thread (locally the Worker and its Durable Object share one workerd thread): a request that
 * arrives while a batch runs reaches the scheduler when the batch ends; with `answerMsPerRow` the
 * last part of each batch's time answers its requests in turn (the planner's ServerSpec). replayJobs is the same with multi-row requests, batch keys and
 * several servers (the pipeline planner's stages: src/planner/pipeline.ts). Pure.
 */
import { type FlushPolicy, windowPolicy } from "./flush-policy";
import { type Batch, Scheduler } from "./scheduler";

/** Each request's latency (completion minus arrival, ms), in arrival order. */
export function replayLatencies(arrivalsMs: ArrayLike<number>, serviceMs: ArrayLike<number>, maxBatch: number, windowMs: number, { policy = windowPolicy, sharedThread = false, answerMsPerRow = 0 }: { policy?: FlushPolicy; sharedThread?: boolean; answerMsPerRow?: number } = {}): Float64Array {
  const scheduler = new Scheduler<number>({ maxBatch, windowMs, maxQueueRows: Number.MAX_SAFE_INTEGER }, policy);
  const latencies = new Float64Array(arrivalsMs.length);
  let running: Batch<number> | undefined;
  let runningEndMs = Infinity;
  let next = 0;
  for (let nowMs = -Infinity; next < arrivalsMs.length || scheduler.queuedRows > 0 || running; ) {
    const dueMs = running ? Infinity : (scheduler.nextWakeAtMs(nowMs) ?? Infinity);
    // On a shared thread nothing reaches the scheduler while a batch runs.
    nowMs = Math.min(running && sharedThread ? Infinity : (arrivalsMs[next] ?? Infinity), runningEndMs, dueMs);
    if (running && runningEndMs <= nowMs) {
      scheduler.finish(running);
      running.jobs.forEach((job, i) => (latencies[job.payload] = nowMs - (running!.jobs.length - 1 - i) * answerMsPerRow - arrivalsMs[job.payload]!));
      running = undefined;
      runningEndMs = Infinity;
    }
    for (; next < arrivalsMs.length && arrivalsMs[next]! <= nowMs; next++) scheduler.admit({ id: String(next), rows: 1, batchKey: "", deadlineAtMs: Infinity, payload: next }, sharedThread ? nowMs : arrivalsMs[next]!);
    if (!running) {
      running = scheduler.start(nowMs);
      if (running) runningEndMs = nowMs + serviceMs[running.rows - 1]!;
    }
  }
  return latencies;
}

/** What replayJobs replays: requests of several rows and batch keys on `servers` servers. */
export interface ReplayJobsInput {
  /** Arrival of each request, ms, non-decreasing. */
  arrivalsMs: ArrayLike<number>;
  /** Rows of each request. */
  rows: ArrayLike<number>;
  /** Batch key of each request (only requests of one key share a batch). */
  batchKeys: ArrayLike<string>;
  maxBatch: number;
  windowMs: number;
  /** Batches that may run at once; default 1. */
  servers?: number;
  /** Most rows queued at once: a request beyond is refused at admission; default unbounded. */
  maxQueueRows?: number;
  /** How long a batch of `rows` rows of `batchKey` takes, ms. */
  serviceMs: (rows: number, batchKey: string) => number;
  policy?: FlushPolicy;
}

/** What replayJobs measured. */
export interface ReplayJobsResult {
  /** Completion of each request (end of its batch), ms; NaN when it was refused at admission. */
  completionMs: Float64Array;
  batches: number;
  /** Sum of the batches' service times, ms. */
  busyMs: number;
  /** Sum over batches of the time its oldest request waited for company on a free server (an open window), ms. */
  windowWaitMs: number;
  /** Sum over batches of the time its oldest request waited for a server to free, ms. */
  serverWaitMs: number;
}

/**
 * The scheduler replayed offline with multi-row requests, batch keys and several servers: the
 * runtime's Scheduler (lazy formation by key, FIFO, admission on maxQueueRows) on a fake clock, no
 * deadlines, each batch taking exactly serviceMs(rows, key). With one-row requests, one key and
 * one server it is replayLatencies. Pure.
 */
export function replayJobs(input: ReplayJobsInput): ReplayJobsResult {
  const servers = input.servers ?? 1;
  const { arrivalsMs, rows, batchKeys } = input;
  const n = arrivalsMs.length;
  const scheduler = new Scheduler<number>({ maxBatch: input.maxBatch, windowMs: input.windowMs, maxQueueRows: input.maxQueueRows ?? Number.MAX_SAFE_INTEGER, servers }, input.policy ?? windowPolicy);
  const completionMs = new Float64Array(n);
  // Running batches and their ends; when each free server became free.
  const running: Batch<number>[] = [];
  const runningEndMs: number[] = [];
  const freeSinceMs: number[] = new Array<number>(servers).fill(-Infinity);
  let batches = 0;
  let busyMs = 0;
  let windowWaitMs = 0;
  let serverWaitMs = 0;
  let next = 0;
  for (let nowMs = -Infinity; next < n || scheduler.queuedRows > 0 || running.length > 0; ) {
    let endMs = Infinity;
    for (const e of runningEndMs) if (e < endMs) endMs = e;
    const dueMs = running.length < servers ? (scheduler.nextWakeAtMs(nowMs) ?? Infinity) : Infinity;
    nowMs = Math.min(next < n ? arrivalsMs[next]! : Infinity, endMs, dueMs);
    if (nowMs === Infinity) break;
    for (let i = running.length - 1; i >= 0; i--) {
      if (runningEndMs[i]! > nowMs) continue;
      const batch = running[i]!;
      scheduler.finish(batch);
      for (const job of batch.jobs) completionMs[job.payload] = runningEndMs[i]!;
      freeSinceMs.push(runningEndMs[i]!);
      running[i] = running[running.length - 1]!;
      runningEndMs[i] = runningEndMs[runningEndMs.length - 1]!;
      running.pop();
      runningEndMs.pop();
    }
    for (; next < n && arrivalsMs[next]! <= nowMs; next++) {
      const admission = scheduler.admit({ id: "", rows: rows[next]!, batchKey: batchKeys[next]!, deadlineAtMs: Infinity, payload: next }, arrivalsMs[next]!);
      if (!admission.ok) completionMs[next] = NaN;
    }
    for (let batch = scheduler.start(nowMs); batch; batch = scheduler.start(nowMs)) {
      const ms = input.serviceMs(batch.rows, batch.jobs[0]!.batchKey);
      running.push(batch);
      runningEndMs.push(nowMs + ms);
      batches++;
      busyMs += ms;
      // It takes the server free the longest: the oldest waited for it until it freed, then for company.
      let s = 0;
      for (let x = 1; x < freeSinceMs.length; x++) if (freeSinceMs[x]! < freeSinceMs[s]!) s = x;
      const freedAtMs = freeSinceMs[s] ?? -Infinity;
      freeSinceMs[s] = freeSinceMs[freeSinceMs.length - 1]!;
      freeSinceMs.pop();
      const enqueuedAtMs = batch.jobs[0]!.enqueuedAtMs;
      const serverFreeAtMs = Math.min(nowMs, Math.max(enqueuedAtMs, freedAtMs));
      serverWaitMs += serverFreeAtMs - enqueuedAtMs;
      windowWaitMs += nowMs - serverFreeAtMs;
    }
  }
  return { completionMs, batches, busyMs, windowWaitMs, serverWaitMs };
}
