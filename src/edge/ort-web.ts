/**
 * onnxruntime-web (WASM) set up to run inside workerd.
 *
 * workerd forbids compiling WebAssembly from bytes at run time, so the ORT kernel is imported as a
 * precompiled `WebAssembly.Module` (wrangler's CompiledWasm rule) and `WebAssembly.instantiate` is
 * wrapped to instantiate that module whenever ORT asks for its binary. One thread, no proxy worker:
 * workerd has neither SharedArrayBuffer threads nor Web Workers.
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

/** Creates an inference session from model bytes inside workerd. */
export async function createOrtWebSession(modelBytes: ArrayBuffer): Promise<ort.InferenceSession> {
  configureOrtForWorkerd();
  return ort.InferenceSession.create(new Uint8Array(modelBytes), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

export { ort };
