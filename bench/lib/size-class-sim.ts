/**
 * A discrete-event simulation of one buffer serving requests of different widths, driving the
 * runtime's own Scheduler (src/scheduler/scheduler.ts) on a fake clock: lazy formation by batch key
 * (the request's class width, as src/protocol/infer-request.ts keys it), the manifest's flush policy,
 * admission control with the learnt service estimate, per-request deadlines. A batch of k rows at
 * class width W takes exactly serviceMs(W, k), the assumed service profile; nothing else costs time
 * (no HTTP, no hop). Pure: seeded, no clock, no I/O.
 */
import { classWidthOf } from "../../src/batching/size-classes";
import type { WidthServiceMs } from "../../src/planner/size-classes";
import { adaptiveWindowPolicy } from "../../src/scheduler/adaptive-window";
import { windowPolicy } from "../../src/scheduler/flush-policy";
import { type Batch, Scheduler } from "../../src/scheduler/scheduler";
import { ServiceEstimate } from "../../src/scheduler/service-estimate";
import { seededRandom } from "./open-loop";
import { quantile } from "./stats";

/** One simulated run. */
export interface SimOptions {
  /** Request widths to draw from (uniformly: the width mix). */
  mix: readonly number[];
  /** Class widths (ascending); undefined: every width its own class. */
  classWidths?: number[];
  serviceMs: WidthServiceMs;
  ratePerS: number;
  durationS: number;
  seed: number;
  maxBatch: number;
  windowMs: number;
  maxQueueRows: number;
  /** A request's deadline after its arrival, ms. */
  deadlineMs: number;
  adaptiveWindow: boolean;
}

/** What a run gave. */
export interface SimResult {
  ratePerS: number;
  sent: number;
  /** Refused at admission, expired in the queue, or answered after the deadline. */
  failed: number;
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
  /** Share of the time the server was busy. */
  busyShare: number;
}

interface Request {
  arrivalMs: number;
  width: number;
}

/** Runs one simulation (see the module doc). */
export function simulateSizeClasses(o: SimOptions): SimResult {
  const random = seededRandom(o.seed);
  const requests: Request[] = [];
  for (let t = 0; ; ) {
    t += (-Math.log(1 - random()) / o.ratePerS) * 1000;
    if (t > o.durationS * 1000) break;
    requests.push({ arrivalMs: t, width: o.mix[Math.floor(random() * o.mix.length)]! });
  }
  const classes = { ...(o.classWidths && { widths: o.classWidths }) };
  const classOf = (width: number) => classWidthOf(classes, width);
  // Until batches are measured, the profile at the mix's mean class width stands in (as the runtime starts from profile.json).
  const meanClass = o.mix.reduce((s, w) => s + classOf(w), 0) / o.mix.length;
  const prior = { baseMs: o.serviceMs(meanClass, 1) - (o.serviceMs(meanClass, 2) - o.serviceMs(meanClass, 1)), perRowMs: o.serviceMs(meanClass, 2) - o.serviceMs(meanClass, 1) };
  const scheduler = new Scheduler<Request>({ maxBatch: o.maxBatch, windowMs: o.windowMs, maxQueueRows: o.maxQueueRows }, o.adaptiveWindow ? adaptiveWindowPolicy() : windowPolicy, new ServiceEstimate(prior));
  const latencies: number[] = [];
  let failed = 0;
  let batches = 0;
  let batchRows = 0;
  let busyMs = 0;
  let running: Batch<Request> | undefined;
  let runningEndMs = Infinity;
  let next = 0;
  for (let nowMs = 0; next < requests.length || scheduler.queuedRows > 0 || running; ) {
    nowMs = Math.min(requests[next]?.arrivalMs ?? Infinity, runningEndMs, scheduler.nextWakeAtMs(nowMs) ?? Infinity);
    if (running && runningEndMs <= nowMs) {
      const serviceMs = runningEndMs - running.startedAtMs;
      scheduler.finish(running, serviceMs);
      for (const job of running.jobs) {
        const latencyMs = nowMs - job.payload.arrivalMs;
        if (latencyMs > o.deadlineMs) failed++;
        else latencies.push(latencyMs);
      }
      running = undefined;
      runningEndMs = Infinity;
    }
    for (; next < requests.length && requests[next]!.arrivalMs <= nowMs; next++) {
      const r = requests[next]!;
      const admission = scheduler.admit({ id: String(next), rows: 1, batchKey: String(classOf(r.width)), deadlineAtMs: r.arrivalMs + o.deadlineMs, payload: r }, r.arrivalMs);
      if (!admission.ok) failed++;
    }
    failed += scheduler.expire(nowMs).length;
    if (!running) {
      running = scheduler.start(nowMs);
      if (running) {
        const width = Math.max(...running.jobs.map((j) => classOf(j.payload.width)));
        const serviceMs = o.serviceMs(width, running.rows);
        runningEndMs = nowMs + serviceMs;
        busyMs += serviceMs;
        batches++;
        batchRows += running.rows;
      }
    }
  }
  const pct = (p: number) => (latencies.length ? quantile(latencies, p) : Infinity);
  return { ratePerS: o.ratePerS, sent: requests.length, failed, p50Ms: pct(0.5), p99Ms: pct(0.99), meanBatch: batches ? batchRows / batches : 0, busyShare: busyMs / (o.durationS * 1000) };
}

/** Whether a run meets the SLO as the real sweeps judge it (bench/edge.ts): p99 of the answered within sloMs and at most 1 % failed. */
export function meetsSlo(result: SimResult, sloMs: number): boolean {
  return result.p99Ms <= sloMs && result.failed <= 0.01 * result.sent;
}

/**
 * The highest rate at which the SLO holds: rates rise by `factor` from `startPerS` until two in a
 * row fail; the highest passing one is returned, with every run.
 */
export function highestSimulatedRate(base: Omit<SimOptions, "ratePerS">, sloMs: number, startPerS: number, factor = 1.05): { bestPerS: number; runs: SimResult[] } {
  const runs: SimResult[] = [];
  let bestPerS = 0;
  let misses = 0;
  for (let ratePerS = startPerS; misses < 2 && ratePerS < 1e6; ratePerS *= factor) {
    const result = simulateSizeClasses({ ...base, ratePerS });
    runs.push(result);
    if (meetsSlo(result, sloMs)) {
      bestPerS = ratePerS;
      misses = 0;
    } else misses++;
  }
  return { bestPerS, runs };
}
