import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { effectiveManifest } from "../../../src/control/plan";
import { cheapestPlan, type PlanningContext, predictPlan, serviceOf } from "../../../src/control/replan";
import { parseManifest } from "../../../src/models/manifest";
import { DEFAULT_HOP_MS, DEFAULT_REQUEST_OVERHEAD_MS, profileOverhead } from "../../../src/models/profile";
import { toMarkovianArrival } from "../../../src/planner/arrival";
import { estimateLatency } from "../../../src/planner/latency-model";
import { windowPolicy } from "../../../src/scheduler/flush-policy";
import { Scheduler } from "../../../src/scheduler/scheduler";

const file = "models/silero-vad/manifest.json";
const manifest = parseManifest(JSON.parse(readFileSync(file, "utf8")), file);
/** silero-vad's edge line, rounded: s(k) = 0.15 + 0.28 k ms. */
const line = { baseMs: 0.15, perRowMs: 0.28 };

function contextWith(pathCpu?: PlanningContext["pathCpu"]): PlanningContext {
  return { manifest, service: { edge: line }, overheadMs: 0.5, hopMs: 1, ...(pathCpu && { pathCpu }), originNetworkMs: 1, hasOrigin: false, pins: {}, limits: { maxShards: 1, maxPoolSize: 1 } };
}

const planAt = (ratePerS: number, context: PlanningContext) => cheapestPlan(toMarkovianArrival({ kind: "poisson", ratePerS }), context)?.plan;

describe("profileOverhead", () => {
  it("splits each path's light-load latency into its thread CPU and the rest", () => {
    const profile = { runtimes: { edge: { fit: { baseMs: 0, perItemMs: 1 }, requestOverhead: { latencyMs: 3, cpuMs: 1, batchCpuMs: 0.5 }, directOverhead: { latencyMs: 2, cpuMs: 0.8 }, streamOverhead: { cpuMs: 0.25, batchCpuMs: 1.3 } } } };
    const { overheadMs, hopMs, pathCpu } = profileOverhead(profile);
    // A stream's chunk and step (its shard's admission) take no part in a request's latency.
    expect(pathCpu).toEqual({ edge: { perRequestMs: 1, perBatchMs: 0.5 }, direct: { perRequestMs: 0.8, perBatchMs: 0 }, stream: { perRequestMs: 0.25, perBatchMs: 1.3 } });
    // Direct: 2 - 0.8 off the thread; buffered: 3 - 1.5 (a batch of one at light load), of which the hop is what the direct path lacks.
    expect(overheadMs).toBeCloseTo(1.2, 12);
    expect(hopMs).toBeCloseTo(0.3, 12);
    // Either path's light-load latency is recovered: the off-thread parts plus its CPU.
    expect(overheadMs + 0.8).toBeCloseTo(2, 12);
    expect(overheadMs + hopMs + 1.5).toBeCloseTo(3, 12);
  });

  it("keeps the defaults, and no thread CPU, for a profile that measured no overheads", () => {
    const { overheadMs, hopMs, pathCpu } = profileOverhead({ runtimes: { edge: { fit: { baseMs: 0, perItemMs: 1 } } } });
    expect(pathCpu).toEqual({ edge: { perRequestMs: 0, perBatchMs: 0 }, direct: { perRequestMs: 0, perBatchMs: 0 }, stream: { perRequestMs: 0, perBatchMs: 0 } });
    expect(overheadMs).toBeCloseTo(DEFAULT_REQUEST_OVERHEAD_MS - DEFAULT_HOP_MS, 12);
    expect(hopMs).toBeCloseTo(DEFAULT_HOP_MS, 12);
  });
});

describe("cheapestPlan with the path's CPU on the batches' thread", () => {
  // Direct runs each request alone on the thread: busy = rate (s(1) + its CPU). Plans keep a
  // server at most 85 % busy (replan.ts PLAN_UTILISATION); at these service times the SLO's p99
  // (0.8 x 50 ms) holds well below that, so the utilisation bounds the direct path. Buffered: a
  // batch of k costs s(k) + perBatchMs + k perRequestMs, so batches spread the fixed part.
  const direct = { perRequestMs: 1.2, perBatchMs: 0 };
  const buffered = { perRequestMs: 0.6, perBatchMs: 1 };
  const directLimitPerS = (0.85 * 1000) / (line.baseMs + line.perRowMs + direct.perRequestMs);
  const bufferedBusy = (ratePerS: number, k: number) => (ratePerS * ((line.baseMs + buffered.perBatchMs) / k + line.perRowMs + buffered.perRequestMs)) / 1000;

  it("plans direct below one thread's limit and buffered batches above it", () => {
    // 68 % busy: nearer the cap a direct solve outgrows its share of the controller's work budget
    // (optimizer.ts workBudget) and the search moves on to buffered plans.
    const context = contextWith({ edge: buffered, direct });
    expect(planAt(directLimitPerS * 0.8, context)?.placement).toBe("direct");
    const above = planAt(directLimitPerS * 1.05, context);
    expect(above?.placement).toBe("edge");
    expect(bufferedBusy(directLimitPerS * 1.05, above!.maxBatch)).toBeLessThan(0.85);
  });

  it("without the CPU, takes direct far past that limit (the planner's old blind spot)", () => {
    expect(planAt(directLimitPerS * 1.05, contextWith())?.placement).toBe("direct");
    expect(planAt(directLimitPerS * 1.05, contextWith({ edge: { perRequestMs: 0, perBatchMs: 0 }, direct: { perRequestMs: 0, perBatchMs: 0 } }))?.placement).toBe("direct");
  });

  it("plans nothing where neither path's thread can keep up", () => {
    // Buffered at its largest batch over the cap (and direct far over it).
    const bufferedLimitPerS = 0.85 / bufferedBusy(1, manifest.batching.maxBatch);
    expect(planAt(bufferedLimitPerS * 1.05, contextWith({ edge: buffered, direct }))).toBeUndefined();
  });
});

describe("predictPlan on the batches' thread", () => {
  it("models a buffered plan whose path CPU was measured as a shared thread: a request that arrives during a batch waits its window after it, and requests are answered in turn", () => {
    const context = contextWith({ edge: { perRequestMs: 0.6, perBatchMs: 1 }, direct: { perRequestMs: 1.2, perBatchMs: 0 } });
    const arrival = toMarkovianArrival({ kind: "poisson", ratePerS: 400 });
    const plan = { placement: "edge" as const, maxBatch: 16, windowMs: 10, shards: 1, poolSize: 0, streamShards: 1 };
    const predicted = predictPlan(plan, arrival, context)?.predicted;
    const queue = (sharedThread: boolean, answerMsPerRow = 0) =>
      estimateLatency({ arrival, service: serviceOf(context, "edge"), servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy", sharedThread, answerMsPerRow }, maxBatch: 16, windowMs: 10, shards: 1, extraMs: context.overheadMs + context.hopMs });
    const [held, plain, answered] = [queue(true), queue(false), queue(true, 0.6)];
    expect(held.latencyMs.p95).toBeGreaterThan(plain.latencyMs.p95 * 1.2);
    expect(answered.latencyMs.p95).toBeLessThan(held.latencyMs.p95);
    // The request's own 0.6 ms of CPU answers it after its batch is computed.
    expect(predicted?.p95Ms).toBeCloseTo(answered.latencyMs.p95, 6);
    // Without measured path CPU nothing says the front door shares the thread.
    const unmeasured = predictPlan(plan, arrival, contextWith())?.predicted;
    const plainUnmeasured = estimateLatency({ arrival, service: serviceOf(contextWith(), "edge"), servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy" }, maxBatch: 16, windowMs: 10, shards: 1, extraMs: 1.5 });
    expect(unmeasured?.p95Ms).toBeCloseTo(plainUnmeasured.latencyMs.p95, 6);
  });
});

describe("effectiveManifest", () => {
  it("serves a plan's maxBatch as planned, so maxBatch 1 runs each request alone, while a request keeps its protocol limit", () => {
    expect(manifest.batching.maxRowsPerRequest).toBeGreaterThan(1);
    const served = effectiveManifest(manifest, { placement: "direct", maxBatch: 1, windowMs: 0, shards: 1, poolSize: 0, streamShards: 0 });
    expect(served.batching).toMatchObject({ maxBatch: 1, windowMs: 0, maxRowsPerRequest: manifest.batching.maxRowsPerRequest });
    // The scheduler under that plan: queued one-row requests leave one by one; a larger request leaves whole, alone.
    const scheduler = new Scheduler<string>({ maxBatch: served.batching.maxBatch, windowMs: 0, maxQueueRows: served.batching.maxQueueRows, servers: 1 }, windowPolicy);
    for (const [id, rows] of [["a", 1], ["b", 1], ["c", 4], ["d", 1]] as const) expect(scheduler.admit({ id, rows, batchKey: "k", deadlineAtMs: 10_000, payload: id }, 0).ok).toBe(true);
    const sizes: number[] = [];
    for (let batch = scheduler.start(0); batch; batch = scheduler.start(0)) {
      sizes.push(batch.rows);
      scheduler.finish(batch, 1);
    }
    expect(sizes).toEqual([1, 1, 4, 1]);
  });
});
