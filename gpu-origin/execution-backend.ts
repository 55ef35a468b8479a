/**
 * Execution backends of the origin: where a session runs. The entry point of the backends, as
 * onnxruntime-node's index registers its backend: importing this module registers the built-in
 * ones under the Provider names of --provider (`cpu`, `cuda`, `webgpu`, code in ort-backends.ts; `timed`,
 * a stand-in accelerator for load tests, in timed-backend.ts),
 * and `loadBackend(provider, threads)` resolves a name through the registry (backend-registry.ts).
 * A backend whose hardware or libraries are missing fails to load with ProviderUnavailableError
 * saying what to install. The `satisfies` clause makes a Provider without a backend a type error.
 */
import { registerBackend, type BackendLoader } from "./backend-registry";
import type { Provider } from "./origin-config";
import { loadCpuBackend, loadCudaBackend, loadWebGpuBackend } from "./ort-backends";
import { loadTimedBackend } from "./timed-backend";

export { loadBackend, ProviderUnavailableError, registerBackend, registeredBackends, type BackendLoader, type ExecutionBackend, type OriginSession } from "./backend-registry";

/** One backend per Provider, in --provider's order. */
export const BUILTIN_BACKENDS = { cpu: loadCpuBackend, cuda: loadCudaBackend, webgpu: loadWebGpuBackend, timed: loadTimedBackend } satisfies Record<Provider, BackendLoader>;

for (const [name, loader] of Object.entries(BUILTIN_BACKENDS)) registerBackend(name, loader);
