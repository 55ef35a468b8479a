import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../../src/models/manifest";
import { parseInferRequest } from "../../../src/protocol/infer-request";

const load = (name: string) => parseManifest(JSON.parse(readFileSync(`models/${name}/manifest.json`, "utf8")), `models/${name}/manifest.json`);
const vad = load("silero-vad");
const rec = load("ppocr-rec");

describe("parseInferRequest", () => {
  it("fills optional inputs from their defaults, with the request's rows", () => {
    const request = parseInferRequest({ inputs: [{ name: "input", datatype: "FP32", shape: [3, 512], data: new Array(1536).fill(0.1) }] }, vad);
    expect(request.rows).toBe(3);
    expect(request.inputs.map((t) => [t.name, t.shape])).toEqual([["input", [3, 512]], ["state", [2, 3, 128]], ["sr", []]]);
    expect(Array.from(request.inputs[2]!.data as BigInt64Array)).toEqual([16000n]);
    expect(request.outputs).toEqual(["output", "stateN"]);
  });

  it("accepts nested row-major data", () => {
    const nested = [Array.from({ length: 512 }, (_, i) => i / 512)];
    const request = parseInferRequest({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: nested }] }, vad);
    expect(request.inputs[0]!.data[511]).toBeCloseTo(511 / 512);
  });

  it("keys batches by non-batch dims and shared values", () => {
    const recOf = (w: number) => parseInferRequest({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, w], data: new Array(144 * w).fill(0) }] }, rec).batchKey;
    expect(recOf(160)).not.toBe(recOf(320));
    expect(recOf(320)).toBe(recOf(320));
    const vadOf = (sr: number) => parseInferRequest({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: new Array(512).fill(0) }, { name: "sr", datatype: "INT64", shape: [], data: [sr] }] }, vad).batchKey;
    expect(vadOf(8000)).not.toBe(vadOf(16000));
  });

  it("rejects rows that disagree between batched inputs", () => {
    const body = { inputs: [{ name: "input", datatype: "FP32", shape: [2, 512], data: new Array(1024).fill(0) }, { name: "state", datatype: "FP32", shape: [2, 1, 128], data: new Array(256).fill(0) }] };
    expect(() => parseInferRequest(body, vad)).toThrow(/1 rows, but other inputs have 2/);
  });

  it("takes the client's timeout from parameters.timeout_ms", () => {
    const body = { inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: new Array(512).fill(0) }], parameters: { timeout_ms: 25 } };
    expect(parseInferRequest(body, vad).timeoutMs).toBe(25);
  });
});
