/**
 * The "direct" placement in real workerd: the Worker runs ppocr-cls in its own isolate, no buffer
 * hop. The operator pins the plan through the API (this project runs CONTROL_MODE static); the
 * Worker applies it within about a second and serves directly once its session is warm.
 * vitest-pool-workers runs the Worker with no_handle_cross_request_promise_resolution (it forces the
 * flag), under which a request cannot be answered from another request's batch: here the window is
 * 0 and requests arrive one after another, so each leads its own batch. Batching across requests is
 * tested on plain workerd, where the flag is on by the compatibility date
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

  it("answers concurrent requests, every one with its own rows exactly once", async () => {
    // Each request's answer is compared with the same rows run on their own, one request at a time.
    const seeds = Array.from({ length: 12 }, (_, i) => 500 + i);
    const alone = new Map<number, number[]>();
    for (const seed of seeds) alone.set(seed, ((await (await infer(MODEL, clsBody(1, seed))).json()) as InferBody).outputs[0]!.data);
    const directStats = async () => ((await (await SELF.fetch(`http://edge.test/v2/models/${MODEL}/stats`)).json()) as { model_stats: Array<{ direct: { rows: number; batches: number } }> }).model_stats[0]!.direct;
    const before = await directStats();
    const responses = await Promise.all(seeds.map((seed) => infer(MODEL, { id: String(seed), ...clsBody(1, seed) })));
    expect(responses.map((r) => [r.status, r.headers.get("x-placement")])).toEqual(seeds.map(() => [200, "direct"]));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as InferBody[];
    bodies.forEach((body, i) => {
      expect(body.id).toBe(String(seeds[i]));
      expect(maxAbsDiff(body.outputs[0]!.data, alone.get(seeds[i]!)!)).toBeLessThan(1e-4);
    });
    // One-row requests: a batch of b rows answers b of them, each told b, so the batches number the sum of 1/b.
    const sizes = responses.map((r) => Number(r.headers.get("x-batch-size")));
    const after = await directStats();
    expect(after.rows - before.rows).toBe(seeds.length);
    expect(after.batches - before.batches).toBeCloseTo(sizes.reduce((sum, b) => sum + 1 / b, 0), 9);
  });

  it("refuses bad input with 400 before it reaches the session, and keeps serving", async () => {
    const bad = await infer(MODEL, { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 191], data: [] }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/x/);
    const good = await infer(MODEL, clsBody(1, 3));
    expect(good.status).toBe(200);
    expect(good.headers.get("x-placement")).toBe("direct");
  });

  it("answers 503 to a request whose deadline cannot be met, and no other", async () => {
    // A 1 ms budget cannot be met (a one-row run alone takes longer): refused at admission behind
    // the burst, or failed at its deadline.
    const burst = Array.from({ length: 8 }, (_, i) => infer(MODEL, clsBody(1, 700 + i)));
    const hurried = infer(MODEL, { ...clsBody(1, 800), parameters: { timeout_ms: 1 } });
    const results = await Promise.all([...burst, hurried]);
    expect(results.slice(0, -1).map((r) => r.status)).toEqual(Array(8).fill(200));
    const late = results.at(-1)!;
    expect(late.status).toBe(503);
    expect(((await late.json()) as { error: string }).error).toMatch(/deadline|overloaded/);
  });
});
