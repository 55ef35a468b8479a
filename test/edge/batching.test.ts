import { describe, expect, it } from "vitest";
import { clsBody } from "../fixtures/model-inputs";
import { bufferStub, infer, type InferBody } from "./helpers";

// This project runs ppocr-cls with maxBatch 4 and windowMs 40 (vitest.config.ts).
const WINDOW_MS = 40;

const queueMsOf = (r: Response) => Number(/queue;dur=([\d.]+)/.exec(r.headers.get("server-timing") ?? "")![1]);

describe("micro-batching at the edge", () => {
  it("gives 64 concurrent requests the same results as one-by-one", async () => {
    const seeds = Array.from({ length: 64 }, (_, i) => 100 + i);
    const alone: InferBody[] = [];
    for (const seed of seeds) {
      const response = await infer("ppocr-cls", { id: String(seed), ...clsBody(1, seed) });
      expect(response.headers.get("x-batch-size")).toBe("1");
      alone.push((await response.json()) as InferBody);
    }
    const responses = await Promise.all(seeds.map((seed) => infer("ppocr-cls", { id: String(seed), ...clsBody(1, seed) })));
    const together = (await Promise.all(responses.map((r) => r.json()))) as InferBody[];
    expect(Math.max(...responses.map((r) => Number(r.headers.get("x-batch-size"))))).toBe(4);
    together.forEach((body, i) => {
      expect(body.id).toBe(String(seeds[i]));
      expect(body.outputs[0]!.shape).toEqual([1, 2]);
      for (let k = 0; k < 2; k++) expect(Math.abs(body.outputs[0]!.data[k]! - alone[i]!.outputs[0]!.data[k]!)).toBeLessThan(1e-6);
    });
    // Different inputs give different outputs, so a mix-up between requests would show.
    expect(new Set(together.map((b) => b.outputs[0]!.data[0])).size).toBeGreaterThan(32);
  });

  it("releases a lone request when its window ends, not before", async () => {
    const response = await infer("ppocr-cls", clsBody(1, 7));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-batch-size")).toBe("1");
    expect(queueMsOf(response)).toBeGreaterThanOrEqual(WINDOW_MS - 1);
    const stats = await bufferStub("ppocr-cls").stats();
    expect(stats.startedByWindow).toBeGreaterThan(0);
    expect(stats.windowErrorMs.at(-1)).toBeGreaterThanOrEqual(0);
  });

  it("releases at maxBatch rows without waiting for the window, counting multi-row requests", async () => {
    const responses = await Promise.all([infer("ppocr-cls", clsBody(3, 1)), infer("ppocr-cls", clsBody(1, 2))]);
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.headers.get("x-batch-size")).toBe("4");
    }
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as InferBody[];
    expect(bodies[0]!.outputs[0]!.shape).toEqual([3, 2]);
    expect(bodies[1]!.outputs[0]!.shape).toEqual([1, 2]);
  });
});
