import { env, SELF } from "cloudflare:test";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { CATALOG } from "../../src/models/catalog";
import { weightsPath } from "../../src/edge/weights";
import { MODEL_INPUTS } from "../fixtures/model-inputs";
import "../fixtures/provided-context";
import { infer, maxAbsDiff, type InferBody } from "./helpers";

const references = inject("references");

describe("shipped models at the edge", () => {
  // Origin-only models (ppocr-det) have no weights at the edge; the origin's tests run them.
  for (const [model, inputs] of Object.entries(MODEL_INPUTS).filter(([model]) => !CATALOG.get(model)!.originOnly)) {
    it(`${model} matches onnxruntime-node within 1e-4`, async () => {
      const response = await infer(model, { id: `ref-${model}`, inputs });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-placement")).toBe("edge");
      const body = (await response.json()) as InferBody;
      expect(body.id).toBe(`ref-${model}`);
      const expected = references[model]!;
      expect(body.outputs.map((o) => o.name).sort()).toEqual(Object.keys(expected).sort());
      for (const output of body.outputs) {
        expect(output.shape).toEqual(expected[output.name]!.shape);
        expect(maxAbsDiff(output.data, expected[output.name]!.data)).toBeLessThan(1e-4);
      }
    });
  }

  it("keeps weights off the public routes, and origin-only weights off the edge", async () => {
    // The Worker runs first for every path, so a weights file is not served from its asset path.
    for (const model of CATALOG.keys()) {
      const response = await SELF.fetch(`http://edge.test${weightsPath(model)}`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: expect.any(String) });
    }
    // The assets hold the edge models' weights and not ppocr-det's.
    const present = await Promise.all([...CATALOG.keys()].map(async (model) => [model, (await env.ASSETS.fetch(`https://assets.invalid${weightsPath(model)}`)).status] as const));
    expect(Object.fromEntries(present)).toEqual(Object.fromEntries([...CATALOG].map(([model, entry]) => [model, entry.originOnly ? 404 : 200])));
  });

  it("silero-vad returns stateN so a client can carry its stream", async () => {
    const [chunk] = MODEL_INPUTS["silero-vad"]!;
    const first = (await (await infer("silero-vad", { inputs: [chunk] })).json()) as InferBody;
    const stateN = first.outputs.find((o) => o.name === "stateN")!;
    expect(stateN.shape).toEqual([2, 1, 128]);
    expect(stateN.data.some((v) => v !== 0)).toBe(true);
    const carried = (await (await infer("silero-vad", { inputs: [chunk, { name: "state", datatype: "FP32", shape: stateN.shape, data: stateN.data }] })).json()) as InferBody;
    const fresh = first.outputs.find((o) => o.name === "output")!.data[0]!;
    const withState = carried.outputs.find((o) => o.name === "output")!.data[0]!;
    expect(Math.abs(withState - fresh)).toBeGreaterThan(1e-6);
  });

  it("returns only the outputs a request asks for", async () => {
    const response = await infer("silero-vad", { inputs: MODEL_INPUTS["silero-vad"], outputs: [{ name: "output" }] });
    const body = (await response.json()) as InferBody;
    expect(body.outputs.map((o) => o.name)).toEqual(["output"]);
  });
});
