import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../../src/models/manifest";
import { decodeInferBody } from "../../../src/protocol/decode-infer-body";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import { binaryEntries, packBinary } from "../../../src/protocol/oip-binary";

const load = (name: string) => parseManifest(JSON.parse(readFileSync(`models/${name}/manifest.json`, "utf8")), `models/${name}/manifest.json`);
const vad = load("silero-vad");
const rec = load("ppocr-rec");
const det = load("ppocr-det");
const cls = load("ppocr-cls");

const encoder = new TextEncoder();
/** decodeInferBody on a JSON text with optional headers. */
const decodeText = (text: string, manifest = vad, headers: Record<string, string> = {}) => decodeInferBody(encoder.encode(text), new Headers(headers), manifest);
const vadInput = (rows = 1, samples = 512) => ({ name: "input", datatype: "FP32", shape: [rows, samples], data: new Array(rows * samples).fill(0.25) });
/** Expects a 400 (or `status`) InferenceError whose message matches `pattern`. */
const expectRefused = (run: () => unknown, pattern: RegExp, status = 400) => expect(run).toThrow(expect.objectContaining({ status, message: expect.stringMatching(pattern) }));

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
    const vadOf = (sr: number, samples = sr === 8000 ? 256 : 512) => parseInferRequest({ inputs: [{ name: "input", datatype: "FP32", shape: [1, samples], data: new Array(samples).fill(0) }, { name: "sr", datatype: "INT64", shape: [], data: [sr] }] }, vad).batchKey;
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

describe("validation: what an inference server must refuse", () => {
  it("refuses ragged and wrong-depth nested data, naming the position", () => {
    const ragged = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 8], data: [[[...Array(48)].map(() => Array(8).fill(0)), [...Array(48)].map(() => Array(9).fill(0)), [...Array(47)].map(() => Array(8).fill(0))]] }] };
    expectRefused(() => parseInferRequest(ragged, rec), /data\[0\]\[1\]\[0\] has 9 entries/);
    // 2 x 2 written as [[1,2,3],[4]]: four values, the wrong structure.
    const shapeOf = { inputs: [vadInput(2, 2)] };
    expectRefused(() => parseInferRequest({ inputs: [{ ...shapeOf.inputs[0], data: [[1, 2, 3], [4]] }] }, vad), /has 3 entries, the shape \[2,2\] needs 2/);
    expectRefused(() => parseInferRequest({ inputs: [{ ...vadInput(1, 2), data: [[[1], [2]]] }] }, vad), /nested deeper than the shape/);
    expectRefused(() => parseInferRequest({ inputs: [{ ...vadInput(2, 2), data: [1, [3, 4]] }] }, vad), /data\[0\] is a value where the shape/);
  });

  it("refuses dims written as non-integers, which JSON.parse would read as integers", () => {
    const text = JSON.stringify({ inputs: [vadInput()] }).replace('"shape":[1,512]', '"shape":[1,512.0]');
    expectRefused(() => decodeText(text), /input 'input': dimension "512.0" must be written as an integer/);
    expectRefused(() => decodeText(text.replace("512.0", "5.12e2")), /must be written as an integer/);
    // A "shape" inside a string, or in parameters, is not a shape; an escaped key is one.
    expect(decodeText(JSON.stringify({ id: '"shape":[1.5]', inputs: [vadInput()] })).id).toBe('"shape":[1.5]');
    expect(decodeText(JSON.stringify({ parameters: { shape: [null] }, inputs: [{ ...vadInput(), parameters: { shape: [0.5] } }] })).rows).toBe(1);
    expectRefused(() => decodeText(text.replace('"shape"', '"\\u0073hape"')), /input 'input': dimension "512.0" must be written as an integer/);
    // The exact check is iterative: parameters nested 100,000 deep beside an escaped id are fine.
    const deep = JSON.stringify({ id: "\u0000", inputs: [vadInput()] }).replace('"inputs"', `"parameters":{"deep":${"[".repeat(100_000)}${"]".repeat(100_000)}},"inputs"`);
    expect(decodeText(deep).id).toBe("\u0000");
  });

  it("refuses values outside the datatype's range", () => {
    const data = new Array(512).fill(0);
    data[3] = 1e39;
    expectRefused(() => parseInferRequest({ inputs: [{ ...vadInput(), data }] }, vad), /value 3: magnitude above the largest finite FP32/);
    data[3] = -3.4028234663852886e38; // the largest finite float32 itself is fine
    expect(parseInferRequest({ inputs: [{ ...vadInput(), data }] }, vad).inputs[0]!.data[3]).toBe(-3.4028234663852886e38);
  });

  it("refuses binary_data_size beside data, or without the binary extension, or malformed", () => {
    expectRefused(() => parseInferRequest({ inputs: [{ ...vadInput(), parameters: { binary_data_size: 2048 } }] }, vad, new Uint8Array(2048)), /has both data and parameters.binary_data_size/);
    const { data: _, ...entry } = vadInput();
    expectRefused(() => parseInferRequest({ inputs: [{ ...entry, parameters: { binary_data_size: 2048 } }] }, vad), /needs the binary tensor extension/);
    expectRefused(() => parseInferRequest({ inputs: [{ ...entry, parameters: { binary_data_size: "2048" } }] }, vad, new Uint8Array(2048)), /binary_data_size must be a non-negative integer/);
  });

  it("takes binary_data_output and binary_data only as booleans, and each output once", () => {
    for (const value of ["yes", 1, null]) {
      expectRefused(() => parseInferRequest({ inputs: [vadInput()], parameters: { binary_data_output: value } }, vad), /parameters.binary_data_output must be true or false/);
      expectRefused(() => parseInferRequest({ inputs: [vadInput()], outputs: [{ name: "output", parameters: { binary_data: value } }] }, vad), /output 'output': parameters.binary_data must be true or false/);
    }
    expect(parseInferRequest({ inputs: [vadInput()], parameters: { binary_data_output: false } }, vad).wantsBinaryOutputs).toBe(false);
    expectRefused(() => parseInferRequest({ inputs: [vadInput()], outputs: [{ name: "output" }, { name: "output" }] }, vad), /output 'output' is requested twice/);
    // Every flag is checked, even when another already asks for binary.
    expectRefused(() => parseInferRequest({ inputs: [vadInput()], parameters: { binary_data_output: true }, outputs: [{ name: "output", parameters: { binary_data: 0 } }] }, vad), /binary_data must be true or false/);
  });

  it("refuses header lengths that are not plain decimal digits, and the header on a JSON body", () => {
    const header = { inputs: binaryEntries([{ name: "input", datatype: "FP32", shape: [1, 512], data: new Float32Array(512) }]) };
    const { body, headerLength } = packBinary(header, [{ name: "input", datatype: "FP32", shape: [1, 512], data: new Float32Array(512) }]);
    const decode = (value: string, contentType = "application/octet-stream") => decodeInferBody(body, new Headers({ "inference-header-content-length": value, "content-type": contentType }), vad);
    expect(decode(String(headerLength)).rows).toBe(1);
    for (const value of [`+${headerLength}`, `${headerLength}.0`, "-1", "", "1e2"]) expectRefused(() => decode(value), /Inference-Header-Content-Length must be decimal digits/);
    expectRefused(() => decode(String(headerLength), "application/json"), /given with Content-Type application\/json/);
  });

  it("takes Silero VAD at 8 kHz with 256-sample chunks, and refuses the combinations the model cannot run", () => {
    const sr = (value: number) => ({ name: "sr", datatype: "INT64", shape: [], data: [value] });
    expect(parseInferRequest({ inputs: [vadInput(2, 256), sr(8000)] }, vad).rows).toBe(2);
    expectRefused(() => parseInferRequest({ inputs: [vadInput(1, 512), sr(8000)] }, vad), /takes sr 16000 with input \[n,512\], or sr 8000 with input \[n,256\]/);
    expectRefused(() => parseInferRequest({ inputs: [vadInput(1, 512), sr(22050)] }, vad), /takes sr 16000/);
    expectRefused(() => parseInferRequest({ inputs: [vadInput(1, 256)] }, vad), /takes sr 16000/);
  });

  it("refuses detector sizes that are not multiples of its stride", () => {
    const image = (h: number, w: number) => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, h, w], data: new Array(3 * h * w).fill(0) }] });
    expect(parseInferRequest(image(64, 96), det).rows).toBe(1);
    expectRefused(() => parseInferRequest(image(48, 64), det), /dimension 2 is 48; it must be a multiple of 32/);
    expectRefused(() => parseInferRequest(image(64, 33), det), /dimension 3 is 33; it must be a multiple of 32/);
    expect(cls.inputs[0]!.shapeMultipleOf).toBeUndefined();
  });
});
