/**
 * Benchmark-only Worker: times back-to-back `session.run` calls of a shipped model inside workerd,
 * the same runtime the edge uses, so the benchmark can compare served throughput with the raw limit.
 * GET /raw?model=ppocr-cls&batch=16&iters=20 → {"ms": [...]}: per-run times of `iters` back-to-back
 * runs, each averaged over `repeat` runs (workerd's clock ticks in whole ms, so fast models need
 * repeats). One warm-up run is not counted.
 */
import { OrtWebRunner } from "../../src/edge/ort-web-runner";
import { CATALOG } from "../../src/models/catalog";
import { allocateTensorData } from "../../src/protocol/datatypes";
import type { Tensor } from "../../src/protocol/tensor";

export { BatchBuffer } from "../../src/buffer/batch-buffer";

const runners = new Map<string, OrtWebRunner>();

/** Inputs of `batch` rows for a model: fixed dims from the manifest, dynamic ones from `dims`. */
function inputsFor(name: string, batch: number, dims: number[]): Tensor[] {
  const { manifest } = CATALOG.get(name)!;
  let nextDim = 0;
  return manifest.inputs.map((spec) => {
    const shape = spec.shape.map((d, axis) => (axis === spec.batchAxis ? batch : d === -1 ? dims[nextDim++]! : d));
    const data = allocateTensorData(spec.datatype, shape.reduce((a, b) => a * b, 1));
    if (spec.datatype === "FP32") for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
    if (spec.name === "sr") data[0] = 16000n;
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/v2/health/live") return Response.json({ live: true });
    const name = url.searchParams.get("model") ?? "";
    const entry = CATALOG.get(name);
    if (url.pathname !== "/raw" || !entry) return Response.json({ error: "not found" }, { status: 404 });
    const batch = Math.max(1, Math.min(64, Number(url.searchParams.get("batch") ?? 1)));
    const iters = Math.max(1, Math.min(200, Number(url.searchParams.get("iters") ?? 10)));
    const repeat = Math.max(1, Math.min(100, Number(url.searchParams.get("repeat") ?? 1)));
    const dims = (url.searchParams.get("dims") ?? "").split(",").filter(Boolean).map(Number);
    let runner = runners.get(name);
    if (!runner) runners.set(name, (runner = new OrtWebRunner(entry.manifest, entry.weights)));
    const inputs = inputsFor(name, batch, dims);
    await runner.run(inputs);
    const ms: number[] = [];
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      for (let r = 0; r < repeat; r++) await runner.run(inputs);
      ms.push((performance.now() - start) / repeat);
    }
    return Response.json({ model: name, batch, ms });
  },
};
