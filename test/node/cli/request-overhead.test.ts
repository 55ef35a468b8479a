import { describe, expect, it } from "vitest";
import { splitBatchCpu } from "../../../src/cli/request-overhead";

describe("splitBatchCpu", () => {
  it("recovers the per-request and per-batch parts of a line through two readings", () => {
    // cpu per request = 0.9 + 0.7 x batches per request.
    const at = (batchesPerRequest: number) => ({ cpuMs: 0.9 + 0.7 * batchesPerRequest, batchesPerRequest });
    const split = splitBatchCpu(at(0.96), at(0.25));
    expect(split.cpuMs).toBeCloseTo(0.9, 12);
    expect(split.batchCpuMs).toBeCloseTo(0.7, 12);
  });

  it("keeps it all per request when the readings batched alike or the bursts cost more", () => {
    expect(splitBatchCpu({ cpuMs: 1.6, batchesPerRequest: 1 }, { cpuMs: 1.1, batchesPerRequest: 1 })).toEqual({ cpuMs: 1.6, batchCpuMs: 0 });
    expect(splitBatchCpu({ cpuMs: 1.2, batchesPerRequest: 1 }, { cpuMs: 1.5, batchesPerRequest: 0.25 })).toEqual({ cpuMs: 1.2, batchCpuMs: 0 });
  });

  it("puts it all per batch when the line would make the per-request part negative", () => {
    // Paced 1 ms at one batch a request, bursts 0.1 ms at a quarter: the line crosses 0 above batches per request 0.
    const split = splitBatchCpu({ cpuMs: 1, batchesPerRequest: 1 }, { cpuMs: 0.1, batchesPerRequest: 0.25 });
    expect(split).toEqual({ cpuMs: 0, batchCpuMs: 1 });
  });
});
