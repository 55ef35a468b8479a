/**
 * Platform limits at the edge, in real workerd with the shipped profiles' measured footprints: a
 * request the edge isolate could not hold (ppocr-rec, 4 rows of width 1280) gets 413 from the Worker
 * naming the limit and the rows that fit, computed here independently from the profile, and no
 * buffer ever sees it; a request that fits is served.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { batchRowsThatFit } from "../../src/edge/limits";
import { CATALOG } from "../../src/models/catalog";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../../src/protocol/oip-binary";
import { seededFloats } from "../fixtures/model-inputs";
import { bufferStub } from "./helpers";

/** A binary ppocr-rec request of `rows` text lines of `width` pixels. */
function recRequest(rows: number, width: number): Promise<Response> {
  const shape = [rows, 3, 48, width];
  const data = seededFloats(rows * 3 * 48 * width, 7);
  const packed = packBinary({ inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } }, [{ name: "x", datatype: "FP32", shape, data }]);
  return SELF.fetch("http://edge.test/v2/models/ppocr-rec/infer", { method: "POST", body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } });
}

/** Requests the model's buffer has counted (admitted or refused at admission). */
async function bufferArrivals(): Promise<number> {
  const s = await bufferStub("ppocr-rec").stats();
  return s.admitted + s.rejectedFull + s.rejectedLate + s.expired;
}

describe("platform limits at the edge", () => {
  const footprint = CATALOG.get("ppocr-rec")!.footprint!;
  const fitting = batchRowsThatFit(footprint, 3 * 48 * 1280);

  it("derives ppocr-rec's bound at width 1280 from its measured footprint", () => {
    expect(footprint.sessionBytes).toBeGreaterThan(0);
    // Width 1280 fits fewer rows than the manifest's maxBatch of 8, and at least one.
    expect(fitting).toBeGreaterThanOrEqual(1);
    expect(fitting).toBeLessThan(8);
    expect(batchRowsThatFit(footprint, 3 * 48 * 320)).toBeGreaterThan(fitting);
  });

  it("refuses with 413 what the edge isolate cannot hold, before any buffer sees it", async () => {
    const before = await bufferArrivals();
    const response = await recRequest(fitting + 1, 1280);
    expect(response.status).toBe(413);
    const body = (await response.json()) as { error: string };
    expect(body.error).toContain(`model 'ppocr-rec': ${fitting + 1} rows at this shape need about`);
    expect(body.error).toContain(`at most ${fitting} rows per request fit`);
    expect(await bufferArrivals()).toBe(before);
    // What fits is served.
    const served = await recRequest(1, 1280);
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    expect(await bufferArrivals()).toBe(before + 1);
  });
});
