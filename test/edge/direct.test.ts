/**
 * The "direct" placement in real workerd: the Worker runs ppocr-cls in its own isolate, no buffer
 * hop. The operator pins the plan through the API (this project runs CONTROL_MODE static); the
 * Worker applies it within about a second and serves directly once its session is warm.
 * vitest-pool-workers runs the Worker with no_handle_cross_request_promise_resolution (it forces the
 * flag), under which a request cannot be answered from another request's batch, and requests that
 * meet in the isolate do form one (after each run the server yields the thread once, so the requests
 * that came meanwhile queue together): here requests go one at a time. Concurrent requests, their
 * batches and deadlines are tested on plain workerd, where the flag is on by the compatibility date
 * (test/node/edge/direct-batching.test.ts).
 */
import { env, SELF } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { clsBody, MODEL_INPUTS } from "../fixtures/model-inputs";
import "../fixtures/provided-context";
import { bufferStub, infer, maxAbsDiff, type InferBody } from "./helpers";

const MODEL = "ppocr-cls";
const references = inject("references");

function pin(update: object): Promise<Response> {
  const token = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
  return SELF.fetch(`http://edge.test/v2/models/${MODEL}/plan/pins`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(update) });
}

/** Sends one request at a time until one is served with `placement` (the Worker learns a plan within about a second). */
async function untilPlacement(placement: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    const response = await infer(MODEL, clsBody(1, 1));
    await response.arrayBuffer();
    if (response.headers.get("x-placement") === placement) return;
  }
  throw new Error(`never served ${placement}`);
}

describe("direct placement", () => {
  beforeAll(async () => {
    expect((await pin({ placement: "direct", windowMs: 0 })).status).toBe(200);
    await untilPlacement("direct");
  }, 30_000);
  afterAll(async () => {
    // Back to the manifest's plan (static mode keeps a released pin's value), then release the pins.
    expect((await pin({ placement: "edge", windowMs: 40 })).status).toBe(200);
    await untilPlacement("edge");
    expect((await pin({ placement: null, windowMs: null })).status).toBe(200);
  }, 30_000);

  it("answers in the Worker's isolate, as onnxruntime-node does, without touching a buffer", async () => {
    const rowsBefore = (await bufferStub(MODEL).stats()).rows;
    const response = await infer(MODEL, { id: "direct-ref", inputs: MODEL_INPUTS[MODEL] });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-placement")).toBe("direct");
    expect(response.headers.has("x-shard")).toBe(false);
    const body = (await response.json()) as InferBody;
    expect(body.id).toBe("direct-ref");
    const expected = references[MODEL]!;
    for (const output of body.outputs) {
      expect(output.shape).toEqual(expected[output.name]!.shape);
      expect(maxAbsDiff(output.data, expected[output.name]!.data)).toBeLessThan(1e-4);
    }
    expect((await bufferStub(MODEL).stats()).rows).toBe(rowsBefore);
  });

  it("refuses bad input with 400 before it reaches the session, and keeps serving", async () => {
    const bad = await infer(MODEL, { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 191], data: [] }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/x/);
    const good = await infer(MODEL, clsBody(1, 3));
    expect(good.status).toBe(200);
    expect(good.headers.get("x-placement")).toBe("direct");
  });
});
