/**
 * Test fixtures for the origin suite: manifests read from models/, deterministic inputs (seeded
 * LCG), signed fetches, and a reference onnxruntime-node session to compare against.
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { readManifest } from "../../../gpu-origin/read-manifest";
import type { ModelManifest } from "../../../src/models/manifest";
import { signHop } from "../../../src/origin/hop-signature";
import type { Tensor } from "../../../src/protocol/tensor";
import { seededFloats } from "../../fixtures/model-inputs";
import { TEST_SECRET } from "./origin-process";

export { seededFloats };

const root = join(import.meta.dirname, "..", "..", "..");

/** A model's validated manifest. */
export const manifestOf = (name: string): ModelManifest => readManifest(join(root, "models"), name);

/** silero-vad inputs for `rows` rows (audio from `seed`, zero state, 16 kHz). */
export function vadInputs(rows: number, seed: number): Tensor[] {
  return [
    { name: "input", datatype: "FP32", shape: [rows, 512], data: seededFloats(rows * 512, seed) },
    { name: "state", datatype: "FP32", shape: [2, rows, 128], data: new Float32Array(2 * rows * 128) },
    { name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.of(16000n) },
  ];
}

/** Runs a model directly with onnxruntime-node (the reference the pool must match). */
export async function runReference(name: string, inputs: Tensor[]): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(join(root, "models", name, "model.onnx"), { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = new ort.Tensor(t.datatype === "INT64" ? "int64" : "float32", t.data as Float32Array, t.shape);
  const results = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** fetch with hop-signature headers (optionally signed for a different body or time). */
export async function signedFetch(
  url: string,
  path: string,
  { method = "GET", body = "", signedBody = body, signedPath = path, signedHost = new URL(url).host, atMs = Date.now(), secret = TEST_SECRET, headers: extra = {} }: { method?: string; body?: string; signedBody?: string; signedPath?: string; signedHost?: string; atMs?: number; secret?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers = await signHop(secret, { method, host: signedHost, path: signedPath, body: signedBody }, atMs);
  return fetch(url + path, { method, headers: { ...extra, ...headers, "content-type": "application/json" }, ...(method === "POST" && { body }) });
}
