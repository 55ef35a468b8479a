/**
 * Platform limits of a request (src/edge/limits.ts) on a synthetic footprint whose figures make the
 * bounds easy to derive by hand: 413 naming the limit and the rows that fit, per placement.
 */
import { describe, expect, it } from "vitest";
import { batchRowsThatFit, checkPlatformLimits, headerLimitsPeek, inputSizesOf, inputSizesOfHeader, ISOLATE_MEMORY_LIMIT_BYTES, MODEL_MEMORY_SHARE, needsOf, RPC_PAYLOAD_LIMIT_BYTES, rowElementsOf } from "../../../src/edge/limits";
import type { ModelFootprint } from "../../../src/models/profile";
import type { Tensor } from "../../../src/protocol/tensor";

const MIB = 1024 * 1024;
// A recogniser-like model: one row of 3x48x320 inputs; 4 MiB of outputs and 10 MiB of memory per row
// there, memory growing in proportion to the row's elements (10 MiB per 3x48x320 more).
const REF = 3 * 48 * 320;
const footprint: ModelFootprint = { sessionBytes: 20 * MIB, bytesPerRow: 10 * MIB, bytesPerRowPerElement: (10 * MIB) / REF, outputBytesPerRow: 4 * MIB, referenceRowElements: REF };
const manifest = { name: "rec", inputs: [{ name: "x", datatype: "FP32" as const, shape: [-1, 3, 48, -1], batchAxis: 0 }] };

function request(rows: number, width: number): Tensor[] {
  return [{ name: "x", datatype: "FP32", shape: [rows, 3, 48, width], data: new Float32Array(rows * 3 * 48 * width) }];
}

describe("platform limits", () => {
  it("scales per-row needs with the row's input elements, never below the reference row", () => {
    expect(rowElementsOf(manifest, inputSizesOf(request(2, 640)), 2)).toBe(3 * 48 * 640);
    expect(needsOf(footprint, 2, 3 * 48 * 640, 0)).toMatchObject({ outputBytes: 2 * 2 * 4 * MIB, memoryBytes: 20 * MIB + 2 * 2 * 10 * MIB });
    expect(needsOf(footprint, 1, 10, 0).memoryBytes).toBe(30 * MIB);
  });

  it("fits rows in the model's share of the isolate's memory after its session", () => {
    const room = MODEL_MEMORY_SHARE * ISOLATE_MEMORY_LIMIT_BYTES - 20 * MIB;
    expect(batchRowsThatFit(footprint, 3 * 48 * 320)).toBe(Math.floor(room / (10 * MIB)));
    expect(batchRowsThatFit(footprint, 3 * 48 * 1280)).toBe(Math.floor(room / (40 * MIB)));
    expect(batchRowsThatFit({ ...footprint, sessionBytes: 200 * MIB }, 3 * 48 * 320)).toBe(0);
  });

  it("refuses a buffered request whose outputs exceed the RPC limit, with the rows that fit", () => {
    // Width 1280: 16 MiB of outputs per row, so 2 rows (32 MiB) exceed the limit less its envelope and 1 fits.
    const attempt = () => checkPlatformLimits(footprint, "origin", manifest, inputSizesOf(request(2, 1280)), 2);
    expect(attempt).toThrow(expect.objectContaining({ status: 413, message: expect.stringMatching(/outputs \(32\.0 MiB\) exceed the 32 MiB Durable Object RPC limit; at this shape at most 1 rows per request fit/) }));
    expect(checkPlatformLimits(footprint, "origin", manifest, inputSizesOf(request(1, 1280)), 1)).toBeUndefined();
  });

  it("refuses a request the edge isolate cannot hold, and returns the batch cap at its shape", () => {
    const maxRows = batchRowsThatFit(footprint, 3 * 48 * 640);
    expect(checkPlatformLimits(footprint, "edge", manifest, inputSizesOf(request(1, 640)), 1)).toBe(maxRows);
    expect(() => checkPlatformLimits(footprint, "direct", manifest, inputSizesOf(request(maxRows + 1, 640)), maxRows + 1)).toThrow(expect.objectContaining({ status: 413, message: expect.stringContaining(`at most ${maxRows} rows per request fit`) }));
    // Direct placement has no RPC hop: only memory bounds it. One row 75x the reference width has 300 MiB of outputs.
    const wide = { ...footprint, bytesPerRow: 1, bytesPerRowPerElement: 0 };
    const big = request(1, 75 * 320);
    expect(needsOf(footprint, 1, 3 * 48 * 75 * 320, 0).outputBytes).toBeGreaterThan(RPC_PAYLOAD_LIMIT_BYTES);
    expect(() => checkPlatformLimits(wide, "edge", manifest, inputSizesOf(big), 1)).toThrow(expect.objectContaining({ status: 413, message: expect.stringContaining("outputs") }));
    expect(checkPlatformLimits(wide, "direct", manifest, inputSizesOf(big), 1)).toBeGreaterThan(1);
  });

  it("has no bound without a measured footprint", () => {
    expect(checkPlatformLimits(undefined, "edge", manifest, inputSizesOf(request(8, 1280)), 8)).toBeUndefined();
  });
});

describe("a binary request judged from its header", () => {
  const header = (rows: number, width: number) => new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [rows, 3, 48, width], parameters: { binary_data_size: rows * 3 * 48 * width * 4 } }] }));

  it("reads sizes and rows from the header, and leaves what it cannot judge to the full decode", () => {
    expect(inputSizesOfHeader(header(2, 1280), manifest)).toEqual({ inputs: [{ name: "x", shape: [2, 3, 48, 1280], byteLength: 2 * 3 * 48 * 1280 * 4 }], rows: 2 });
    for (const junk of ["{nope", "null", "7", '{"inputs":[null]}', '{"inputs":[1]}', '{"inputs":{}}']) expect(inputSizesOfHeader(new TextEncoder().encode(junk), manifest)).toBeUndefined();
    expect(inputSizesOfHeader(new TextEncoder().encode('{"inputs":[{"name":"x","shape":[2.5],"parameters":{"binary_data_size":4}}]}'), manifest)).toBeUndefined();
    expect(inputSizesOfHeader(new TextEncoder().encode('{"inputs":[{"name":"x","shape":[1,3,48,8],"data":[1]}]}'), manifest)).toBeUndefined();
  });

  it("refuses from the header what the decoded request would be refused for", () => {
    const peek = headerLimitsPeek(footprint, "edge", manifest, "200")!;
    expect(peek.bytes).toBe(200);
    expect(() => peek.check(header(2, 1280))).toThrow(expect.objectContaining({ status: 413 }));
    expect(() => peek.check(header(1, 320))).not.toThrow();
    expect(headerLimitsPeek(undefined, "edge", manifest, "200")).toBeUndefined();
    expect(headerLimitsPeek(footprint, "edge", manifest, "+200")).toBeUndefined();
  });
});

describe("footprints from profiles", () => {
  it("reads the isolate's figures, and memory growth per element from a second measured shape", async () => {
    const { profileFootprint } = await import("../../../src/models/profile");
    const memory = { referenceRowShapes: { x: [3, 48, 320] }, inputBytesPerRow: 1, outputBytesPerRow: 100, sessionBytes: 9e8, bytesPerRow: 9e8, isolate: { sessionBytes: 50, bytesPerRow: 8 }, scaling: { rowShape: { x: [3, 48, 1280] }, bytesPerRow: 9e8, isolateBytesPerRow: 20 } };
    const fp = profileFootprint({ runtimes: {}, memory })!;
    expect(fp).toEqual({ sessionBytes: 50, bytesPerRow: 8, bytesPerRowPerElement: 12 / (3 * 48 * 960), outputBytesPerRow: 100, referenceRowElements: 3 * 48 * 320 });
    // At width 1280 a row needs what was measured there; outputs grow 4x.
    expect(needsOf(fp, 1, 3 * 48 * 1280, 0)).toMatchObject({ memoryBytes: 50 + 20, outputBytes: 400 });
    expect(profileFootprint({ runtimes: {} })).toBeUndefined();
  });
});
