import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { clsBody, MODEL_INPUTS } from "../fixtures/model-inputs";
import { bufferStub, infer, type InferBody } from "./helpers";

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
    await expectError(await infer("ppocr-cls", { inputs: [{ ...cls, shape: [1.5, 3, 48, 192] }] }), 400, /dimension "1.5" must be written as an integer/);
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

/** A gzip or deflate (zlib) encoding of `text`. */
async function compressed(text: string | Uint8Array, format: "gzip" | "deflate"): Promise<Uint8Array> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  return new Uint8Array(await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream(format))).arrayBuffer());
}

describe("transport", () => {
  const url = "http://edge.test/v2/models/ppocr-cls/infer";

  it("decodes gzip and deflate request bodies, and serves them like plain ones", async () => {
    const text = JSON.stringify({ id: "zipped", ...clsBody(1, 9) });
    const plain = (await (await infer("ppocr-cls", text)).json()) as InferBody;
    for (const format of ["gzip", "deflate"] as const) {
      const response = await SELF.fetch(url, { method: "POST", body: await compressed(text, format), headers: { "content-type": "application/json", "content-encoding": format } });
      expect(response.status).toBe(200);
      const body = (await response.json()) as InferBody;
      expect(body.id).toBe("zipped");
      expect(body.outputs[0]!.data).toEqual(plain.outputs[0]!.data);
    }
  });

  it("refuses a decompression bomb with 413, broken gzip with 400 and an unknown encoding with 415", async () => {
    // 64 MiB of zeros gzip to ~64 KiB: far under the 4 MiB body cap, far over it decoded.
    const bomb = await compressed(new Uint8Array(64 * 1024 * 1024), "gzip");
    expect(bomb.length).toBeLessThan(4 * 1024 * 1024);
    await expectError(await SELF.fetch(url, { method: "POST", body: bomb, headers: { "content-encoding": "gzip" } }), 413, /decoded request body larger than 4194304 bytes/);
    await expectError(await SELF.fetch(url, { method: "POST", body: "not gzip at all", headers: { "content-encoding": "gzip" } }), 400, /not valid gzip data/);
    await expectError(await SELF.fetch(url, { method: "POST", body: "{}", headers: { "content-encoding": "br" } }), 415, /Content-Encoding "br" is not supported/);
  });

  it("answers 408 when the body does not arrive in time (BODY_TIMEOUT_MS, 2 s here)", async () => {
    const startMs = Date.now();
    const stalled = new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(new TextEncoder().encode('{"inputs": [')) });
    const response = await SELF.fetch(url, { method: "POST", body: stalled, headers: { "content-type": "application/json" } });
    await expectError(response, 408, /request body not received within 2000 ms/);
    expect(Date.now() - startMs).toBeGreaterThanOrEqual(2000);
  });

  it("reads a refused request's body to its end before answering, so a client still sending is not reset", async () => {
    // A body sent in 64 chunks of 16 KiB as the Worker reads it; `sent` counts the chunks it took.
    const streamed = () => {
      const state = { sent: 0 };
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (state.sent === 64) return controller.close();
          state.sent++;
          controller.enqueue(new Uint8Array(16 * 1024));
        },
      });
      return { state, body };
    };
    // Refused before any handler reads the body: an unknown model (its route's error) and an unknown path (404).
    for (const [target, message] of [["http://edge.test/v2/models/nope/infer", /unknown model "nope"/], ["http://edge.test/v2/nothing-here", /not found/]] as const) {
      const { state, body } = streamed();
      await expectError(await SELF.fetch(target, { method: "POST", body, headers: { "content-type": "application/json" } }), 404, message);
      expect(state.sent).toBe(64);
    }
  });

  it("answers 405 with Allow for a wrong method on a known path, and treats /v2/ as /v2", async () => {
    const wrong = await SELF.fetch("http://edge.test/v2/models/ppocr-cls", { method: "DELETE" });
    await expectError(wrong.clone(), 405, /method DELETE is not allowed here; use GET, HEAD/);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
    const infer405 = await SELF.fetch(url);
    expect(infer405.status).toBe(405);
    expect(infer405.headers.get("allow")).toBe("POST");
    await expectError(await SELF.fetch("http://edge.test/v2/nothing-here", { method: "DELETE" }), 404, /not found/);
    const slash = await SELF.fetch("http://edge.test/v2/");
    expect(slash.status).toBe(200);
    expect(await slash.json()).toEqual(await (await SELF.fetch("http://edge.test/v2")).json());
  });

  it("marks every answer but a successful inference as identity-encoded, so the platform does not gzip it", async () => {
    const headers = { "accept-encoding": "gzip" };
    expect((await SELF.fetch("http://edge.test/v2/models/ppocr-cls", { headers })).headers.get("content-encoding")).toBe("identity");
    expect((await infer("nope", { inputs: [cls] }, { headers })).headers.get("content-encoding")).toBe("identity");
    expect((await infer("ppocr-cls", clsBody(1, 3), { headers })).headers.get("content-encoding")).toBeNull();
  });
});
