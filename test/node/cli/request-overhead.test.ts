import { describe, expect, it } from "vitest";
import { liveServiceLine, splitBatchCpu } from "../../../src/cli/request-overhead";

describe("splitBatchCpu", () => {
  it("recovers the per-request and per-batch parts of a line through two readings", () => {
    // cpu per request = 0.9 + 0.7 x batches per request.
    const at = (batchesPerRequest: number) => ({ cpuMs: 0.9 + 0.7 * batchesPerRequest, batchesPerRequest, batchMs: 0 });
    const split = splitBatchCpu(at(0.96), at(0.25));
    expect(split.cpuMs).toBeCloseTo(0.9, 12);
    expect(split.batchCpuMs).toBeCloseTo(0.7, 12);
  });

  it("keeps it all per request when the readings batched alike or the bursts cost more", () => {
    expect(splitBatchCpu({ cpuMs: 1.6, batchesPerRequest: 1, batchMs: 0 }, { cpuMs: 1.1, batchesPerRequest: 1, batchMs: 0 })).toEqual({ cpuMs: 1.6, batchCpuMs: 0 });
    expect(splitBatchCpu({ cpuMs: 1.2, batchesPerRequest: 1, batchMs: 0 }, { cpuMs: 1.5, batchesPerRequest: 0.25, batchMs: 0 })).toEqual({ cpuMs: 1.2, batchCpuMs: 0 });
  });

  it("puts it all per batch when the line would make the per-request part negative", () => {
    // Paced 1 ms at one batch a request, bursts 0.1 ms at a quarter: the line crosses 0 above batches per request 0.
    const split = splitBatchCpu({ cpuMs: 1, batchesPerRequest: 1, batchMs: 0 }, { cpuMs: 0.1, batchesPerRequest: 0.25, batchMs: 0 });
    expect(split).toEqual({ cpuMs: 0, batchCpuMs: 1 });
  });
});

describe("liveServiceLine", () => {
  const reading = (rowsPerBatch: number, batchMs: number) => ({ cpuMs: 0, batchesPerRequest: 1 / rowsPerBatch, batchMs });

  it("recovers the batch time's line from two readings' mean batches", () => {
    // s(k) = 1.2 + 0.3 k: paced batches of 1.5 rows, bursts of 7.
    const line = liveServiceLine(reading(1.5, 1.2 + 0.3 * 1.5), reading(7, 1.2 + 0.3 * 7));
    expect(line.baseMs).toBeCloseTo(1.2, 12);
    expect(line.perItemMs).toBeCloseTo(0.3, 12);
  });

  it("falls back to a line through the origin and the larger batches where the two do not give a line", () => {
    // Alike batches; a time that falls with the batch; a negative base.
    for (const [paced, bursts] of [[reading(2, 3), reading(2.2, 3.5)], [reading(1.5, 4), reading(7, 3.5)], [reading(1, 0.2), reading(8, 8)]] as const) {
      const line = liveServiceLine(paced, bursts);
      expect(line.baseMs).toBe(0);
      expect(line.perItemMs).toBeCloseTo(bursts.batchMs / (1 / bursts.batchesPerRequest), 12);
    }
  });
});
