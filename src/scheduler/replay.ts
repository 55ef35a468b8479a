/**
 * The scheduler replayed offline: one-row requests arriving at given times, one server, batches of
 * k rows taking exactly serviceMs[k - 1], no deadlines. It runs the runtime's own Scheduler (same
 * formation rules), so it is what the running system would do without noise: the fidelity benchmark
 * compares it with the live system and the planner, and a test checks it against the planner's
 * simulator request by request. Pure.
 */
import { type FlushPolicy, windowPolicy } from "./flush-policy";
import { type Batch, Scheduler } from "./scheduler";

/** Each request's latency (completion minus arrival, ms), in arrival order. */
export function replayLatencies(arrivalsMs: ArrayLike<number>, serviceMs: ArrayLike<number>, maxBatch: number, windowMs: number, policy: FlushPolicy = windowPolicy): Float64Array {
  const scheduler = new Scheduler<number>({ maxBatch, windowMs, maxQueueRows: Number.MAX_SAFE_INTEGER }, policy);
  const latencies = new Float64Array(arrivalsMs.length);
  let running: Batch<number> | undefined;
  let runningEndMs = Infinity;
  let next = 0;
  for (let nowMs = -Infinity; next < arrivalsMs.length || scheduler.queuedRows > 0 || running; ) {
    const dueMs = running ? Infinity : (scheduler.nextWakeAtMs(nowMs) ?? Infinity);
    nowMs = Math.min(arrivalsMs[next] ?? Infinity, runningEndMs, dueMs);
    if (running && runningEndMs <= nowMs) {
      scheduler.finish(running);
      for (const job of running.jobs) latencies[job.payload] = nowMs - arrivalsMs[job.payload]!;
      running = undefined;
      runningEndMs = Infinity;
    }
    for (; next < arrivalsMs.length && arrivalsMs[next]! <= nowMs; next++) scheduler.admit({ id: String(next), rows: 1, batchKey: "", deadlineAtMs: Infinity, payload: next }, arrivalsMs[next]!);
    if (!running) {
      running = scheduler.start(nowMs);
      if (running) runningEndMs = nowMs + serviceMs[running.rows - 1]!;
    }
  }
  return latencies;
}
