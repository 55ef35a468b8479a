import { describe, expect, inject, it } from "vitest";
import { INFERENCE_HEADER_LENGTH, packBinary, unpackBinary } from "../../src/protocol/oip-binary";
import { MODEL_INPUTS } from "../fixtures/model-inputs";
import "../fixtures/provided-context";
import { infer, maxAbsDiff } from "./helpers";

const cls = MODEL_INPUTS["ppocr-cls"]![0]!;
const clsTensor = { name: "x", datatype: "FP32" as const, shape: cls.shape, data: Float32Array.from(cls.data) };

/** A binary-extension request body for the cls fixture; `extra` bytes are appended to test bounds. */
function binaryRequest(parameters: Record<string, unknown>, sizeDelta = 0) {
  const header = { id: "bin", parameters, inputs: [{ name: "x", datatype: "FP32", shape: cls.shape, parameters: { binary_data_size: clsTensor.data.byteLength + sizeDelta } }] };
  return packBinary(header, [clsTensor]);
}

const post = (packed: { body: Uint8Array; headerLength: number }, headerLength = String(packed.headerLength)) =>
  infer("ppocr-cls", packed.body, { headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: headerLength } });

describe("binary tensor extension at the edge", () => {
  it("takes binary inputs and answers JSON that matches onnxruntime-node", async () => {
    const response = await post(binaryRequest({}));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: string; outputs: Array<{ data: number[] }> };
    expect(body.id).toBe("bin");
    expect(maxAbsDiff(body.outputs[0]!.data, inject("references")["ppocr-cls"]!["softmax_0.tmp_0"]!.data)).toBeLessThan(1e-4);
  });

  it("answers in binary when asked", async () => {
    const response = await post(binaryRequest({ binary_data_output: true }));
    expect(response.headers.get("content-type")).toBe("application/octet-stream");
    const { header, payload } = unpackBinary(new Uint8Array(await response.arrayBuffer()), response.headers.get(INFERENCE_HEADER_LENGTH));
    const output = (header as { outputs: Array<{ shape: number[]; parameters: { binary_data_size: number } }> }).outputs[0]!;
    expect(output).toMatchObject({ shape: [1, 2], parameters: { binary_data_size: 8 } });
    const values = new Float32Array(payload.slice().buffer);
    expect(maxAbsDiff(Array.from(values), inject("references")["ppocr-cls"]!["softmax_0.tmp_0"]!.data)).toBeLessThan(1e-4);
  });

  it("reads a body that arrives in many small chunks, and refuses one that ends before or runs past its Content-Length", async () => {
    // One row (110 KB) is read whole; three rows (330 KB) are read with a look at the header first.
    for (const rows of [1, 3]) {
      const shape = [rows, ...cls.shape.slice(1)];
      const data = new Float32Array(rows * clsTensor.data.length);
      for (let r = 0; r < rows; r++) data.set(clsTensor.data, r * clsTensor.data.length);
      const packed = packBinary({ id: "chunks", inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: data.byteLength } }] }, [{ ...clsTensor, shape, data }]);
      /** The body as a stream of 1,000-byte chunks, cut to `sentBytes`, declaring `declaredBytes`. */
      const chunked = (sentBytes: number, declaredBytes: number) => {
        const bytes = new Uint8Array(sentBytes);
        bytes.set(packed.body.subarray(0, Math.min(sentBytes, packed.body.length)));
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let offset = 0; offset < bytes.length; offset += 1_000) controller.enqueue(bytes.slice(offset, offset + 1_000));
            controller.close();
          },
        });
        return infer("ppocr-cls", undefined, { body: stream, headers: { "content-type": "application/octet-stream", "content-length": String(declaredBytes), [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } });
      };
      const whole = await post(packed);
      const streamed = await chunked(packed.body.length, packed.body.length);
      expect(streamed.status).toBe(200);
      const answer = (await streamed.json()) as { outputs: Array<{ shape: number[] }> };
      expect(answer).toEqual(await whole.json());
      expect(answer.outputs[0]!.shape[0]).toBe(rows);
      for (const [sent, declared] of [
        [packed.body.length - 500, packed.body.length],
        [packed.body.length + 500, packed.body.length],
      ]) {
        const response = await chunked(sent!, declared!);
        expect(response.status).toBe(400);
        expect(((await response.json()) as { error: string }).error).toMatch(/request body ended before it was complete/);
      }
    }
  });

  it("rejects inconsistent binary bodies with 400", async () => {
    for (const [packed, headerLength] of [
      [binaryRequest({}, -4), undefined],
      [binaryRequest({}), "999999999"],
      [binaryRequest({}), "abc"],
    ] as const) {
      const response = await post(packed, headerLength);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(/binary/);
    }
  });
});
