/**
 * The built-in execution backends, on onnxruntime: `cpu` and `cuda` use onnxruntime-node (cuda
 * needs the package installed with ONNXRUNTIME_NODE_INSTALL=cuda12, which adds the CUDA provider
 * libraries); `webgpu` uses onnxruntime-web's WebGPU EP on Dawn from the npm `webgpu` package,
 * loaded dynamically because it is not a dependency. A backend whose hardware or libraries are
 * missing fails to load with ProviderUnavailableError saying what to install.
 * gpu-origin/execution-backend.ts registers them by name.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ortNode from "onnxruntime-node";
import { datatypeOfOrtType, ortTypeOf, type TensorData } from "../src/protocol/datatypes";
import type { Tensor } from "../src/protocol/tensor";
import { ProviderUnavailableError, type BackendLoader, type ExecutionBackend } from "./backend-registry";

/** Minimal common surface of onnxruntime-node and onnxruntime-web. */
interface OrtModule {
  Tensor: new (type: string, data: TensorData, dims: readonly number[]) => unknown;
  InferenceSession: { create(model: string | Uint8Array, options: object): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, { type: string; dims: readonly number[]; data: unknown }>> }> };
}

/**
 * Session options for `threads` intra-op threads (0: onnxruntime's default), which do not spin
 * while they wait for work: by default onnxruntime's idle pool threads spin, and between batches
 * a replica then burns about a core (silero-vad, 2 threads, a 1 ms batch every 10 ms: 1.08 cores
 * against 0.12, the batch 0.97 against 1.10 ms), CPU that the edge and other replicas on the
 * machine need.
 */
const threadOptions = (threads: number) => ({
  ...(threads > 0 && { intraOpNumThreads: threads, interOpNumThreads: 1 }),
  extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
});

/** onnxruntime-node on the CPU: always available. */
export const loadCpuBackend: BackendLoader = async (threads) =>
  ortBackend("cpu", ortNode as unknown as OrtModule, (path) => path, { executionProviders: ["cpu"], ...threadOptions(threads) });

/** onnxruntime-node's CUDA provider: needs its CUDA libraries (a cuda12 install), an NVIDIA driver, CUDA 12 and cuDNN 9. */
export const loadCudaBackend: BackendLoader = async (threads) => {
  checkCudaLibraries();
  return ortBackend("cuda", ortNode as unknown as OrtModule, (path) => path, { executionProviders: ["cuda"], ...threadOptions(threads) });
};

/** onnxruntime-web's WebGPU provider on Dawn: needs the npm package `webgpu` and a WebGPU adapter. */
export const loadWebGpuBackend: BackendLoader = async () =>
  ortBackend("webgpu", await loadOrtWebGpu(), (path) => new Uint8Array(readFileSync(path)), { executionProviders: ["webgpu"] });

function ortBackend(provider: string, ort: OrtModule, source: (path: string) => string | Uint8Array, options: object): ExecutionBackend {
  return {
    provider,
    async createSession(modelPath, manifest) {
      let session: Awaited<ReturnType<OrtModule["InferenceSession"]["create"]>>;
      try {
        session = await ort.InferenceSession.create(source(modelPath), { graphOptimizationLevel: "all", ...options });
      } catch (error) {
        if (provider === "cpu") throw error;
        throw new ProviderUnavailableError(`execution provider '${provider}' could not create a session: ${(error as Error).message}`);
      }
      return {
        async run(inputs) {
          const feeds: Record<string, unknown> = {};
          for (const t of inputs) feeds[t.name] = new ort.Tensor(ortTypeOf(t.datatype), t.data, t.shape);
          const results = await session.run(feeds);
          return manifest.outputs.map((spec): Tensor => {
            const value = results[spec.name];
            if (!value) throw new Error(`model ${manifest.name} returned no output '${spec.name}'`);
            return { name: spec.name, datatype: datatypeOfOrtType(value.type) ?? spec.datatype, shape: value.dims.slice(), data: value.data as TensorData };
          });
        },
      };
    },
  };
}

/** onnxruntime-node's CUDA provider is a separate library that only a cuda12 install downloads. */
function checkCudaLibraries(): void {
  const packageDir = dirname(dirname(createRequire(import.meta.url).resolve("onnxruntime-node")));
  const binDir = join(packageDir, "bin", "napi-v6", process.platform, process.arch);
  let files: string[] = [];
  try {
    files = readdirSync(binDir);
  } catch {
    // no prebuilt binaries for this platform: reported below
  }
  if (!files.some((f) => /onnxruntime_providers_cuda/.test(f))) {
    throw new ProviderUnavailableError(
      "execution provider 'cuda' is not installed: reinstall onnxruntime-node with its CUDA libraries on a Linux x64 host " +
        "with an NVIDIA driver, CUDA 12 and cuDNN 9: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (or `npm ci` with that variable set)",
    );
  }
}

/** onnxruntime-web's WebGPU build on Dawn's Node binding (npm `webgpu`), which must be installed separately. */
async function loadOrtWebGpu(): Promise<OrtModule> {
  const dawnSpecifier = "webgpu";
  let dawn: { create(flags: string[]): { requestAdapter(): Promise<unknown> }; globals: object };
  try {
    dawn = (await import(dawnSpecifier)) as typeof dawn;
  } catch {
    throw new ProviderUnavailableError("execution provider 'webgpu' needs the npm package `webgpu` (Dawn for Node): run `npm install --no-save webgpu` on the GPU host");
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  Object.defineProperty(globalThis.navigator, "gpu", { value: gpu, configurable: true });
  if (!(await gpu.requestAdapter())) throw new ProviderUnavailableError("execution provider 'webgpu': no WebGPU adapter was found (no GPU, or no Vulkan/Metal/D3D12 driver)");
  const ortWebSpecifier = "onnxruntime-web/webgpu";
  const ort = (await import(ortWebSpecifier)) as OrtModule & { env: { wasm: { numThreads: number } } };
  ort.env.wasm.numThreads = 1;
  return ort;
}
