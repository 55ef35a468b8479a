import { describe, expect, it } from "vitest";
import { binaryEntries, BinaryReader, encodeBinaryInferRequest, packBinary, unpackBinary } from "../../../src/protocol/oip-binary";
import { decodeInferResponse } from "../../../src/origin/oip-json";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import type { Tensor } from "../../../src/protocol/tensor";
import { manifestOf, vadInputs } from "./fixtures";

const vad = manifestOf("silero-vad");

function parse(header: object, tensors: Tensor[]) {
  const { body, headerLength } = packBinary(header, tensors);
  const { header: h, payload } = unpackBinary(body, String(headerLength));
  return parseInferRequest(h, vad, payload);
}

describe("OIP binary tensor extension", () => {
  it("round-trips a batch: the origin's parser reads what the pool encodes, binary outputs requested", () => {
    const inputs = vadInputs(3, 5);
    const { body, headerLength } = encodeBinaryInferRequest(inputs, "id1", 500);
    expect(body.length - headerLength).toBe(3 * 512 * 4 + 2 * 3 * 128 * 4 + 8);
    const { header, payload } = unpackBinary(body, String(headerLength));
    const request = parseInferRequest(header, vad, payload);
    expect(request).toMatchObject({ id: "id1", rows: 3, timeoutMs: 500, wantsBinaryOutputs: true, outputs: ["output", "stateN"] });
    expect(request.inputs.map((t) => t.data)).toEqual(inputs.map((t) => t.data));
    expect(request.batchKey).toBe("input:*x512;state:2x*x128;sr=16000");
  });

  it("fills omitted optional inputs and takes small inputs as JSON data beside binary ones", () => {
    const [audio] = vadInputs(2, 1);
    const header = { inputs: [...binaryEntries([audio!]), { name: "sr", datatype: "INT64", shape: [], data: [16000] }] };
    const request = parse(header, [audio!]);
    expect(request.inputs[1]!.shape).toEqual([2, 2, 128]);
    expect(request.inputs[2]!.data).toEqual(BigInt64Array.of(16000n));
    expect(request.wantsBinaryOutputs).toBe(false);
  });

  it("refuses sizes that disagree with shapes, stray bytes, unknown inputs and too many rows", () => {
    const [audio] = vadInputs(2, 1);
    const entry = binaryEntries([audio!])[0]!;
    const cases: Array<[object, Tensor[], number, RegExp]> = [
      [{ inputs: [{ ...entry, parameters: { binary_data_size: 12 } }] }, [audio!], 400, /binary_data_size 12 does not match/],
      [{ inputs: [entry] }, [audio!, audio!], 400, /not described by the header/],
      [{ inputs: [{ ...entry, name: "audio" }] }, [audio!], 400, /unexpected input 'audio'/],
      [{ inputs: [{ ...entry, datatype: "FP64" }] }, [audio!], 400, /datatype FP64 given/],
      [{ inputs: [{ ...entry, shape: [64, 512], parameters: { binary_data_size: 64 * 512 * 4 } }] }, [{ ...audio!, data: new Float32Array(64 * 512) }], 413, /64 rows, at most 32/],
      [{ inputs: [{ name: "input", datatype: "FP32", shape: [2, 512] }] }, [], 400, /has neither data nor parameters.binary_data_size/],
    ];
    for (const [header, tensors, status, message] of cases) {
      expect(() => parse(header, tensors)).toThrow(expect.objectContaining({ status, message: expect.stringMatching(message) }));
    }
  });

  it("refuses a header length outside the body", () => {
    expect(() => unpackBinary(new Uint8Array(10), "11")).toThrow(/decimal digits giving a length/);
    expect(() => unpackBinary(new Uint8Array(10), "x")).toThrow(/decimal digits giving a length/);
  });

  it("decodes binary outputs in header order, skipping outputs the manifest does not list", () => {
    const output: Tensor = { name: "output", datatype: "FP32", shape: [1, 1], data: Float32Array.of(0.5) };
    const stateN: Tensor = { name: "stateN", datatype: "FP32", shape: [2, 1, 128], data: new Float32Array(256).fill(1) };
    const extra: Tensor = { name: "debug", datatype: "INT32", shape: [3], data: Int32Array.of(1, 2, 3) };
    const { body, headerLength } = packBinary({ id: "r", outputs: binaryEntries([stateN, extra, output]) }, [stateN, extra, output]);
    const { header, payload } = unpackBinary(body, String(headerLength));
    const tensors = decodeInferResponse(vad, header, "r", payload);
    expect(tensors.map((t) => [t.name, t.data.length])).toEqual([["output", 1], ["stateN", 256]]);
    expect(tensors[0]!.data[0]).toBe(0.5);
  });

  it("hands out aligned copies even when the payload starts at an odd offset", () => {
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setFloat32(1, 1.5, true);
    const reader = new BinaryReader(bytes.subarray(1, 5));
    expect(Array.from(reader.take("FP32", 1, 4) as Float32Array)).toEqual([1.5]);
    expect(() => reader.finish()).not.toThrow();
  });
});
