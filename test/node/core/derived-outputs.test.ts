/**
 * Derived outputs (src/models/derived-outputs.ts): argmax and max over a session output's last axis,
 * checked against a plain loop over the same data; how requests name them, how the metadata lists
 * them, how a batch's derived outputs split and crop; and the manifest rules. The ppocr-rec manifest
 * is the one shipped.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { concatBatch, ownWidthsOf, splitBatch } from "../../../src/batching/tensor-batch";
import { ctcDecodeSteps, ctcSymbols, greedyCtcDecode } from "../../../src/models/ctc";
import { cropsWithDerived, outputSpecsNamed, outputSpecsOf, pickOutputs, reduceLastAxis } from "../../../src/models/derived-outputs";
import { parseManifest, type ModelManifest } from "../../../src/models/manifest";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import { modelMetadata } from "../../../src/protocol/model-metadata";
import type { Tensor } from "../../../src/protocol/tensor";

const rec = parseManifest(JSON.parse(readFileSync("models/ppocr-rec/manifest.json", "utf8")), "ppocr-rec");
const PROBS = "softmax_11.tmp_0";
const CLASSES = 6625;

/** Deterministic pseudo-random floats in [0, 1). */
function floats(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32));
}

/** Per leading index, the largest value and the first index that has it: a plain loop, no shared code. */
function reference(data: Float32Array, width: number): { index: number[]; value: number[] } {
  const index: number[] = [];
  const value: number[] = [];
  for (let i = 0; i < data.length / width; i++) {
    const row = Array.from(data.subarray(i * width, (i + 1) * width));
    const max = Math.max(...row);
    index.push(row.indexOf(max));
    value.push(max);
  }
  return { index, value };
}

describe("derived outputs", () => {
  it("reduce the last axis: argmax (INT32, first of equal maxima) and max (the source's datatype)", () => {
    const data = floats(2 * 5 * 7, 3);
    data[7 * 2 + 4] = data[7 * 2 + 1] = 2; // a tie in row 2: the first index wins
    const tensor: Tensor = { name: "p", datatype: "FP32", shape: [2, 5, 7], data };
    const expected = reference(data, 7);
    const argmax = reduceLastAxis(tensor, "argmax", "a");
    const max = reduceLastAxis(tensor, "max", "m");
    expect([argmax.datatype, argmax.shape, max.datatype, max.shape]).toEqual(["INT32", [2, 5], "FP32", [2, 5]]);
    expect(Array.from(argmax.data as Int32Array)).toEqual(expected.index);
    expect(Array.from(max.data as Float32Array)).toEqual(expected.value);
    expect(argmax.data[2]).toBe(1);
  });

  it("decode to the text and confidence greedy CTC reads from the full probabilities", () => {
    const symbols = ctcSymbols(readFileSync("models/ppocr-rec/ppocr_keys_v1.txt", "utf8"));
    const steps = 40;
    // Peaked rows: each step's winner is clear, with blanks and repeats among them.
    const data = floats(steps * CLASSES, 9).map((v) => v * 1e-4);
    for (let t = 0; t < steps; t++) data[t * CLASSES + [0, 17, 17, 0, 17, 4242, CLASSES - 1, 3][t % 8]!] = 0.5 + t / 100;
    const tensor: Tensor = { name: PROBS, datatype: "FP32", shape: [1, steps, CLASSES], data };
    const [best, bestProbability] = pickOutputs(rec, [tensor], ["argmax", "max"]);
    const full = greedyCtcDecode(data, steps, symbols);
    expect(full.text.length).toBeGreaterThan(10);
    expect(ctcDecodeSteps(best!.data as Int32Array, bestProbability!.data as Float32Array, steps, symbols)).toEqual({ text: full.text, confidence: expect.closeTo(full.confidence, 6) });
    expect(() => ctcDecodeSteps(Int32Array.of(CLASSES), Float32Array.of(1), 1, symbols)).toThrow(RangeError);
  });

  it("are named by requests, listed by the metadata, and left out when a request names no outputs", () => {
    const x = { name: "x", datatype: "FP32", shape: [1, 3, 48, 8], data: Array.from(floats(3 * 48 * 8, 1)) };
    expect(parseInferRequest({ inputs: [x] }, rec).outputs).toEqual([PROBS]);
    expect(parseInferRequest({ inputs: [x], outputs: [{ name: "max" }, { name: "argmax" }] }, rec).outputs).toEqual(["argmax", "max"]);
    expect(() => parseInferRequest({ inputs: [x], outputs: [{ name: "argmin" }] }, rec)).toThrow(expect.objectContaining({ status: 400, message: expect.stringMatching(/unknown output 'argmin'/) }));
    expect(modelMetadata(rec, {}).outputs).toEqual([
      { name: PROBS, datatype: "FP32", shape: [-1, -1, CLASSES] },
      { name: "argmax", datatype: "INT32", shape: [-1, -1] },
      { name: "max", datatype: "FP32", shape: [-1, -1] },
    ]);
    expect(outputSpecsNamed(rec, ["max"])).toEqual([{ name: "max", datatype: "FP32", shape: [-1, -1], batchAxis: 0 }]);
  });

  it("split and crop a padded batch like their source: each request gets its own steps", () => {
    const sizeClasses = { ...rec.batching.sizeClasses!, widths: [64, 1280] };
    const requests = [16, 40, 64].map((w, i): Tensor[] => [{ name: "x", datatype: "FP32", shape: [1, 3, 48, w], data: floats(3 * 48 * w, i) }]);
    const batch = concatBatch(rec.inputs, requests, sizeClasses);
    expect(batch[0]!.shape).toEqual([3, 3, 48, 64]);
    const steps = 64 / 8;
    const probabilities: Tensor = { name: PROBS, datatype: "FP32", shape: [3, steps, CLASSES], data: floats(3 * steps * CLASSES, 5) };
    const names = ["argmax", "max"];
    const crop = { sizeClasses: cropsWithDerived(sizeClasses, rec), widths: ownWidthsOf(rec.inputs, requests, sizeClasses) };
    const parts = splitBatch(outputSpecsNamed(rec, names), pickOutputs(rec, [probabilities], names), [1, 1, 1], crop);
    const full = splitBatch(rec.outputs, [probabilities], [1, 1, 1], { sizeClasses, widths: crop.widths });
    parts.forEach(([argmax, max], r) => {
      const own = full[r]![0]!;
      expect(argmax!.shape).toEqual([1, own.shape[1]]);
      expect(own.shape[1]).toBe([16, 40, 64][r]! / 8);
      const expected = reference(own.data as Float32Array, CLASSES);
      expect(Array.from(argmax!.data as Int32Array)).toEqual(expected.index);
      expect(Array.from(max!.data as Float32Array)).toEqual(expected.value);
    });
  });

  it("are checked in the manifest: a source output, a numeric one with an axis left after the batch, a new name", () => {
    const base = JSON.parse(readFileSync("models/ppocr-rec/manifest.json", "utf8")) as ModelManifest;
    const refused = (derivedOutputs: unknown[], pattern: RegExp, outputs = base.outputs) =>
      expect(() => parseManifest({ ...base, outputs, derivedOutputs }, "m")).toThrow(pattern);
    refused([{ name: "a", from: "nope", op: "argmax" }], /'from' must name one of the outputs/);
    refused([{ name: PROBS, from: PROBS, op: "max" }], /already an output's/);
    refused([{ name: "a", from: PROBS, op: "max" }, { name: "a", from: PROBS, op: "argmax" }], /already an output's/);
    refused([{ name: "a", from: "y", op: "max" }], /axis to reduce after its batch axis/, [...base.outputs, { name: "y", datatype: "FP32", shape: [-1], batchAxis: 0 }]);
    refused([{ name: "a", from: PROBS, op: "median" }], /derivedOutputs/);
  });
});
