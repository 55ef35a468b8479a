/**
 * Profiling Worker (not the edge's entry): times back-to-back `session.run` calls of a shipped model
 * inside workerd, the runtime the edge uses. `npm run profile` fits service times from it, and the
 * edge benchmark takes the raw limit from it. Run with `wrangler dev src/edge/profile-worker.ts`.
 * GET /raw?model=ppocr-cls&batch=16&iters=20 → {"ms": [...]}: per-run times of `iters` back-to-back
 * runs, each averaged over `repeat` runs (workerd's clock ticks in whole ms, so fast models need
 * repeats). Before the first measurement of a model and batch size, it runs for WARM_UP_MS
 * uncounted: V8 first runs WebAssembly from its baseline compiler and tiers up only hot code, and
 * until then a run can be 4x slower (ppocr-cls batch 1: ~18 ms before, ~4 ms after).
 * POST /v2/models/{model}/infer → reads the body, runs the model once at batch 1 on inputs made once
 * (not the body's) and answers a small JSON: the platform plus the kernel and none of the runtime,
 * which the edge benchmark sweeps as the best any runtime could do on the same stack.
 */
import { OrtWebRunner } from "./ort-web-runner";
import { loadWeights } from "./weights";
import { CATALOG } from "../models/catalog";
import { allocateTensorData } from "../protocol/datatypes";
import type { Tensor } from "../protocol/tensor";

export { BatchBuffer } from "../buffer/batch-buffer";
export { ModelController } from "../control/model-controller";
export { OriginRegistry } from "../control/origin-registry";
export { StreamBuffer } from "../stream/stream-buffer";

const runners = new Map<string, OrtWebRunner>();
/** Model and batch-size pairs already warmed up in this isolate. */
const warmed = new Set<string>();
const WARM_UP_MS = 1_500;

/** Inputs of `batch` rows for a model: fixed dims from the manifest or its first variant (Silero: 512 samples), other dynamic ones from `dims`. */
function inputsFor(name: string, batch: number, dims: number[]): Tensor[] {
  const { manifest } = CATALOG.get(name)!;
  let nextDim = 0;
  return manifest.inputs.map((spec) => {
    const variant = manifest.variants?.[0]?.shapes[spec.name];
    const fixedAt = (axis: number) => (variant?.[axis] ?? -1) !== -1 ? variant![axis]! : spec.shape[axis]!;
    const shape = spec.shape.map((_, axis) => (axis === spec.batchAxis ? batch : fixedAt(axis) === -1 ? dims[nextDim++]! : fixedAt(axis)));
    const data = allocateTensorData(spec.datatype, shape.reduce((a, b) => a * b, 1));
    if (spec.datatype === "FP32") for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
    if (spec.name === "sr") data[0] = 16000n;
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
}

/** Batch-1 inputs per model, made once (the kernel route's). */
const kernelInputs = new Map<string, Tensor[]>();

function runnerOf(name: string): OrtWebRunner {
  let runner = runners.get(name);
  if (!runner) runners.set(name, (runner = new OrtWebRunner(CATALOG.get(name)!.manifest, () => loadWeights(name))));
  return runner;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/v2/health/live") return Response.json({ live: true });
    const kernel = request.method === "POST" ? /^\/v2\/models\/([^/]+)\/infer$/.exec(url.pathname) : null;
    if (kernel && CATALOG.has(kernel[1]!)) {
      const name = kernel[1]!;
      await request.arrayBuffer();
      let inputs = kernelInputs.get(name);
      if (!inputs) kernelInputs.set(name, (inputs = inputsFor(name, 1, [])));
      await runnerOf(name).run(inputs);
      return Response.json({ model_name: name, outputs: [] });
    }
    const name = url.searchParams.get("model") ?? "";
    const entry = CATALOG.get(name);
    if (url.pathname !== "/raw" || !entry) return Response.json({ error: "not found" }, { status: 404 });
    const batch = Math.max(1, Math.min(64, Number(url.searchParams.get("batch") ?? 1)));
    const iters = Math.max(1, Math.min(200, Number(url.searchParams.get("iters") ?? 10)));
    const repeat = Math.max(1, Math.min(100, Number(url.searchParams.get("repeat") ?? 1)));
    const dims = (url.searchParams.get("dims") ?? "").split(",").filter(Boolean).map(Number);
    const runner = runnerOf(name);
    const inputs = inputsFor(name, batch, dims);
    const warmKey = `${name}/${batch}/${dims.join("x")}`;
    const warmUpStart = performance.now();
    do await runner.run(inputs);
    while (!warmed.has(warmKey) && performance.now() - warmUpStart < WARM_UP_MS);
    warmed.add(warmKey);
    const ms: number[] = [];
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      for (let r = 0; r < repeat; r++) await runner.run(inputs);
      ms.push((performance.now() - start) / repeat);
    }
    return Response.json({ model: name, batch, ms });
  },
};
