import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { clsBody, MODEL_INPUTS } from "../fixtures/model-inputs";
import { bufferStub, infer } from "./helpers";

const cls = MODEL_INPUTS["ppocr-cls"]![0]!;

/** Expects a protocol error with `status` whose message matches `pattern`. */
async function expectError(response: Response, status: number, pattern: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/application\/json/);
  const body = (await response.json()) as { error: string };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatch(pattern);
}

describe("bad input", () => {
  it("rejects malformed JSON with 400", async () => {
    await expectError(await infer("ppocr-cls", "{not json"), 400, /not valid JSON/);
  });

  it("rejects a body that is not an inference request", async () => {
    await expectError(await infer("ppocr-cls", { inputs: "x" }), 400, /inputs/);
    await expectError(await infer("ppocr-cls", { inputs: [] }), 400, /inputs/);
  });

  it("rejects a wrong datatype", async () => {
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, datatype: "INT32" }] }), 400, /datatype INT32 given, FP32 expected/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, datatype: "FP99" }] }), 400, /datatype/);
  });

  it("rejects values that do not fit the datatype", async () => {
    const data = cls.data.slice();
    data[7] = "abc" as unknown as number;
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, data }] }), 400, /value 7/);
    await expectError(await infer("silero-vad", { inputs: [...MODEL_INPUTS["silero-vad"]!, { name: "sr", datatype: "INT64", shape: [], data: [1.5] }] }), 400, /integer/);
  });

  it("rejects data whose length does not match the shape", async () => {
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, data: cls.data.slice(1) }] }), 400, /27647 values for shape \[1,3,48,192\]/);
  });

  it("rejects negative, fractional, wrong and huge dimensions", async () => {
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [-1, 3, 48, 192] }] }), 400, /non-negative integers/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [1.5, 3, 48, 192] }] }), 400, /non-negative integers/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [1, 3, 48, 96] }] }), 400, /dimension 3 is 96, expected 192/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [1, 3, 48] }] }), 400, /3 dims, expected 4/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [1e9, 3, 48, 192] }] }), 413, /rows, at most 4 per request/);
    await expectError(await infer("ppocr-rec", { inputs: [{ ...cls, shape: [1, 3, 48, 1e6] }] }), 413, /at most 1280/);
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [0, 3, 48, 192], data: [] }] }), 400, /at least one row/);
  });

  it("rejects unknown, duplicate and missing inputs and unknown outputs", async () => {
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, name: "y" }] }), 400, /unexpected input 'y'/);
    await expectError(await infer("ppocr-cls", { inputs: [cls, cls] }), 400, /given twice/);
    await expectError(await infer("silero-vad", { inputs: [{ name: "sr", datatype: "INT64", shape: [], data: [16000] }] }), 400, /needs input 'input'/);
    await expectError(await infer("ppocr-cls", { inputs: [cls], outputs: [{ name: "nope" }] }), 400, /unknown output 'nope'/);
  });

  it("rejects a bad timeout parameter", async () => {
    await expectError(await infer("ppocr-cls", { inputs: [cls], parameters: { timeout_ms: -5 } }), 400, /timeout_ms/);
  });

  it("answers 404 for unknown models, including path tricks", async () => {
    await expectError(await infer("nope", { inputs: [cls] }), 404, /unknown model "nope"/);
    await expectError(await infer("..%2Fx", { inputs: [cls] }), 404, /unknown model/);
    await expectError(await SELF.fetch("http://edge.test/v2/models/../x/infer", { method: "POST", body: "{}" }), 404, /not found/);
    await expectError(await infer("ppocr-cls/versions/7", { inputs: [cls] }), 404, /no version "7"/);
  });

  it("answers 413 to an oversized body before parsing it", async () => {
    const big = "x".repeat(4 * 1024 * 1024 + 1);
    await expectError(await infer("ppocr-cls", big), 413, /larger than 4194304 bytes/);
  });

  it("keeps serving correctly after bad requests", async () => {
    const before = await bufferStub("ppocr-cls").stats();
    const response = await infer("ppocr-cls", clsBody(1, 9));
    expect(response.status).toBe(200);
    const after = await bufferStub("ppocr-cls").stats();
    expect(after.batches).toBe(before.batches + 1);
    expect(after.failedBatches).toBe(before.failedBatches);
  });
});
