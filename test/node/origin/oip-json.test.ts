import { describe, expect, it } from "vitest";
import { decodeInferResponse, encodeInferRequest, MalformedResponseError } from "../../../src/origin/oip-json";
import { manifestOf } from "./fixtures";

const vad = manifestOf("silero-vad");
const output = (shape: number[], n: number) => ({ name: "output", datatype: "FP32", shape, data: Array.from({ length: n }, (_, i) => i / 10) });
const stateN = (rows: number) => ({ name: "stateN", datatype: "FP32", shape: [2, rows, 128], data: new Array(2 * rows * 128).fill(0) });

describe("OIP JSON hop codec", () => {
  it("encodes a batch with its id, timeout and every input (int64 as numbers)", () => {
    const body = JSON.parse(encodeInferRequest([{ name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.of(16000n) }], "abc", 250.7));
    expect(body).toEqual({ id: "abc", parameters: { timeout_ms: 250 }, inputs: [{ name: "sr", datatype: "INT64", shape: [], data: [16000] }] });
  });

  it("decodes outputs in manifest order whatever order the server used, and NaN sent as null", () => {
    const out = output([2, 1], 2);
    out.data[1] = null as unknown as number;
    const tensors = decodeInferResponse(vad, { id: "x", outputs: [stateN(2), out] }, "x");
    expect(tensors.map((t) => t.name)).toEqual(["output", "stateN"]);
    expect(tensors[0]!.data[0]).toBeCloseTo(0);
    expect(Number.isNaN(tensors[0]!.data[1])).toBe(true);
  });

  it("accepts nested data", () => {
    const tensors = decodeInferResponse(vad, { outputs: [{ ...output([2, 1], 0), data: [[1], [2]] }, stateN(2)] }, "x");
    expect(Array.from(tensors[0]!.data as Float32Array)).toEqual([1, 2]);
  });

  it("refuses answers that do not fit the manifest or the request", () => {
    const bad = [
      { id: "other", outputs: [output([1, 1], 1), stateN(1)] },
      { outputs: [output([1, 1], 1)] },
      { outputs: [{ ...output([1, 1], 1), datatype: "FP64" }, stateN(1)] },
      { outputs: [output([1, 2], 2), stateN(1)] },
      { outputs: [output([1, 1], 3), stateN(1)] },
      { outputs: [{ ...output([1, 1], 1), data: ["a"] }, stateN(1)] },
      "nope",
    ];
    for (const body of bad) expect(() => decodeInferResponse(vad, body, "x")).toThrow(MalformedResponseError);
  });
});
