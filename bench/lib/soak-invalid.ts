/**
 * The invalid requests of the soak benchmark: one request per way a client can get the protocol
 * wrong, each with the statuses the Open Inference Protocol gives it (400 malformed or not
 * matching the model, 404 unknown model or route, 405 wrong method, 413 too large). Built once;
 * the soak draws from the list. Pure.
 */
import { INFERENCE_HEADER_LENGTH, packBinary } from "../../src/protocol/oip-binary";
import { seededValues } from "../../test/fixtures/model-inputs";
import type { RequestSpec } from "./soak-client";

/** One invalid request and the statuses it may rightly get. */
export interface InvalidCase extends RequestSpec {
  name: string;
  expected: number[];
}

const VAD = "/v2/models/silero-vad/infer";
const JSON_HEADERS = { "content-type": "application/json" };
const vadData = (count = 512) => seededValues(count, 99);
const vadJson = (input: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ ...extra, inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: vadData(), ...input }] });

function vadBinary(binaryDataSize: number, headerLength?: string): RequestSpec {
  const data = new Float32Array(vadData());
  const packed = packBinary({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], parameters: { binary_data_size: binaryDataSize } }] }, [{ name: "input", datatype: "FP32", shape: [1, 512], data: data.subarray(0, binaryDataSize / 4) }]);
  return { method: "POST", path: VAD, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: headerLength ?? String(packed.headerLength) }, body: packed.body };
}

const post = (name: string, expected: number[], body: string, path = VAD): InvalidCase => ({ name, expected, method: "POST", path, headers: JSON_HEADERS, body });

/** Every invalid case. */
export function invalidCases(): InvalidCase[] {
  const tooBig = vadData();
  tooBig[7] = 1e39;
  return [
    post("malformed JSON", [400], `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,512],"data":[0.1,`),
    post("empty body", [400], ""),
    post("no inputs", [400], JSON.stringify({ inputs: [] })),
    post("wrong datatype (FP64)", [400], vadJson({ datatype: "FP64" })),
    post("wrong shape ([1,256])", [400], vadJson({ shape: [1, 256], data: vadData(256) })),
    post("ragged nested data (count differs)", [400], vadJson({ shape: [2, 512], data: [vadData(512), vadData(500)] })),
    post("ragged nested data (count matches)", [400], vadJson({ shape: [2, 512], data: [vadData(600), vadData(424)] })),
    post("unknown input", [400], JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: vadData() }, { name: "bogus", datatype: "FP32", shape: [1], data: [0] }] })),
    post("unknown output", [400], vadJson({}, { outputs: [{ name: "bogus" }] })),
    post("oversized dims (rec W 4096)", [400, 413], JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 4096], data: [0] }] }), "/v2/models/ppocr-rec/infer"),
    post("oversized rows (vad 64 rows)", [400, 413], vadJson({ shape: [64, 512] })),
    post("det H, W not multiples of 32 (70x70)", [400], JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 70, 70], data: seededValues(3 * 70 * 70, 5) }] }), "/v2/models/ppocr-det/infer"),
    post("FP32 value 1e39", [400], vadJson({ data: tooBig })),
    post("negative timeout_ms", [400], vadJson({}, { parameters: { timeout_ms: -1 } })),
    { name: "Inference-Header-Content-Length not a number", expected: [400], ...vadBinary(2048, "abc") },
    { name: "Inference-Header-Content-Length past the body", expected: [400], ...vadBinary(2048, "999999") },
    { name: "binary_data_size mismatch (2044 of 2048)", expected: [400], ...vadBinary(2044) },
    post("unknown model", [404], vadJson({}), "/v2/models/no-such-model/infer"),
    { name: "wrong method (GET infer)", expected: [404, 405], method: "GET", path: VAD, headers: {} },
    { name: "wrong method (PUT infer)", expected: [404, 405], method: "PUT", path: VAD, headers: JSON_HEADERS, body: vadJson({}) },
  ];
}
