/**
 * Execution backends of the origin: where a session runs. `cpu` and `cuda` use onnxruntime-node
 * (cuda needs the package installed with ONNXRUNTIME_NODE_INSTALL=cuda12, which adds the CUDA
 * provider libraries); `webgpu` uses onnxruntime-web's WebGPU EP on Dawn from the npm `webgpu`
 * package, loaded dynamically because it is not a dependency. A backend whose hardware or libraries
 * are missing fails at start-up with ProviderUnavailableError saying what to install.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ortNode from "onnxruntime-node";
import type { ModelManifest } from "../src/models/manifest";
import { datatypeOfOrtType, ortTypeOf, type TensorData } from "../src/protocol/datatypes";
import type { Tensor } from "../src/protocol/tensor";
import type { Provider } from "./origin-config";

/** A loaded model: runs one batch (inputs in manifest order) and returns every manifest output in order. */
export interface OriginSession {
  run(inputs: Tensor[]): Promise<Tensor[]>;
}

/** Creates sessions on one execution provider. */
export interface ExecutionBackend {
  readonly provider: Provider;
  createSession(modelPath: string, manifest: ModelManifest): Promise<OriginSession>;
}

/** The provider cannot run here; the message says what is missing and how to install it. */
export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
}

/** Minimal common surface of onnxruntime-node and onnxruntime-web. */
interface OrtModule {
  Tensor: new (type: string, data: TensorData, dims: readonly number[]) => unknown;
  InferenceSession: { create(model: string | Uint8Array, options: object): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, { type: string; dims: readonly number[]; data: unknown }>> }> };
}

/** The backend for `provider`, after checking that it can run here. `threads` 0 keeps onnxruntime's default. */
export async function loadBackend(provider: Provider, threads: number): Promise<ExecutionBackend> {
  const threadOptions = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
  switch (provider) {
    case "cpu":
      return ortBackend("cpu", ortNode as unknown as OrtModule, (path) => path, { executionProviders: ["cpu"], ...threadOptions });
    case "cuda":
      checkCudaLibraries();
      return ortBackend("cuda", ortNode as unknown as OrtModule, (path) => path, { executionProviders: ["cuda"], ...threadOptions });
    case "webgpu":
      return ortBackend("webgpu", await loadOrtWebGpu(), (path) => new Uint8Array(readFileSync(path)), { executionProviders: ["webgpu"] });
  }
}

function ortBackend(provider: Provider, ort: OrtModule, source: (path: string) => string | Uint8Array, options: object): ExecutionBackend {
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
