/**
 * onnxruntime-node outputs for every reference case of the fuzz suites (test/fixtures/oip-arbitraries.ts,
 * 88 small inferences, ~1 s): the workers suite gets them through provide/inject (float32 values as
 * base64, ~3 MB), the origin suite computes them in-process. Node only.
 */
import { resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { referenceCases } from "../fixtures/oip-arbitraries";
import type { ReferenceOutputs } from "../fixtures/oip-fuzz-check";
import type { EncodedReferences } from "../fixtures/provided-context";

const root = resolve(import.meta.dirname, "..", "..");

/** Reference outputs by case key. */
export async function fuzzReferenceOutputs(): Promise<Map<string, ReferenceOutputs>> {
  const sessions = new Map<string, ort.InferenceSession>();
  const outputs = new Map<string, ReferenceOutputs>();
  try {
    for (const c of referenceCases()) {
      let session = sessions.get(c.model);
      if (!session) sessions.set(c.model, (session = await ort.InferenceSession.create(resolve(root, "models", c.model, "model.onnx"), { intraOpNumThreads: 1 })));
      const feeds = Object.fromEntries(c.inputs.map((t) => [t.name, new ort.Tensor(t.datatype === "INT64" ? "int64" : "float32", t.data, t.shape)]));
      const results = await session.run(feeds);
      outputs.set(c.key, Object.fromEntries(Object.entries(results).map(([name, t]) => [name, { shape: [...t.dims], data: Float32Array.from(t.data as Float32Array) }])));
    }
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release()));
  }
  return outputs;
}

/** The outputs with float32 values as base64 (compact for provide/inject). */
export function encodeReferences(outputs: Map<string, ReferenceOutputs>): EncodedReferences {
  const encoded: EncodedReferences = {};
  for (const [key, byName] of outputs) {
    encoded[key] = Object.fromEntries(Object.entries(byName).map(([name, { shape, data }]) => [name, { shape, base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") }]));
  }
  return encoded;
}

/** Fuzz seed, run scale and survey mode from FUZZ_SEED, FUZZ_SCALE and FUZZ_SURVEY (defaults: a fixed seed, scale 1, off). */
export function fuzzOptions(env: Record<string, string | undefined> = process.env): { seed: number; scale: number; isSurvey: boolean } {
  return { seed: env.FUZZ_SEED ? Number(env.FUZZ_SEED) : DEFAULT_FUZZ_SEED, scale: env.FUZZ_SCALE ? Number(env.FUZZ_SCALE) : 1, isSurvey: env.FUZZ_SURVEY === "1" };
}

/** The fixed seed CI runs with (FUZZ_SEED overrides it to explore). */
export const DEFAULT_FUZZ_SEED = 20_260_905;
