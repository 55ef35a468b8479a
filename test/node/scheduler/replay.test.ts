import { describe, expect, it } from "vitest";
import { simulate, toMarkovianArrival } from "../../../src/planner/index";
import { createRng, sampleArrivals } from "../../../src/planner/simulator";
import { serviceTable } from "../../../src/planner/service-time";
import { replayLatencies } from "../../../src/scheduler/replay";

// The planner's "lazy" formation must be the policy the runtime runs: the runtime's own Scheduler,
// replayed on the arrivals the planner's simulator draws, must give every request the same latency.
const cases = [
  { name: "Poisson, window-bound batches", arrival: toMarkovianArrival({ kind: "poisson", ratePerS: 60 }), maxBatch: 8, windowMs: 25, service: { kind: "linear" as const, baseMs: 3, perItemMs: 1.5 } },
  { name: "Poisson near saturation, size-bound batches", arrival: toMarkovianArrival({ kind: "poisson", ratePerS: 900 }), maxBatch: 16, windowMs: 5, service: { kind: "linear" as const, baseMs: 2, perItemMs: 0.9 } },
  { name: "bursty on/off MAP", arrival: toMarkovianArrival({ kind: "map", D0: [[-201, 1], [0.5, -0.5]], D1: [[200, 0], [0, 0]] }), maxBatch: 4, windowMs: 0, service: { kind: "linear" as const, baseMs: 1, perItemMs: 3 } },
];

describe("the runtime scheduler against the planner's simulator (lazy formation, one server)", () => {
  // sharedThread: the front door on the server's thread (a request that arrives during a batch is queued when it ends);
  // answerMsPerRow: the end of each batch answers its requests in turn.
  const variants = [{ sharedThread: false, answerMsPerRow: 0 }, { sharedThread: true, answerMsPerRow: 0 }, { sharedThread: true, answerMsPerRow: 0.5 }];
  for (const c of cases.flatMap((c) => variants.map((variant) => ({ ...c, ...variant })))) {
    it(`gives every request the same latency: ${c.name}${c.sharedThread ? ", shared thread" : ""}${c.answerMsPerRow ? ", answers in turn" : ""}`, () => {
      const requests = 20_000;
      const warmupRequests = 2_000;
      const seed = 11;
      const simulated = simulate({ arrival: c.arrival, service: c.service, servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy", sharedThread: c.sharedThread, answerMsPerRow: c.answerMsPerRow }, maxBatch: c.maxBatch, windowMs: c.windowMs, shards: 1, requests, warmupRequests, seed });
      // The simulator's first draws are the arrival times.
      const arrivals = sampleArrivals(c.arrival, requests + warmupRequests, createRng(seed));
      const replayed = replayLatencies(arrivals, serviceTable(c.service, c.maxBatch), c.maxBatch, c.windowMs, { sharedThread: c.sharedThread, answerMsPerRow: c.answerMsPerRow }).slice(warmupRequests).sort();
      expect(replayed.length).toBe(simulated.latencies.length);
      let worst = 0;
      for (let i = 0; i < replayed.length; i++) worst = Math.max(worst, Math.abs(replayed[i]! - simulated.latencies[i]!));
      expect(worst).toBeLessThan(1e-6);
      expect(simulated.meanBatch).toBeGreaterThan(1); // batching happened, so formation was exercised
    });
  }
});
