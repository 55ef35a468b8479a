/**
 * Size classes at the tensor level (src/batching/size-classes.ts, tensor-batch.ts): which class a
 * width joins, padding in the concatenation's copy and cropping in the split's, and the batch key
 * and manifest rules that go with them.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classWidthOf, copyBox } from "../../../src/batching/size-classes";
import { BatchContractError, concatBatch, ownWidthsOf, splitBatch } from "../../../src/batching/tensor-batch";
import { runtimeConfig } from "../../../src/config";
import { parseManifest, type SizeClasses, type TensorSpec } from "../../../src/models/manifest";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import type { Tensor } from "../../../src/protocol/tensor";

const spec = (name: string, shape: number[], batchAxis: number | null): TensorSpec => ({ name, datatype: "FP32", shape, batchAxis });
const tensor = (name: string, shape: number[], values: number[]): Tensor => ({ name, datatype: "FP32", shape, data: Float32Array.from(values) });
const values = (t: Tensor | undefined) => Array.from(t!.data as Float32Array);
const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

/** A toy recogniser: x [N, 1, W] in, y [N, W/2, 2] out (stride 2), classes 4 and 8. */
const CLASSES: SizeClasses = { input: "x", axis: 2, widths: [4, 8], padValue: 0, outputs: { y: { axis: 1, stride: 2 } } };
const INPUTS = [spec("x", [-1, 1, -1], 0)];
const OUTPUTS = [spec("y", [-1, -1, 2], 0)];

const readManifest = (name: string) => JSON.parse(readFileSync(`models/${name}/manifest.json`, "utf8"));

describe("classWidthOf", () => {
  it("puts a width in the smallest class at least as wide, and keeps it without classes", () => {
    expect([1, 4, 5, 8].map((w) => classWidthOf(CLASSES, w))).toEqual([4, 4, 8, 8]);
    expect(classWidthOf({}, 13)).toBe(13);
    expect(classWidthOf({ widths: [8] }, 9)).toBe(9);
  });
});

describe("copyBox", () => {
  it("copies a box between two tensors of different shapes at offsets", () => {
    const source = Float32Array.from(range(2 * 3 * 4)); // [2, 3, 4]
    const target = new Float32Array(3 * 3 * 5); // [3, 3, 5]
    copyBox(source, [2, 3, 4], [0, 1, 1], target, [3, 3, 5], [1, 0, 0], [2, 2, 3]);
    const at = (i: number, j: number, k: number) => target[i * 15 + j * 5 + k];
    expect([at(1, 0, 0), at(1, 0, 2), at(1, 1, 0), at(2, 1, 2)]).toEqual([source[0 * 12 + 1 * 4 + 1], source[0 * 12 + 1 * 4 + 3], source[0 * 12 + 2 * 4 + 1], source[1 * 12 + 2 * 4 + 3]]);
    expect(target.filter((v) => v !== 0).length).toBe(2 * 2 * 3);
  });
});

describe("concatBatch and splitBatch with size classes", () => {
  it("pads each request to its class width in the batch and crops its outputs to its own steps", () => {
    const a = tensor("x", [1, 1, 2], [1, 2]);
    const b = tensor("x", [2, 1, 4], [3, 4, 5, 6, 7, 8, 9, 10]);
    const batch = concatBatch(INPUTS, [[a], [b]], CLASSES);
    expect(batch[0]!.shape).toEqual([3, 1, 4]);
    expect(values(batch[0])).toEqual([1, 2, 0, 0, 3, 4, 5, 6, 7, 8, 9, 10]);
    // The toy model: two output steps per row, step t = [row, t].
    const y = tensor("y", [3, 2, 2], [0, 0, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1]);
    const widths = ownWidthsOf(INPUTS, [[a], [b]], CLASSES);
    expect(widths).toEqual([2, 4]);
    const [outA, outB] = splitBatch(OUTPUTS, [y], [1, 2], { sizeClasses: CLASSES, widths });
    expect(outA![0]!.shape).toEqual([1, 1, 2]);
    expect(values(outA![0])).toEqual([0, 0]);
    expect(outB![0]!.shape).toEqual([2, 2, 2]);
    expect(values(outB![0])).toEqual([1, 0, 1, 1, 2, 0, 2, 1]);
  });

  it("pads a batch of one to its class too, with the pad value", () => {
    const batch = concatBatch(INPUTS, [[tensor("x", [1, 1, 5], [1, 2, 3, 4, 5])]], { ...CLASSES, padValue: -1 });
    expect(values(batch[0])).toEqual([1, 2, 3, 4, 5, -1, -1, -1]);
  });

  it("leaves a batch whose requests are all at the class width as a plain concatenation", () => {
    const a = tensor("x", [1, 1, 4], [1, 2, 3, 4]);
    expect(concatBatch(INPUTS, [[a]], CLASSES)[0]).toBe(a);
    expect(values(concatBatch(INPUTS, [[a], [a]], CLASSES)[0])).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
  });

  it("refuses outputs with fewer steps than a request needs", () => {
    const y = tensor("y", [1, 1, 2], [0, 0]);
    expect(() => splitBatch(OUTPUTS, [y], [1], { sizeClasses: CLASSES, widths: [4] })).toThrow(BatchContractError);
  });
});

describe("size classes in manifests and requests", () => {
  const rec = parseManifest(readManifest("ppocr-rec"), "models/ppocr-rec/manifest.json");
  const withWidths = (widths: number[]) => ({ ...rec, batching: { ...rec.batching, sizeClasses: { ...rec.batching.sizeClasses!, widths } } });
  const keyOf = (manifest: typeof rec, w: number) => parseInferRequest({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, w], data: new Array(144 * w).fill(0) }] }, manifest).batchKey;

  it("keys requests by their class width, and by their own width without widths", () => {
    const classed = withWidths([128, 320, 1280]);
    expect(keyOf(classed, 96)).toBe(keyOf(classed, 128));
    expect(keyOf(classed, 136)).toBe(keyOf(classed, 320));
    expect(keyOf(classed, 128)).not.toBe(keyOf(classed, 136));
    expect(keyOf(rec, 96)).not.toBe(keyOf(rec, 128));
  });

  it("refuses ppocr-rec widths that are not a multiple of the output stride", () => {
    expect(() => keyOf(rec, 100)).toThrow(/dimension 3 is 100; it must be a multiple of 8/);
  });

  it("refuses size classes that do not fit the model's tensors, naming the field", () => {
    const bad = (change: (m: ReturnType<typeof readManifest>) => void) => {
      const m = readManifest("ppocr-rec");
      change(m);
      return () => parseManifest(m, "models/ppocr-rec/manifest.json");
    };
    expect(bad((m) => (m.batching.sizeClasses.widths = [320, 128, 1280]))).toThrow(/batching\.sizeClasses\.widths: must be strictly ascending/);
    expect(bad((m) => (m.batching.sizeClasses.widths = [128, 320]))).toThrow(/batching\.sizeClasses\.widths: must end at the input's maxShape on axis 3 \(1280\)/);
    expect(bad((m) => (m.batching.sizeClasses.widths = [100, 1280]))).toThrow(/widths: must be multiples of the input's shapeMultipleOf on axis 3 \(8\)/);
    expect(bad((m) => (m.batching.sizeClasses.axis = 1))).toThrow(/batching\.sizeClasses\.axis: must be a dynamic/);
    expect(bad((m) => (m.batching.sizeClasses.input = "y"))).toThrow(/batching\.sizeClasses\.input: must name a batched input/);
    expect(bad((m) => (m.batching.sizeClasses.outputs["softmax_11.tmp_0"].stride = 16))).toThrow(/stride: must divide the input's shapeMultipleOf/);
  });

  it("takes class widths from MODEL_OVERRIDES, merged into the manifest's size classes", () => {
    const config = runtimeConfig({ MODEL_OVERRIDES: JSON.stringify({ "ppocr-rec": { batching: { sizeClasses: { widths: [256, 1280] } } } }) });
    expect(config.models.get("ppocr-rec")!.manifest.batching.sizeClasses).toEqual({ ...rec.batching.sizeClasses, widths: [256, 1280] });
    expect(() => runtimeConfig({ MODEL_OVERRIDES: JSON.stringify({ "ppocr-rec": { batching: { sizeClasses: { widths: [256] } } } }) })).toThrow(/MODEL_OVERRIDES\.ppocr-rec: batching\.sizeClasses\.widths: must end at/);
  });
});
