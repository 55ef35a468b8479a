/**
 * gpu-origin's batcher with size classes: requests of different widths in one class share a batch,
 * the session sees them padded to the class width, and each gets its own steps back (the edge's
 * buffer does the same through the same tensor-batch functions).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ModelBatcher } from "../../../gpu-origin/model-batcher";
import { parseManifest } from "../../../src/models/manifest";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import type { Tensor } from "../../../src/protocol/tensor";

const base = parseManifest(JSON.parse(readFileSync("models/ppocr-rec/manifest.json", "utf8")), "models/ppocr-rec/manifest.json");
const manifest = { ...base, batching: { ...base.batching, sizeClasses: { ...base.batching.sizeClasses!, widths: [32, 1280] } } };
const SYMBOLS = 6625;

/** A request of one line `width` wide whose column x holds `seed + x` in every channel and row. */
const request = (width: number, seed: number) => parseInferRequest({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, width], data: Array.from({ length: 144 * width }, (_, i) => seed + (i % width)) }] }, manifest);

describe("ModelBatcher with size classes", () => {
  it("pads a class's requests to its width in one batch and crops each output to its own steps", async () => {
    const seen: number[][] = [];
    // A stand-in recogniser: step t of a row carries the row's first value in columns 8t..8t+7 (channel 0, line 0).
    const session = {
      async run([x]: Tensor[]): Promise<Tensor[]> {
        const [n, , , w] = x!.shape as [number, number, number, number];
        seen.push(x!.shape);
        const steps = w / 8;
        const data = new Float32Array(n * steps * SYMBOLS);
        for (let r = 0; r < n; r++) for (let t = 0; t < steps; t++) data[(r * steps + t) * SYMBOLS] = (x!.data as Float32Array)[r * 3 * 48 * w + 8 * t]!;
        return [{ name: "softmax_11.tmp_0", datatype: "FP32", shape: [n, steps, SYMBOLS], data }];
      },
    };
    const batcher = new ModelBatcher(manifest, session, { maxBatch: 8, windowMs: 0, maxQueueRows: 64 }, undefined, () => 0);
    const [a, b] = await Promise.all([batcher.submit(request(16, 100), 1e12), batcher.submit(request(24, 200), 1e12)]);
    expect(seen).toEqual([[2, 3, 48, 32]]);
    expect([a.batchRows, b.batchRows]).toEqual([2, 2]);
    expect(a.outputs[0]!.shape).toEqual([1, 2, SYMBOLS]);
    expect(b.outputs[0]!.shape).toEqual([1, 3, SYMBOLS]);
    const firstOfSteps = (t: Tensor) => Array.from({ length: t.shape[1]! }, (_, s) => (t.data as Float32Array)[s * SYMBOLS]);
    expect(firstOfSteps(a.outputs[0]!)).toEqual([100, 108]);
    expect(firstOfSteps(b.outputs[0]!)).toEqual([200, 208, 216]);
  });
});
