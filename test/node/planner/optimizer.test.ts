import { describe, expect, it } from "vitest";
import { estimateLatency } from "../../../src/planner/latency-model";
import { type OptimizeInput, optimize } from "../../../src/planner/optimizer";
import { EXAMPLE_MAP, poisson } from "./fixtures";

const edgeService = { kind: "linear" as const, baseMs: 10, perItemMs: 4 };
const originService = { kind: "linear" as const, baseMs: 5, perItemMs: 0.5 };
const smallSpace = { maxBatch: [1, 2, 4, 8, 16], windowMs: [2, 10, 50, 200], shards: [1, 2, 3], poolSize: [1, 2, 3, 4] };

describe("optimize", () => {
  it("returns a plan whose predicted percentile meets the SLO, checked independently", () => {
    const { plan } = optimize({ arrival: EXAMPLE_MAP, slo: { percentile: 0.95, ms: 150 }, placements: { edge: { service: edgeService } }, space: smallSpace });
    expect(plan).not.toBeNull();
    // A shard's Durable Object is one server that forms batches lazily.
    const check = estimateLatency({ arrival: EXAMPLE_MAP, service: edgeService, servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy" }, maxBatch: plan!.maxBatch, windowMs: plan!.windowMs, shards: plan!.shards });
    expect(check.distribution.percentile(0.95)).toBeLessThanOrEqual(150);
    expect(plan!.sloLatencyMs).toBeCloseTo(check.distribution.percentile(0.95), 6);
    expect(plan!.meanBatch).toBeCloseTo(check.meanBatch, 6);
  });

  it("adds overheadMs to every request and can model a sealed origin pool", () => {
    const space = { ...smallSpace, shards: [1] };
    const base: OptimizeInput = { arrival: poisson(60), slo: { percentile: 0.95, ms: 200 }, placements: { origin: { service: originService, extraMs: 20 } }, space, alternatives: 0 };
    const plain = optimize(base).plan!;
    const check = (formation: "sealed" | "lazy", extraMs: number) =>
      estimateLatency({ arrival: poisson(60), service: originService, servers: { kind: "fixed", count: plain.poolSize, scope: "shared", formation }, maxBatch: plain.maxBatch, windowMs: plain.windowMs, shards: 1, extraMs }).latencyMs.p95;
    expect(plain.latencyMs.p95).toBeCloseTo(check("lazy", 20), 6);
    const withOverhead = optimize({ ...base, overheadMs: 15 }).plan!;
    expect(withOverhead.sloLatencyMs).toBeLessThanOrEqual(200);
    if (withOverhead.maxBatch === plain.maxBatch && withOverhead.windowMs === plain.windowMs && withOverhead.poolSize === plain.poolSize) expect(withOverhead.latencyMs.p95 - plain.latencyMs.p95).toBeCloseTo(15, 6);
    const sealed = optimize({ ...base, originFormation: "sealed" }).plan!;
    expect(sealed.latencyMs.p95).toBeCloseTo(
      estimateLatency({ arrival: poisson(60), service: originService, servers: { kind: "fixed", count: sealed.poolSize, scope: "shared", formation: "sealed" }, maxBatch: sealed.maxBatch, windowMs: sealed.windowMs, shards: 1, extraMs: 20 }).latencyMs.p95,
      6,
    );
  });

  it("finds the cheapest feasible configuration of a small space (brute force agrees)", () => {
    const input: OptimizeInput = { arrival: poisson(120), slo: { percentile: 0.99, ms: 120 }, placements: { edge: { service: edgeService }, origin: { service: originService, extraMs: 30 } }, space: smallSpace, alternatives: 50 };
    const { plan, alternatives } = optimize(input);
    expect(plan).not.toBeNull();
    // Every other (placement, shards, pool) the search found is at least as expensive.
    for (const a of alternatives) expect(a.cost.totalUsdPerHour).toBeGreaterThanOrEqual(plan!.cost.totalUsdPerHour);
    // Brute force over the edge configurations.
    let cheapestEdge = Infinity;
    for (const shards of smallSpace.shards)
      for (const windowMs of smallSpace.windowMs)
        for (const maxBatch of smallSpace.maxBatch) {
          const single = optimize({ ...input, placements: { edge: { service: edgeService } }, space: { maxBatch: [maxBatch], windowMs: [windowMs], shards: [shards], poolSize: [1] }, alternatives: 0 });
          if (single.plan) cheapestEdge = Math.min(cheapestEdge, single.plan.cost.totalUsdPerHour);
        }
    expect(plan!.cost.totalUsdPerHour).toBeLessThanOrEqual(cheapestEdge + 1e-12);
  });

  it("finds the cheapest feasible configuration over both placements and every pool size (brute force agrees)", () => {
    const input: OptimizeInput = { arrival: poisson(150), slo: { percentile: 0.95, ms: 150 }, placements: { edge: { service: { kind: "linear", baseMs: 30, perItemMs: 12 } }, origin: { service: originService, extraMs: 25 } }, space: smallSpace };
    const { plan } = optimize(input);
    let cheapest = Infinity;
    for (const shards of smallSpace.shards)
      for (const windowMs of smallSpace.windowMs)
        for (const maxBatch of smallSpace.maxBatch)
          for (const [placements, pools] of [[{ edge: input.placements.edge }, [1]], ...smallSpace.poolSize.map((pool) => [{ origin: input.placements.origin }, [pool]] as const)] as const) {
            const single = optimize({ ...input, placements, space: { maxBatch: [maxBatch], windowMs: [windowMs], shards: [shards], poolSize: [...pools] }, alternatives: 0 });
            if (single.plan) cheapest = Math.min(cheapest, single.plan.cost.totalUsdPerHour);
          }
    expect(plan!.cost.totalUsdPerHour).toBe(cheapest);
  });

  it("costs only the configurations of groups that could beat the plans it returns", () => {
    const result = optimize({ arrival: poisson(40), slo: { percentile: 0.95, ms: 900 }, placements: { edge: { service: edgeService }, origin: { service: originService, extraMs: 20 } } });
    expect(result.plan?.placement).toBe("edge");
    // 64 x 50 x 16 edge configurations and as many origin ones (at their smallest stable pool); an
    // origin replica alone costs more than these plans, so no origin group is costed.
    expect(result.stats.candidates).toBeLessThan((64 * 50 * 16) / 4); // all were costed before: 102,400
  });

  it("goes to the origin when the edge cannot keep up, sizing the pool for the load", () => {
    const slowEdge = { kind: "linear" as const, baseMs: 50, perItemMs: 40 }; // 40 ms per item: at most 25 req/s per DO
    const result = optimize({ arrival: poisson(200), slo: { percentile: 0.95, ms: 400 }, placements: { edge: { service: slowEdge }, origin: { service: { kind: "linear", baseMs: 20, perItemMs: 2 }, extraMs: 20 } }, space: smallSpace });
    expect(result.plan?.placement).toBe("origin");
    expect(result.plan!.utilisation).toBeLessThan(1);
    expect(result.plan!.cost.originInstances).toBeGreaterThan(0);
  });

  it("runs a model direct when one isolate keeps the SLO: no hop, no Durable Object, cheaper than buffering", () => {
    const flat = { kind: "linear" as const, baseMs: 0.5, perItemMs: 3.5 }; // batching saves almost nothing per row
    const space = { ...smallSpace, windowMs: [0, ...smallSpace.windowMs] };
    const input: OptimizeInput = { arrival: poisson(100), slo: { percentile: 0.99, ms: 250 }, placements: { edge: { service: flat, extraMs: 1.5 }, direct: { service: flat } }, space, overheadMs: 0.5 };
    const { plan, alternatives, stats } = optimize({ ...input, alternatives: 1 });
    expect(plan).toMatchObject({ placement: "direct", shards: 1 });
    expect(plan!.cost.durableObjectRequests + plan!.cost.durableObjectDuration).toBe(0);
    // Checked independently: the isolate's one session batching lazily (as a buffer shard does), plus the direct path's overhead.
    const check = estimateLatency({ arrival: poisson(100), service: flat, servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy" }, maxBatch: plan!.maxBatch, windowMs: plan!.windowMs, shards: 1, extraMs: 0.5 });
    expect(plan!.sloLatencyMs).toBeCloseTo(check.distribution.percentile(0.99), 6);
    expect(alternatives[0]!.placement).toBe("edge");
    expect(alternatives[0]!.cost.totalUsdPerHour).toBeGreaterThan(plan!.cost.totalUsdPerHour);
    // Direct configurations have one shard (one isolate's batches); edge ones every shard count.
    expect(stats.configurations).toBe(5 * 5 + 5 * 5 * 3);
  });

  it("with a cost slack, takes the shortest window within it that lowers the latency (brute force agrees)", () => {
    const flat = { kind: "linear" as const, baseMs: 0.5, perItemMs: 3.5 };
    const space = { ...smallSpace, windowMs: [0, ...smallSpace.windowMs], shards: [1, 2] };
    const input: OptimizeInput = { arrival: poisson(40), slo: { percentile: 0.99, ms: 250 }, placements: { edge: { service: flat, extraMs: 1.5 }, direct: { service: flat } }, space, alternatives: 2 };
    const cheapest = optimize(input).plan!;
    expect(cheapest.windowMs).toBeGreaterThan(0); // a window saves a little here, at a large cost in latency
    const slack = 0.05;
    const { plan, alternatives } = optimize({ ...input, costSlack: slack });
    // Brute force: every configuration alone; of those within the slack that meet the SLO with a
    // lower latency than the cheapest, the shortest window, then the smallest maxBatch.
    const within: { windowMs: number; maxBatch: number; sloLatencyMs: number; placement: string; shards: number }[] = [];
    for (const placement of ["edge", "direct"] as const)
      for (const shards of placement === "direct" ? [1] : space.shards)
        for (const windowMs of space.windowMs)
          for (const maxBatch of space.maxBatch) {
            const single = optimize({ ...input, placements: { [placement]: input.placements[placement] }, space: { maxBatch: [maxBatch], windowMs: [windowMs], shards: [shards], poolSize: [1] }, alternatives: 0 }).plan;
            if (single && single.cost.totalUsdPerHour <= cheapest.cost.totalUsdPerHour * (1 + slack) && single.sloLatencyMs < cheapest.sloLatencyMs) within.push({ ...single, placement });
          }
    within.sort((a, b) => a.windowMs - b.windowMs || a.maxBatch - b.maxBatch);
    expect(within.length).toBeGreaterThan(0);
    expect(plan).toMatchObject({ windowMs: within[0]!.windowMs, maxBatch: within[0]!.maxBatch, placement: within[0]!.placement });
    expect(plan!.sloLatencyMs).toBeLessThan(cheapest.sloLatencyMs / 2);
    expect(plan!.cost.totalUsdPerHour).toBeLessThanOrEqual(cheapest.cost.totalUsdPerHour * (1 + slack));
    // The alternatives keep another (placement, shards, pool size) than the plan.
    for (const a of alternatives) expect(`${a.placement}/${a.shards}/${a.poolSize}`).not.toBe(`${plan!.placement}/${plan!.shards}/${plan!.poolSize}`);
    // No slack within reach: the cheapest plan stays.
    expect(optimize({ ...input, costSlack: 1e-9 }).plan).toMatchObject({ windowMs: cheapest.windowMs, maxBatch: cheapest.maxBatch });
  });

  it("buffers over shards when one isolate cannot keep up, and searches direct at one shard only", () => {
    const flat = { kind: "linear" as const, baseMs: 0.5, perItemMs: 3.5 }; // one isolate: under 290 requests/s at any batch size
    const space = { ...smallSpace, windowMs: [0, ...smallSpace.windowMs] };
    const result = optimize({ arrival: poisson(400), slo: { percentile: 0.99, ms: 250 }, placements: { edge: { service: flat, extraMs: 1.5 }, direct: { service: flat } }, space, alternatives: 3 });
    expect(result.plan).toMatchObject({ placement: "edge" });
    expect(result.plan!.shards).toBeGreaterThan(1);
    expect([result.plan!, ...result.alternatives].every((p) => p.placement === "edge")).toBe(true);
    const directOnly = optimize({ arrival: poisson(10), slo: { percentile: 0.99, ms: 250 }, placements: { direct: { service: flat } }, space: smallSpace });
    expect(directOnly.stats.configurations).toBe(smallSpace.maxBatch.length * smallSpace.windowMs.length);
    expect(directOnly.plan).toMatchObject({ placement: "direct", shards: 1 });
  });

  it("returns no plan, with a reason, when the SLO is below any service time", () => {
    const result = optimize({ arrival: poisson(10), slo: { percentile: 0.5, ms: 5 }, placements: { edge: { service: edgeService } }, space: smallSpace });
    expect(result.plan).toBeNull();
    expect(result.reason).toMatch(/no configuration .* p50 <= 5 ms/);
  });

  it("spends at most its work budget on fixed-server solutions: the same plan when it suffices, none with the reason when it does not", () => {
    const input: OptimizeInput = { arrival: EXAMPLE_MAP, slo: { percentile: 0.95, ms: 150 }, placements: { edge: { service: edgeService } }, space: smallSpace, alternatives: 0 };
    const unbounded = optimize(input);
    expect(unbounded.plan).not.toBeNull();
    expect(unbounded.stats.workUnits).toBeGreaterThan(0);
    expect(unbounded.stats.cutShort).toBe(0);
    // Each solution may spend half of what is left: with three times what the unbounded search
    // spent, at least that search's whole spend is left to each, so nothing changes.
    const ample = optimize({ ...input, workBudget: 3 * unbounded.stats.workUnits });
    expect(ample.plan).toEqual(unbounded.plan);
    expect(ample.stats.workUnits).toBe(unbounded.stats.workUnits);
    expect(ample.stats.cutShort).toBe(0);
    // A quarter of it cuts solutions short: they count as not meeting the SLO, and the spend stays within the budget.
    const quarter = unbounded.stats.workUnits / 4;
    const starved = optimize({ ...input, workBudget: quarter });
    expect(starved.plan).toBeNull();
    expect(starved.stats.cutShort).toBeGreaterThan(0);
    expect(starved.reason).toBe(`no configuration solved within the work budget (${quarter} grid operations, ${starved.stats.cutShort} solution(s) cut short) meets p95 <= 150 ms`);
    expect(starved.stats.workUnits).toBeLessThan(unbounded.stats.workUnits);
  });

  it("leaves the rest of the budget to the other configurations when one near saturation is too slow to solve", () => {
    // One shard at 82 % (s(1) = 1.63 ms at 500/s) takes far more grid operations to solve than two
    // shards at 41 %; a budget below the one-shard solve used to stop the whole search with nothing.
    const arrival = poisson(500);
    const edge = { service: { kind: "linear" as const, baseMs: 0.15, perItemMs: 1.48 }, extraMs: 1 };
    const space = { maxBatch: [1], windowMs: [0], shards: [1, 2], poolSize: [1] };
    const oneShard = optimize({ arrival, slo: { percentile: 0.99, ms: 40 }, placements: { edge }, space: { ...space, shards: [1] }, alternatives: 0 });
    expect(oneShard.plan?.shards).toBe(1);
    const workBudget = oneShard.stats.workUnits * 0.75;
    const both = optimize({ arrival, slo: { percentile: 0.99, ms: 40 }, placements: { edge }, space, alternatives: 0, workBudget });
    expect(both.stats.cutShort).toBeGreaterThan(0);
    expect(both.plan?.shards).toBe(2);
    expect(both.stats.workUnits).toBeLessThanOrEqual(workBudget * 1.01);
  });

  it("searches the full default space (64 x 50 x 16 x 64) within a few seconds even on a shared machine", () => {
    const started = performance.now();
    const result = optimize({ arrival: EXAMPLE_MAP, slo: { percentile: 0.95, ms: 300 }, placements: { edge: { service: edgeService }, origin: { service: originService, extraMs: 20 } } });
    expect(result.stats.configurations).toBe(64 * 50 * 16 * (1 + 64));
    expect(result.plan).not.toBeNull();
    expect(performance.now() - started).toBeLessThan(5000); // the 100 ms target is measured by bench/planner-speed.ts
  });
});
