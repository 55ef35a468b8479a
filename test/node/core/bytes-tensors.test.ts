/**
 * BYTES tensors (src/protocol/datatypes.ts): the length-prefixed layout, JSON strings (UTF-8 or
 * base64) and the binary extension both ways, and the 400s for data that does not fit the layout.
 * The pipeline manifest `ppocr` is the request spec (one image per request).
 */
import { describe, expect, it } from "vitest";
import { PIPELINES } from "../../../src/ocr/pipeline-manifest";
import { packBytes, toJsonValues, unpackBytes } from "../../../src/protocol/datatypes";
import { decodeInferBody } from "../../../src/protocol/decode-infer-body";
import { INFERENCE_HEADER_LENGTH, packBinary, unpackBinary } from "../../../src/protocol/oip-binary";

const ppocr = PIPELINES.get("ppocr")!;
const encoder = new TextEncoder();
const json = (body: object) => decodeInferBody(encoder.encode(JSON.stringify(body)), new Headers({ "content-type": "application/json" }), ppocr);
const expectRefused = (run: () => unknown, pattern: RegExp, status = 400) => expect(run).toThrow(expect.objectContaining({ status, message: expect.stringMatching(pattern) }));
const image = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 255);

describe("BYTES tensors", () => {
  it("lays elements out as a 4-byte little-endian length and the bytes, and reads them back", () => {
    const elements = [encoder.encode("héllo"), new Uint8Array(0), image];
    const packed = packBytes(elements);
    expect(packed.length).toBe(3 * 4 + 6 + 0 + 300);
    expect(new DataView(packed.buffer).getUint32(0, true)).toBe(6);
    expect(unpackBytes(packed).map((e) => Array.from(e))).toEqual(elements.map((e) => Array.from(e)));
    expect(toJsonValues("BYTES", packBytes([encoder.encode("héllo"), encoder.encode("€ 12")]))).toEqual(["héllo", "€ 12"]);
    expect(unpackBytes(packed.subarray(0, packed.length - 1), false)).toBeUndefined();
    expect(() => unpackBytes(Uint8Array.of(9, 0, 0, 0, 1))).toThrow(RangeError);
  });

  it("takes JSON strings as UTF-8, and base64 with content_type base64", () => {
    const text = json({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: ["abc€"] }] });
    expect(Array.from(unpackBytes(text.inputs[0]!.data as Uint8Array)[0]!)).toEqual(Array.from(encoder.encode("abc€")));
    const base64 = btoa(String.fromCharCode(...image));
    const decoded = json({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { content_type: "base64" }, data: [base64] }] });
    expect(Array.from(unpackBytes(decoded.inputs[0]!.data as Uint8Array)[0]!)).toEqual(Array.from(image));
    expect(decoded.rows).toBe(1);
  });

  it("refuses BYTES values that are not strings, bad base64, an unknown content type and more than one image", () => {
    expectRefused(() => json({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: [12] }] }), /input 'image': value 0: expected a string/);
    expectRefused(() => json({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { content_type: "base64" }, data: ["ab$="] }] }), /value 0: not valid base64/);
    expectRefused(() => json({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { content_type: "hex" }, data: ["00"] }] }), /content_type must be "base64" or "str"/);
    expectRefused(() => json({ inputs: [{ name: "image", datatype: "BYTES", shape: [2], data: ["a", "b"] }] }), /2 rows, at most 1 per request/, 413);
    expectRefused(() => json({ inputs: [{ name: "image", datatype: "FP32", shape: [1], data: [1] }] }), /datatype FP32 given, BYTES expected/);
  });

  it("carries BYTES in the binary extension, and refuses a binary_data_size that does not hold its elements", () => {
    const data = packBytes([image]);
    const tensor = { name: "image", datatype: "BYTES" as const, shape: [1], data };
    const packed = packBinary({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: data.byteLength } }] }, [tensor]);
    const binary = (body: Uint8Array, headerLength: number) => decodeInferBody(body, new Headers({ [INFERENCE_HEADER_LENGTH]: String(headerLength) }), ppocr);
    expect(Array.from(unpackBytes(binary(packed.body, packed.headerLength).inputs[0]!.data as Uint8Array)[0]!)).toEqual(Array.from(image));
    // Two elements where the shape says one; a length that runs past the data.
    const two = packBytes([image.subarray(0, 100), image.subarray(100)]);
    const wrongCount = packBinary({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: two.byteLength } }] }, [{ ...tensor, data: two }]);
    expectRefused(() => binary(wrongCount.body, wrongCount.headerLength), /does not hold 1 BYTES elements/);
    const overrun = data.slice();
    new DataView(overrun.buffer).setUint32(0, 5000, true);
    const bad = packBinary({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: overrun.byteLength } }] }, [{ ...tensor, data: overrun }]);
    expectRefused(() => binary(bad.body, bad.headerLength), /does not hold 1 BYTES elements/);
    // An answer's BYTES output packs and unpacks as it is.
    const answer = packBinary({ outputs: [{ name: "text", datatype: "BYTES", shape: [2], parameters: { binary_data_size: 0 } }] }, [{ name: "text", datatype: "BYTES", shape: [2], data: packBytes([encoder.encode("a"), encoder.encode("bc")]) }]);
    expect(toJsonValues("BYTES", unpackBinary(answer.body, String(answer.headerLength)).payload)).toEqual(["a", "bc"]);
  });
});
