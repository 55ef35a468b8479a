/**
 * The memory benchmark's Worker (`npm run bench -- memory`, bench/memory.ts): one model, its
 * weights bundled as a Data module by its entry (bench/memory/entries/<model>.ts), run with
 * onnxruntime-web exactly as the edge runs it (src/edge/ort-web.ts: precompiled kernel, one thread,
 * graph optimisation "all", default CPU memory arena). The benchmark reads the workerd process's
 * memory from /proc between the calls; the Worker only does the work and reports tensor sizes and
 * the size of onnxruntime's WebAssembly memory.
 *
 * GET /live                               touches nothing of onnxruntime (the baseline is read after it)
 * GET /session?dims=320&warmRuns=20&warmMs=1000
 *                                         creates the session from the bundled weights, then runs
 *                                         batch 1 at `dims` until warmRuns or warmMs (at least once)
 * GET /run?batch=8&dims=320&iters=3       runs `iters` times one batch of `batch` rows
 *
 * Answers (JSON) carry the input and output tensors' dims and bytes of the last run,
 * `wasmBytes`, the byte length of onnxruntime's WebAssembly memory (it only grows), and `isolate`,
 * an id of this isolate (a new one means the Worker was reloaded and the session is gone).
 */
import { createOrtWebSession, ort, runQueued } from "../../src/edge/ort-web";

type Feeds = Record<string, ort.Tensor>;

/** A deterministic pseudo-random FP32 tensor (values in [0, 1)), as src/cli/profile.ts makes them. */
function floats(shape: number[]): ort.Tensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let seed = 12345;
  for (let i = 0; i < data.length; i++) data[i] = ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  return new ort.Tensor("float32", data, shape);
}

/** A batch of `batch` rows of each model; `dims` are its dynamic non-batch dims (rec: width; det: height, width). */
const FEEDS: Record<string, (batch: number, dims: number[]) => Feeds> = {
  "ppocr-cls": (batch) => ({ x: floats([batch, 3, 48, 192]) }),
  "ppocr-rec": (batch, [width = 320]) => ({ x: floats([batch, 3, 48, width]) }),
  "ppocr-det": (batch, [height = 640, width = height]) => ({ x: floats([batch, 3, height, width]) }),
  "silero-vad": (batch) => ({ input: floats([batch, 512]), state: floats([2, batch, 128]), sr: new ort.Tensor("int64", BigInt64Array.of(16000n), []) }),
};

/** onnxruntime's WebAssembly memories, caught as they are handed to (or exported by) an instance. */
const memories = new Set<WebAssembly.Memory>();

function collectMemories(namespaces: unknown): void {
  if (!namespaces || typeof namespaces !== "object") return;
  for (const value of Object.values(namespaces)) {
    if (value instanceof WebAssembly.Memory) memories.add(value);
    else if (value && typeof value === "object" && !(value instanceof WebAssembly.Module)) for (const inner of Object.values(value)) if (inner instanceof WebAssembly.Memory) memories.add(inner);
  }
}

// Installed before src/edge/ort-web.ts wraps WebAssembly.instantiate (it does on the first session),
// so its wrapper calls this one: the Emscripten build imports its (shared) memory, so the imports
// hold it; the exports are looked at too.
const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
(WebAssembly as { instantiate: unknown }).instantiate = async (source: unknown, imports?: WebAssembly.Imports) => {
  collectMemories(imports);
  const result = await instantiate(source, imports);
  const instance = result instanceof WebAssembly.Instance ? result : (result as { instance?: WebAssembly.Instance }).instance;
  collectMemories({ exports: instance?.exports });
  return result;
};

/** Identifies this isolate in every answer: the benchmark notices when wrangler or workerd replaced it (its memory is then void). */
let isolateId: string | undefined;
const idOfIsolate = () => (isolateId ??= crypto.randomUUID());

const wasmBytes = () => Math.max(0, ...[...memories].map((memory) => memory.buffer.byteLength));

const described = (tensors: Record<string, ort.Tensor>) =>
  Object.entries(tensors).map(([name, tensor]) => ({ name, dims: [...tensor.dims], bytes: (tensor.data as ArrayBufferView).byteLength }));

const intParam = (url: URL, name: string, fallback: number, max: number) => Math.max(1, Math.min(max, Math.floor(Number(url.searchParams.get(name) ?? fallback)) || fallback));

/** The Worker for `model`, whose ONNX bytes are `weights`. */
export function memoryWorker(model: string, weights: ArrayBuffer): { fetch(request: Request): Promise<Response> } {
  const feedsOf = FEEDS[model];
  if (!feedsOf) throw new Error(`memory Worker: no inputs for model ${model}`);
  let session: ort.InferenceSession | undefined;

  async function run(batch: number, dims: number[], iters: number) {
    const feeds = feedsOf!(batch, dims);
    let outputs: Record<string, ort.Tensor> = {};
    const startMs = performance.now();
    for (let i = 0; i < iters; i++) outputs = (await runQueued(session!, feeds))!;
    return { inputs: described(feeds), outputs: described(outputs), ms: (performance.now() - startMs) / iters };
  }

  return {
    async fetch(request: Request): Promise<Response> {
      const url = new URL(request.url);
      const dims = (url.searchParams.get("dims") ?? "").split(",").filter(Boolean).map(Number);
      try {
        switch (url.pathname) {
          case "/live":
            return Response.json({ live: true, model, weightsBytes: weights.byteLength, isolate: idOfIsolate() });
          case "/session": {
            if (session) return Response.json({ error: "session exists" }, { status: 409 });
            session = await createOrtWebSession(weights);
            const warmRuns = intParam(url, "warmRuns", 20, 200);
            const warmMs = intParam(url, "warmMs", 1_000, 10_000);
            const startMs = performance.now();
            let runs = 0;
            let last;
            do {
              last = await run(1, dims, 1);
              runs++;
            } while (runs < warmRuns && performance.now() - startMs < warmMs);
            return Response.json({ model, isolate: idOfIsolate(), warmRuns: runs, ...last, wasmBytes: wasmBytes() });
          }
          case "/run": {
            if (!session) return Response.json({ error: "no session yet (a new isolate?)", isolate: idOfIsolate() }, { status: 409 });
            const result = await run(intParam(url, "batch", 1, 1024), dims, intParam(url, "iters", 3, 20));
            return Response.json({ model, isolate: idOfIsolate(), ...result, wasmBytes: wasmBytes() });
          }
          default:
            return Response.json({ error: "not found" }, { status: 404 });
        }
      } catch (error) {
        return Response.json({ error: String(error) }, { status: 500 });
      }
    },
  };
}
