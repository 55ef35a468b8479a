/**
 * Open-loop load: requests are sent at Poisson arrival times (or at given arrival times, e.g. a
 * MAP's) whether or not earlier ones have finished, as real clients do, so queueing shows up in the
 * latencies. Bounded in count and time; loopback targets only. Latency is measured from each
 * request's scheduled send time (or its actual one, when it went out up to 1 ms early).
 */

import { header, post, serverTimingMs } from "../../src/cli/loopback-http";

/** One load step's outcome. */
export interface LoadResult {
  ratePerS: number;
  sent: number;
  ok: number;
  /** Responses by non-200 status. */
  errors: Record<string, number>;
  /** Latencies of successful requests, ms. */
  latenciesMs: number[];
  /** Each successful request's scheduled send time, ms from the step's start (aligned with latenciesMs). */
  sentAtMs: number[];
  /** Batch sizes reported by successful responses (X-Batch-Size). */
  batchSizes: number[];
  /** Server-Timing entries of successful responses, per name. */
  serverTimingMs: Record<string, number[]>;
  /** Latencies of refused (non-200) responses, ms, and their server-side total (Server-Timing total), when given. */
  errorLatenciesMs: number[];
  errorServerMs: number[];
  elapsedS: number;
}

/** A seeded uniform generator in [0, 1) (mulberry32), so runs are repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of one open-loop step. */
export interface LoadOptions {
  url: string;
  body: string | Uint8Array<ArrayBuffer>;
  headers?: Record<string, string>;
  ratePerS: number;
  /** Send times (ms from the start, increasing) to use instead of Poisson arrivals at ratePerS. */
  arrivalsMs?: ArrayLike<number>;
  /** Request i's body and headers instead of `body` and `headers` (e.g. a mix of request sizes). */
  bodyAt?: (i: number) => { body: string | Uint8Array<ArrayBuffer>; headers: Record<string, string> };
  /** Most requests sent. */
  count: number;
  /** Hard stop for sending and waiting, ms. */
  maxDurationMs: number;
  /**
   * Poisson arrivals go on this long after the last measured one, not measured, so that the last
   * measured requests see the stream they would see mid-run (a partial batch at the end finds
   * company, as mid-stream, instead of waiting out its window); default 0.
   */
  tailMs?: number;
  seed?: number;
}

/** Sends `count` POSTs at Poisson arrivals of `ratePerS`, and collects latencies and headers. */
export async function openLoop({ url, body, headers = { "content-type": "application/json" }, bodyAt, ratePerS, arrivalsMs, count, maxDurationMs, tailMs = 0, seed = 1 }: LoadOptions): Promise<LoadResult> {
  if (!/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(url)) throw new Error("load targets must be on loopback");
  const random = seededRandom(seed);
  const emptyResult = (): LoadResult => ({ ratePerS, sent: 0, ok: 0, errors: {}, latenciesMs: [], sentAtMs: [], batchSizes: [], serverTimingMs: {}, errorLatenciesMs: [], errorServerMs: [], elapsedS: 0 });
  const result = emptyResult();
  // The tail's answers go to a result nobody reads.
  const tail = emptyResult();
  const startMs = performance.now();
  const inFlight: Promise<void>[] = [];
  let nextAtMs = 0;
  let lastMeasuredAtMs = 0;
  for (let i = 0; ; i++) {
    const measured = i < count && (!arrivalsMs || i < arrivalsMs.length);
    if (!measured && (arrivalsMs || tailMs <= 0)) break;
    nextAtMs = measured && arrivalsMs ? arrivalsMs[i]! : nextAtMs + (-Math.log(1 - random()) / ratePerS) * 1000;
    if (nextAtMs > maxDurationMs || (!measured && nextAtMs > lastMeasuredAtMs + tailMs)) break;
    if (measured) lastMeasuredAtMs = nextAtMs;
    const waitMs = startMs + nextAtMs - performance.now();
    if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
    if (measured) result.sent++;
    const request = bodyAt?.(i) ?? { body, headers };
    inFlight.push(send(url, request.body, request.headers, startMs, nextAtMs, measured ? result : tail, Math.max(1, startMs + maxDurationMs - performance.now())));
  }
  await Promise.all(inFlight);
  result.elapsedS = (performance.now() - startMs) / 1000;
  return result;
}

/**
 * One request scheduled `sentAtMs` after `startMs`; its latency counts from then, or from now when it
 * goes out early (the loop sends at once when less than a timer's 1 ms is left).
 */
async function send(url: string, body: string | Uint8Array, headers: Record<string, string>, startMs: number, sentAtMs: number, result: LoadResult, timeoutMs: number): Promise<void> {
  const scheduledMs = Math.max(startMs + sentAtMs, performance.now());
  try {
    const answer = await post(url, body, headers, timeoutMs);
    const timing = header(answer, "server-timing") ?? "";
    if (answer.status !== 200) {
      result.errors[answer.status] = (result.errors[answer.status] ?? 0) + 1;
      result.errorLatenciesMs.push(performance.now() - scheduledMs);
      const totalMs = serverTimingMs(answer, "total");
      if (!Number.isNaN(totalMs)) result.errorServerMs.push(totalMs);
      return;
    }
    result.ok++;
    result.latenciesMs.push(performance.now() - scheduledMs);
    result.sentAtMs.push(sentAtMs);
    result.batchSizes.push(Number(header(answer, "x-batch-size")));
    for (const [, name, dur] of timing.matchAll(/(\w+);dur=([\d.]+)/g)) {
      (result.serverTimingMs[name!] ??= []).push(Number(dur));
    }
  } catch (error) {
    // By the socket error's code (ECONNRESET, ...), so a report tells a reset from a timeout.
    const key = `network ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    result.errors[key] = (result.errors[key] ?? 0) + 1;
  }
}
