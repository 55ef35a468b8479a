import { describe, expect, it } from "vitest";
import { runtimeConfig } from "../../../src/config";
import { env } from "cloudflare:test";
import { clsBody } from "../../fixtures/model-inputs";
import { bufferStub, infer, type InferBody } from "../helpers";

// This project serves ppocr-cls with its shipped manifest (no overrides): a burst must behave as it would after `npm start`.
const manifest = runtimeConfig(env).models.get("ppocr-cls")!.manifest;

describe("a burst at the edge", () => {
  it("answers 64 concurrent ppocr-cls requests 200, coalesced into batches, none refused or late", async () => {
    expect((await infer("ppocr-cls", clsBody(1, 1))).status).toBe(200); // the session exists and is warm
    const before = await bufferStub("ppocr-cls").stats();
    const seeds = Array.from({ length: 64 }, (_, i) => 500 + i);
    const responses = await Promise.all(seeds.map((seed) => infer("ppocr-cls", { id: String(seed), ...clsBody(1, seed) })));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as InferBody[];
    // A 200 is an answer within the request's own deadline: late requests are answered 503.
    expect(responses.map((r) => r.status)).toEqual(seeds.map(() => 200));
    expect(bodies.map((b) => b.id)).toEqual(seeds.map(String));
    const batchSizes = responses.map((r) => Number(r.headers.get("x-batch-size")));
    expect(Math.max(...batchSizes)).toBeGreaterThan(1);
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(manifest.batching.maxBatch);
    const after = await bufferStub("ppocr-cls").stats();
    expect(after.rows - before.rows).toBe(64);
    expect(after.rejectedLate + after.rejectedFull + after.expired).toBe(before.rejectedLate + before.rejectedFull + before.expired);
  });
});
