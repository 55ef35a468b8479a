import { describe, expect, it } from "vitest";
import { type CostInput, costLowerBound, costParts, costPerHour } from "../../../src/planner/cost-model";
import { DEFAULT_PRICES, withPrices } from "../../../src/planner/prices";

describe("costPerHour", () => {
  it("prices the edge: requests, service CPU-ms, alarms and DO duration", () => {
    const c = costPerHour({ placement: "edge", ratePerS: 100, shards: 2, meanBatch: 4, meanOpenMs: 20, meanServiceMs: 8, meanInFlightMs: 8 }, DEFAULT_PRICES);
    expect(c.workerRequests).toBeCloseTo(0.3 * 0.36, 12); // 360,000 requests per hour
    expect(c.workerCpu).toBeCloseTo(0.02 * ((90_000 * 8) / 1e6), 12); // 90,000 batches of 8 ms
    expect(c.durableObjectRequests).toBeCloseTo(0.15 * 0.45, 12); // requests + one alarm per batch
    // per shard: 12.5 batches/s; open 25 %, busy 10 %: active 1 - 0.75 * 0.9 = 32.5 %
    expect(c.durableObjectDuration).toBeCloseTo(12.5 * ((2 * 0.325 * 0.125 * 3600) / 1e6), 12);
    expect(c.originInstances).toBe(0);
    expect(c.totalUsdPerHour).toBeCloseTo(c.workerRequests + c.workerCpu + c.durableObjectRequests + c.durableObjectDuration, 14);
    expect(c.usdPerMillionRequests).toBeCloseTo((c.totalUsdPerHour / 360_000) * 1e6, 12);
  });

  it("prices the origin by instance-hours and reports the start-up delay", () => {
    const prices = withPrices({ origin: { usdPerHour: 2.5 } });
    const c = costPerHour({ placement: "origin", ratePerS: 100, shards: 1, poolSize: 3, meanBatch: 10, meanOpenMs: 50, meanServiceMs: 20, meanInFlightMs: 60 }, prices);
    expect(c.originInstances).toBe(7.5);
    expect(c.workerCpu).toBe(0);
    expect(c.startupS).toBe(DEFAULT_PRICES.origin.startupS);
    expect(c.startupUsd).toBeCloseTo((7.5 * c.startupS) / 3600, 12);
  });

  it("prices direct placement as Worker requests and CPU only: no Durable Object", () => {
    const c = costPerHour({ placement: "direct", ratePerS: 100, shards: 1, meanBatch: 2, meanOpenMs: 0, meanServiceMs: 8, meanInFlightMs: 8 }, DEFAULT_PRICES, { isServiceBilledAsCpu: false });
    expect(c.workerRequests).toBeCloseTo(0.3 * 0.36, 12);
    // The Worker's own CPU, whatever isServiceBilledAsCpu says of Durable Objects: 180,000 batches of 8 ms.
    expect(c.workerCpu).toBeCloseTo(0.02 * ((180_000 * 8) / 1e6), 12);
    expect([c.durableObjectRequests, c.durableObjectDuration, c.originInstances]).toEqual([0, 0, 0]);
    expect(c.totalUsdPerHour).toBeCloseTo(c.workerRequests + c.workerCpu, 14);
  });

  it("follows the DO price list strictly when service is not billed as CPU", () => {
    const input = { placement: "edge" as const, ratePerS: 10, shards: 1, meanBatch: 2, meanOpenMs: 5, meanServiceMs: 3, meanInFlightMs: 3 };
    expect(costPerHour(input, DEFAULT_PRICES, { isServiceBilledAsCpu: false }).workerCpu).toBe(0);
  });
});

describe("costLowerBound", () => {
  const group = { ratePerS: 300, shards: 3, maxMeanBatch: 12, serviceBaseMs: 10, servicePerItemMs: 4, extraMs: 0 };

  it("is at most the cost of every plan of its group", () => {
    for (const placement of ["edge", "origin", "direct"] as const)
      for (const meanBatch of [1, 2.5, 7, 12])
        for (const meanOpenMs of [0, 5, 80])
          for (const waitMs of [0, 3, 40])
            for (const poolSize of [2, 3]) {
              const meanServiceMs = 10 + 4 * meanBatch + 1; // any E[s(K)] >= 10 + 4 E[K]
              const plan: CostInput = { placement, ratePerS: 300, shards: 3, poolSize, meanBatch, meanOpenMs, meanServiceMs, meanInFlightMs: waitMs + meanServiceMs };
              expect(costLowerBound({ ...group, placement, poolSize: 2 }, DEFAULT_PRICES)).toBeLessThanOrEqual(costParts(plan, DEFAULT_PRICES));
            }
  });

  it("is reached by a plan with the largest mean batch, no open window and no queueing", () => {
    const plan: CostInput = { placement: "edge", ratePerS: 300, shards: 3, meanBatch: 12, meanOpenMs: 0, meanServiceMs: 10 + 4 * 12, meanInFlightMs: 10 + 4 * 12 };
    const bound = costLowerBound({ ...group, placement: "edge" }, DEFAULT_PRICES);
    expect(bound).toBeLessThanOrEqual(costParts(plan, DEFAULT_PRICES));
    expect(bound).toBeCloseTo(costParts(plan, DEFAULT_PRICES), 8);
  });
});
