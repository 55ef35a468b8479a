/**
 * The step-level planner model (src/planner/stream-steps.ts) against a discrete-event simulation
 * of the runtime's own code: the shared Scheduler and BatchLoop with the step policy on a fake
 * clock, each stream submitting one chunk at a time as the stream buffer does (later chunks of a
 * stream wait for its previous answer), and a server that takes exactly s(k) per batch. Both are
 * deterministic, so they must agree closely; a few cases also have closed forms.
 */
import { describe, expect, it } from "vitest";
import { maxStreamsForSlo, minShardsForSlo, planStreamWindows, predictStreamSteps, windowForStreams, type StreamLoad, type StreamStepsInput } from "../../../src/planner/stream-steps";
import { BatchLoop } from "../../../src/scheduler/batch-loop";
import { Scheduler } from "../../../src/scheduler/scheduler";
import { ServiceEstimate, type ServiceLine } from "../../../src/scheduler/service-estimate";
import { stepPolicy } from "../../../src/scheduler/step-policy";
import { FakeClock } from "../scheduler/fake-clock";
import { relativeError } from "./fixtures";

/** silero-vad's edge profile (models/silero-vad/profile.json, rounded). */
const EDGE_LINE: ServiceLine = { baseMs: 0.152, perRowMs: 0.277 };
const s = (rows: number) => EDGE_LINE.baseMs + EDGE_LINE.perRowMs * rows;

interface Simulated {
  meanLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  meanBatchRows: number;
  chunksPerS: number;
}

/** Nearest-rank quantile. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** Runs `streams` streams for `rounds` chunks each through the real scheduler on a fake clock; statistics over the batches started in the second half (before the last one). */
async function simulate(streams: number, load: StreamLoad, maxBatch: number, windowMs: number, rounds: number, line = EDGE_LINE): Promise<Simulated> {
  const s = (rows: number) => line.baseMs + line.perRowMs * rows;
  const clock = new FakeClock();
  const batchStartMs = new Map<number, { startMs: number; endMs: number; rows: number }>();
  const loop = new BatchLoop<number, number>(new Scheduler({ maxBatch, windowMs, maxQueueRows: 1e6 }, stepPolicy(() => streams), new ServiceEstimate(line)), {
    label: "silero-vad",
    now: clock.now,
    ...clock.hostTimers,
    execute: (inputs, batch) => {
      batchStartMs.set(batch.id, { startMs: clock.nowMs, endMs: clock.nowMs + s(batch.rows), rows: batch.rows });
      return clock.after(s(batch.rows), { results: inputs });
    },
  });
  const answered: Array<{ arrivedAtMs: number; batchId: number }> = [];
  /** Per stream: arrival times of chunks not yet submitted, and whether one is in the scheduler. */
  const waiting = Array.from({ length: streams }, () => [] as number[]);
  const isBusy = new Array<boolean>(streams).fill(false);
  const sent = new Array<number>(streams).fill(0);
  const submitNext = (stream: number) => {
    if (isBusy[stream] || waiting[stream]!.length === 0) return;
    isBusy[stream] = true;
    const arrivedAtMs = waiting[stream]!.shift()!;
    void loop.submit({ id: `${stream}:${arrivedAtMs}`, rows: 1, batchKey: "sr=16000", deadlineAtMs: 1e12, input: stream }).then((outcome) => {
      if (!outcome.ok) throw outcome.error;
      answered.push({ arrivedAtMs, batchId: outcome.batchId });
      isBusy[stream] = false;
      if (load.kind === "closed" && ++sent[stream]! < rounds) clock.at(clock.nowMs + load.thinkMs, () => arrive(stream));
      submitNext(stream);
    });
  };
  const arrive = (stream: number) => {
    waiting[stream]!.push(clock.nowMs);
    submitNext(stream);
  };
  for (let i = 0; i < streams; i++) {
    if (load.kind === "closed") clock.at(0, () => arrive(i));
    else for (let m = 0; m < rounds; m++) clock.at((i * load.intervalMs) / streams + m * load.intervalMs, () => arrive(i));
  }
  await clock.advanceTo(1e9);
  expect(answered).toHaveLength(streams * rounds);
  const lastStartMs = Math.max(...[...batchStartMs.values()].map((b) => b.startMs));
  const isMeasured = (b: { startMs: number }) => b.startMs >= lastStartMs / 2 && b.startMs < lastStartMs;
  const measured = [...batchStartMs.values()].filter(isMeasured);
  const latencies = answered.filter((a) => isMeasured(batchStartMs.get(a.batchId)!)).map((a) => batchStartMs.get(a.batchId)!.endMs - a.arrivedAtMs);
  const spanMs = lastStartMs - Math.min(...measured.map((b) => b.startMs));
  return {
    meanLatencyMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p50LatencyMs: quantile(latencies, 0.5),
    p99LatencyMs: quantile(latencies, 0.99),
    meanBatchRows: latencies.length / measured.length,
    chunksPerS: load.kind === "paced" ? (1000 * streams) / load.intervalMs : (1000 * latencies.length) / spanMs,
  };
}

const input = (streams: number, load: StreamLoad, rounds: number, maxBatch = 32, windowMs = 2): StreamStepsInput => ({ streams, load, service: { kind: "linear", baseMs: EDGE_LINE.baseMs, perItemMs: EDGE_LINE.perRowMs }, maxBatch, windowMs, rounds });

describe("predictStreamSteps", () => {
  it.each([
    { name: "8 closed-loop streams (one complete step per batch)", streams: 8, load: { kind: "closed", thinkMs: 3 } as StreamLoad, rounds: 60 },
    { name: "40 closed-loop streams, more than maxBatch (partial batches by the window)", streams: 40, load: { kind: "closed", thinkMs: 5 } as StreamLoad, rounds: 60 },
    { name: "100 closed-loop streams, 1 ms think time", streams: 100, load: { kind: "closed", thinkMs: 1 } as StreamLoad, rounds: 40 },
    { name: "1,000 closed-loop streams", streams: 1000, load: { kind: "closed", thinkMs: 1 } as StreamLoad, rounds: 12 },
    { name: "50 paced streams at 32 ms (utilisation about 0.45)", streams: 50, load: { kind: "paced", intervalMs: 32 } as StreamLoad, rounds: 40 },
    { name: "100 paced streams at 32 ms (utilisation about 0.9)", streams: 100, load: { kind: "paced", intervalMs: 32 } as StreamLoad, rounds: 40 },
  ])("agrees with the scheduler's simulation for $name", async ({ streams, load, rounds }) => {
    const predicted = predictStreamSteps(input(streams, load, rounds));
    const simulated = await simulate(streams, load, 32, 2, rounds);
    // Both are deterministic; what is left is where each cuts its measured half (about one batch).
    expect(predicted.isStable).toBe(true);
    expect(relativeError(predicted.meanLatencyMs, simulated.meanLatencyMs)).toBeLessThan(0.01);
    expect(relativeError(predicted.p50LatencyMs, simulated.p50LatencyMs)).toBeLessThan(0.01);
    expect(relativeError(predicted.percentileLatencyMs, simulated.p99LatencyMs)).toBeLessThan(0.01);
    expect(relativeError(predicted.meanBatchRows, simulated.meanBatchRows)).toBeLessThan(0.01);
    expect(relativeError(predicted.chunksPerS, simulated.chunksPerS)).toBeLessThan(0.01);
  });

  it("matches the closed forms of a complete step and of a lone paced chunk", () => {
    // N <= maxBatch closed-loop streams that return together: every batch is the whole step.
    const closed = predictStreamSteps(input(8, { kind: "closed", thinkMs: 3 }, 40));
    expect(closed.meanBatchRows).toBe(8);
    expect(closed.meanLatencyMs).toBeCloseTo(s(8), 9);
    expect(closed.percentileLatencyMs).toBeCloseTo(s(8), 9);
    expect(closed.chunksPerS).toBeCloseTo((1000 * 8) / (s(8) + 3), 6);
    expect(closed.utilisation).toBeCloseTo(s(8) / (s(8) + 3), 6);
    // 4 paced streams 8 ms apart and a 2 ms window: each chunk waits out the window alone.
    const paced = predictStreamSteps(input(4, { kind: "paced", intervalMs: 32 }, 40));
    expect(paced.meanBatchRows).toBe(1);
    expect(paced.percentileLatencyMs).toBeCloseTo(2 + s(1), 9);
    expect(paced.chunksPerS).toBeCloseTo(125, 9);
  });

  it("obeys Little's law in the closed loop and saturates at maxBatch / s(maxBatch)", () => {
    for (const streams of [16, 64, 300, 1000]) {
      const p = predictStreamSteps(input(streams, { kind: "closed", thinkMs: 1 }, 40));
      expect(relativeError(p.chunksPerS / 1000, streams / (p.meanLatencyMs + 1))).toBeLessThan(0.01);
      expect(p.chunksPerS).toBeLessThanOrEqual((1000 * 32) / s(32) + 1e-6);
    }
    expect(predictStreamSteps(input(1000, { kind: "closed", thinkMs: 1 }, 40)).meanBatchRows).toBeCloseTo(32, 6);
  });

  it("reports a paced load beyond full batches as unstable, and finds the shards that meet an SLO", () => {
    // 1,000 real-time streams: 31,250 chunks/s against 32 / s(32) = 3,550/s per shard.
    const overloaded = predictStreamSteps(input(1000, { kind: "paced", intervalMs: 32 }, 20));
    expect(overloaded.isStable).toBe(false);
    expect(overloaded.percentileLatencyMs).toBe(Infinity);
    const base = { streams: 1000, load: { kind: "paced", intervalMs: 32 } as StreamLoad, service: input(1, { kind: "closed", thinkMs: 1 }, 1).service, maxBatch: 32, windowMs: 2, rounds: 20 };
    const shards = minShardsForSlo(base, { percentile: 0.99, ms: 50 }, 64)!;
    expect(shards).toBeGreaterThanOrEqual(Math.ceil((31_250 * s(32)) / 32 / 1000));
    expect(predictStreamSteps({ ...base, shards }).percentileLatencyMs).toBeLessThanOrEqual(50);
    expect(predictStreamSteps({ ...base, shards: shards - 1 }).isStable && predictStreamSteps({ ...base, shards: shards - 1 }).percentileLatencyMs <= 50).toBe(false);
  });

  it.each([3, 3.5, 50])("admits the most paced streams whose p99 is within %d ms and use within 0.85: a scan of the prediction and the scheduler's simulation agree", async (sloMs) => {
    // The shard's per-chunk cost: the kernel plus what a WebSocket chunk costs its thread (0.33 ms).
    const line = { baseMs: EDGE_LINE.baseMs, perRowMs: EDGE_LINE.perRowMs + 0.33 };
    const base = { load: { kind: "paced", intervalMs: 32 } as const, service: { kind: "linear" as const, baseMs: line.baseMs, perItemMs: line.perRowMs }, maxBatch: 32, windowMs: 2, rounds: 40 };
    const admitted = maxStreamsForSlo(base, { percentile: 0.99, ms: sloMs });
    const at = (n: number) => predictStreamSteps({ ...base, streams: n, maxBatch: Math.min(32, n), percentile: 0.99 });
    const fits = (n: number) => at(n).isStable && at(n).utilisation <= 0.85 && at(n).percentileLatencyMs <= sloMs;
    const scanned = Array.from({ length: 60 }, (_, i) => i + 1).filter(fits);
    expect(admitted).toBeGreaterThan(1);
    expect(admitted).toBe(Math.max(...scanned));
    // At a loose SLO the server's use bounds it.
    if (sloMs === 50) expect(at(admitted + 1).utilisation).toBeGreaterThan(0.85);
    // The scheduler itself, on a fake clock, with maxBatch capped at the streams as the shard caps it.
    const simulated = await simulate(admitted, base.load, Math.min(32, admitted), 2, 40, line);
    expect(simulated.p99LatencyMs).toBeLessThanOrEqual(sloMs);
    expect(relativeError(at(admitted).percentileLatencyMs, simulated.p99LatencyMs)).toBeLessThan(0.01);
  });

  it("plans wider step windows where a batch costs much beyond its rows: more streams within the SLO, the narrowest window for the streams open", async () => {
    // A batch costs 3 ms beyond its rows (a local shard's runtime): paced streams alone in 2 ms windows pay it per chunk.
    const line = { baseMs: 3.15, perRowMs: 0.45 };
    const input = { load: { kind: "paced", intervalMs: 32 } as const, service: { kind: "linear" as const, baseMs: line.baseMs, perItemMs: line.perRowMs }, maxBatch: 32 };
    const slo = { percentile: 0.99, ms: 50 };
    const windowsMs = [2, 4, 8, 12, 16, 20, 24, 28, 32];
    const plan = planStreamWindows(input, slo, windowsMs);
    expect(plan.windows.map((w) => w.windowMs)).toEqual(windowsMs);
    plan.windows.forEach((w) => expect(w.maxStreams).toBe(maxStreamsForSlo({ ...input, windowMs: w.windowMs }, slo)));
    const narrow = plan.windows[0]!.maxStreams;
    expect(plan.maxStreams).toBeGreaterThanOrEqual(3 * narrow);
    // The narrowest window that carries n streams: the manifest's up to what it carries, wider beyond.
    expect(windowForStreams(plan, narrow)).toBe(2);
    const wider = windowForStreams(plan, narrow + 1);
    expect(wider).toBeGreaterThan(2);
    expect(plan.windows.filter((w) => w.windowMs < wider).every((w) => w.maxStreams < narrow + 1)).toBe(true);
    // The most streams, at the window that carries them, on the scheduler itself.
    const best = windowForStreams(plan, plan.maxStreams);
    const simulated = await simulate(plan.maxStreams, input.load, Math.min(32, plan.maxStreams), best, 40, line);
    expect(simulated.p99LatencyMs).toBeLessThanOrEqual(slo.ms);
  });
});
