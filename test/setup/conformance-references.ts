/**
 * onnxruntime-node's outputs for the runner conformance inputs (test/fixtures/conformance-cases.ts):
 * the reference every runner and backend must match. Node only; the workers project gets them from
 * its global setup (test/setup/references.ts) through provide/inject.
 */
import { resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { conformanceInputs } from "../fixtures/conformance-cases";
import type { References } from "../fixtures/provided-context";

const root = resolve(import.meta.dirname, "..", "..");

/** Reference outputs by conformance input id, then output name (shape and data as plain arrays). */
export async function conformanceReferences(): Promise<References> {
  const references: References = {};
  const sessions = new Map<string, ort.InferenceSession>();
  for (const { id, model, inputs } of conformanceInputs()) {
    let session = sessions.get(model);
    if (!session) {
      session = await ort.InferenceSession.create(resolve(root, "models", model, "model.onnx"), { intraOpNumThreads: 1 });
      sessions.set(model, session);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) feeds[t.name] = new ort.Tensor(t.datatype === "INT64" ? "int64" : "float32", t.data as Float32Array, t.shape);
    const results = await session.run(feeds);
    references[id] = Object.fromEntries(Object.entries(results).map(([name, t]) => [name, { shape: [...t.dims], data: Array.from(t.data as Float32Array) }]));
  }
  for (const session of sessions.values()) await session.release();
  return references;
}
