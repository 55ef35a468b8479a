/**
 * Global setup of the workers test project (runs in Node): computes onnxruntime-node reference
 * outputs for the fixture inputs, the runner conformance inputs, the fuzz reference cases
 * (test/setup/fuzz-references.ts) and rendered text lines (test/setup/text-line-references.ts), and loads the Open Inference Protocol schemas from the spec,
 * then hands them to the tests through vitest's provide/inject (workerd can read neither file).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as ort from "onnxruntime-node";
import type { TestProject } from "vitest/node";
import { parse } from "yaml";
import { MODEL_INPUTS } from "../fixtures/model-inputs";
import type { References } from "../fixtures/provided-context";
import { conformanceReferences } from "./conformance-references";
import { encodeReferences, fuzzOptions, fuzzReferenceOutputs } from "./fuzz-references";
import { textLineReferences } from "./text-line-references";
import { ctcSymbols } from "../../src/models/ctc";

const root = resolve(import.meta.dirname, "..", "..");

export default async function setup(project: TestProject): Promise<void> {
  const references: References = {};
  for (const [model, inputs] of Object.entries(MODEL_INPUTS)) {
    const session = await ort.InferenceSession.create(resolve(root, "models", model, "model.onnx"));
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of inputs) feeds[input.name] = new ort.Tensor("float32", Float32Array.from(input.data), input.shape);
    if (model === "silero-vad") {
      feeds.state = new ort.Tensor("float32", new Float32Array(2 * 128), [2, 1, 128]);
      feeds.sr = new ort.Tensor("int64", BigInt64Array.from([16000n]), []);
    }
    const results = await session.run(feeds);
    references[model] = Object.fromEntries(
      Object.entries(results).map(([name, t]) => [name, { shape: [...t.dims], data: Array.from(t.data as Float32Array) }]),
    );
    await session.release();
  }
  project.provide("references", references);
  project.provide("conformanceReferences", await conformanceReferences());
  project.provide("fuzzReferences", encodeReferences(await fuzzReferenceOutputs()));
  project.provide("fuzzOptions", fuzzOptions());
  project.provide("textLines", await textLineReferences(root));
  project.provide("recSymbols", ctcSymbols(readFileSync(resolve(root, "models", "ppocr-rec", "ppocr_keys_v1.txt"), "utf8")));
  const spec = parse(readFileSync(resolve(root, "test", "spec", "open_inference_rest.yaml"), "utf8"));
  project.provide("oipSchemas", withoutExamples(spec.components.schemas) as Record<string, unknown>);
}

/** Drops `x-examples` (their `id` fields read as schema ids to a validator). */
function withoutExamples(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutExamples);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== "x-examples").map(([k, v]) => [k, withoutExamples(v)]));
}
