/**
 * gpu-origin's execution backends by name, the shape of onnxruntime-common's `registerBackend`:
 * what a backend is (ExecutionBackend, creating OriginSessions), the error a backend that cannot
 * run here throws, and the registry `loadBackend` resolves a --provider through. The built-in
 * backends are registered by gpu-origin/execution-backend.ts; their code is in ort-backends.ts.
 */
import type { ModelManifest } from "../src/models/manifest";
import type { Tensor } from "../src/protocol/tensor";
import { NamedRegistry, UnknownNameError } from "../src/runner/named-registry";

/** A loaded model: runs one batch (inputs in manifest order) and returns every manifest output in order. */
export interface OriginSession {
  run(inputs: Tensor[]): Promise<Tensor[]>;
}

/** Creates sessions on one execution provider. */
export interface ExecutionBackend {
  /** The name it was registered as (a --provider value). */
  readonly provider: string;
  createSession(modelPath: string, manifest: ModelManifest): Promise<OriginSession>;
}

/**
 * Loads a backend after checking that it can run here (throwing ProviderUnavailableError when it
 * cannot). `threads` is onnxruntime's intra-op thread count per session; 0 keeps its default.
 */
export type BackendLoader = (threads: number) => Promise<ExecutionBackend>;

/** The provider cannot run here; the message says what is missing and how to install it. */
export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
}

const backends = new NamedRegistry<BackendLoader>("execution backend");

/** Registers a backend loader as `name`. Throws when the name is taken by another loader. */
export function registerBackend(name: string, loader: BackendLoader): void {
  backends.register(name, loader);
}

/** Names of the registered backends, in registration order. */
export function registeredBackends(): string[] {
  return backends.names();
}

/**
 * The backend registered as `name`, loaded. Throws ProviderUnavailableError when it cannot run here,
 * or when no backend has that name (the message lists the registered ones).
 */
export async function loadBackend(name: string, threads: number): Promise<ExecutionBackend> {
  let loader: BackendLoader;
  try {
    loader = backends.resolve(name);
  } catch (error) {
    if (error instanceof UnknownNameError) throw new ProviderUnavailableError(`execution provider: ${error.message}`);
    throw error;
  }
  return loader(threads);
}
