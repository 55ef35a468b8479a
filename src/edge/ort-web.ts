/**
 * onnxruntime-web (WASM) set up to run inside workerd.
 *
 * workerd forbids compiling WebAssembly from bytes at run time, so the ORT kernel is imported as a
 * precompiled `WebAssembly.Module` (wrangler's CompiledWasm rule) and `WebAssembly.instantiate` is
 * wrapped to instantiate that module whenever ORT asks for its binary. One thread, no proxy worker:
 * workerd has neither SharedArrayBuffer threads nor Web Workers.
 *
 * One ORT call at a time per isolate: onnxruntime-web's `run` saves the WASM stack pointer, awaits,
 * and restores it, so two runs that interleave (two models, or two buffers sharing this isolate)
 * free each other's stack and fail with a trap such as "RuntimeError: null function" (the runner
 * conformance suite's concurrency case caught it). Session creation and every run (runQueued) queue
 * on one isolate-wide chain; the WASM instance is single-threaded anyway.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasmModule from "onnxruntime-web/ort-wasm-simd-threaded.wasm";

let initialised = false;

function configureOrtForWorkerd(): void {
  if (initialised) return;
  initialised = true;
  const instantiate = WebAssembly.instantiate.bind(WebAssembly);
  // ORT calls instantiate(bytes, imports); hand it the precompiled module instead of the placeholder.
  (WebAssembly as { instantiate: unknown }).instantiate = (source: unknown, imports?: WebAssembly.Imports) =>
    source instanceof WebAssembly.Module
      ? instantiate(source, imports)
      : instantiate(ortWasmModule, imports).then((instance) => ({ module: ortWasmModule, instance }));
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  // A truthy binary stops ORT from resolving a URL for the .wasm; the wrapper above ignores it.
  ort.env.wasm.wasmBinary = new Uint8Array(8);
  ort.env.logLevel = "error";
}

/** The end of the isolate's chain of ORT calls. */
let lastCall: Promise<unknown> = Promise.resolve();

/** Runs `call` once every ORT call queued before it has settled. */
function oneAtATime<T>(call: () => Promise<T>): Promise<T> {
  const result = lastCall.then(call);
  // The chain keeps only the settling, not the value: a batch's outputs are not held until the next call.
  lastCall = result.then(
    () => undefined,
    () => undefined,
  );
  return result;
}

/** Creates an inference session from model bytes inside workerd (queued with every other ORT call of the isolate). */
export async function createOrtWebSession(modelBytes: ArrayBuffer): Promise<ort.InferenceSession> {
  configureOrtForWorkerd();
  return oneAtATime(() => ort.InferenceSession.create(new Uint8Array(modelBytes), { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
}

/**
 * Runs `session` on `feeds` once every ORT call queued before it has settled (`onStart` then);
 * resolves with undefined, without running, when `deadlineAtMs` has passed by then (its caller has
 * been answered: the queue's promises may belong to other requests, so a skip is not a rejection).
 */
export function runQueued(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, deadlineAtMs = Infinity, onStart?: () => void): Promise<ort.InferenceSession.ReturnType | undefined> {
  return oneAtATime(async () => {
    if (Date.now() > deadlineAtMs) return undefined;
    onStart?.();
    return session.run(feeds);
  });
}

export { ort };
