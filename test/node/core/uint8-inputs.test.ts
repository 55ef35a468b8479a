/**
 * Inputs sent as UINT8 pixels (src/models/uint8-inputs.ts) on the shipped ppocr-det manifest: the
 * parser takes them (values 0..255 only), their batch key keeps them apart from FP32 requests of
 * the same shape, a batch of them is normalised per channel before the session, and the manifest
 * rules refuse what cannot be normalised.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { concatBatch } from "../../../src/batching/tensor-batch";
import { parseManifest, type ModelManifest } from "../../../src/models/manifest";
import { sessionInputs } from "../../../src/models/uint8-inputs";
import { parseInferRequest } from "../../../src/protocol/infer-request";

const json = JSON.parse(readFileSync("models/ppocr-det/manifest.json", "utf8")) as ModelManifest;
const det = parseManifest(json, "ppocr-det");
const f = Math.fround;
const normalised = (v: number, c: number) => f(f(f(v * f(1 / 255)) - f([0.485, 0.456, 0.406][c]!)) / f([0.229, 0.224, 0.225][c]!));

describe("UINT8 pixel inputs", () => {
  it("are parsed, keyed apart from FP32 requests, and normalised per channel for the session", () => {
    const shape = [1, 3, 32, 32];
    const pixels = Array.from({ length: 3 * 32 * 32 }, (_, i) => (i * 13) % 256);
    const u8 = parseInferRequest({ inputs: [{ name: "x", datatype: "UINT8", shape, data: pixels }] }, det);
    const f32 = parseInferRequest({ inputs: [{ name: "x", datatype: "FP32", shape, data: pixels.map((v, i) => normalised(v, Math.floor(i / 1024))) }] }, det);
    expect(u8.inputs[0]!.datatype).toBe("UINT8");
    expect(u8.batchKey).not.toBe(f32.batchKey);
    // Two UINT8 requests: concatenated as pixels, then normalised; equal to the FP32 request's values row by row.
    const batch = sessionInputs(det.inputs, concatBatch(det.inputs, [u8.inputs, u8.inputs]));
    expect([batch[0]!.datatype, batch[0]!.shape]).toEqual(["FP32", [2, 3, 32, 32]]);
    const expected = Array.from(f32.inputs[0]!.data as Float32Array);
    expect(Array.from(batch[0]!.data as Float32Array)).toEqual([...expected, ...expected]);
    // FP32 inputs pass as they are.
    expect(sessionInputs(det.inputs, f32.inputs)[0]).toBe(f32.inputs[0]);
    expect(() => parseInferRequest({ inputs: [{ name: "x", datatype: "UINT8", shape, data: pixels.map((v) => v + 200) }] }, det)).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => parseInferRequest({ inputs: [{ name: "x", datatype: "INT32", shape, data: pixels }] }, det)).toThrow(/datatype INT32 given, FP32 \(or UINT8 pixels\) expected/);
  });

  it("are declared only where they can be normalised", () => {
    const withInput = (fromUint8: unknown, changes: object = {}) => ({ ...json, inputs: [{ ...json.inputs[0]!, fromUint8, ...changes }] });
    expect(() => parseManifest(withInput({ axis: 1, mean: [0.5, 0.5], std: [1, 1] }), "m")).toThrow(/a mean and a std for each of the 3 channels/);
    expect(() => parseManifest(withInput({ axis: 2, mean: [0], std: [1] }), "m")).toThrow(/axis must be a fixed dimension/);
    expect(() => parseManifest(withInput({ axis: 0, mean: [0], std: [1] }), "m")).toThrow(/axis must be a fixed dimension/);
    expect(() => parseManifest(withInput({ axis: 1, mean: [0, 0, 0], std: [1, 1, 1] }, { datatype: "FP64" }), "m")).toThrow(/is for FP32 inputs/);
    expect(() => parseManifest({ ...json, outputs: [{ ...json.outputs[0]!, fromUint8: { axis: 1, mean: [0], std: [1] } }] }, "m")).toThrow(/is for inputs/);
  });
});
