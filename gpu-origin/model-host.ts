/**
 * The models an origin serves: manifests read from models/<name>/manifest.json at start-up (a bad
 * manifest or an unknown --models name stops the process), then sessions created one by one. A
 * model whose session fails to load stays "failed": the server stays live, but is not ready and
 * answers 503 for that model. There is no API to load or unload models.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type ModelManifest } from "../src/models/manifest";
import { readManifest, readOriginServiceLine } from "./read-manifest";
import type { ExecutionBackend } from "./execution-backend";
import { ModelBatcher } from "./model-batcher";
import type { OriginConfig } from "./origin-config";

/** Where a model is in its life. */
export type ModelState = { state: "loading" } | { state: "ready"; batcher: ModelBatcher } | { state: "failed" };

/** A served model: its manifest, weights path and state. */
export interface HostedModel {
  manifest: ModelManifest;
  modelPath: string;
  status: ModelState;
}

/** The origin's models by name. */
export class ModelHost {
  readonly models = new Map<string, HostedModel>();

  /** Reads and validates the manifests of the configured models. Throws ConfigError. */
  constructor(private readonly config: Pick<OriginConfig, "modelsDir" | "models" | "maxBatch" | "windowMs" | "maxQueueRows">) {
    const names = config.models ?? readdirSync(config.modelsDir).filter((n) => existsSync(join(config.modelsDir, n, "manifest.json"))).sort();
    for (const name of names) {
      const file = join(config.modelsDir, name, "manifest.json");
      if (!existsSync(file)) throw new ConfigError(`gpu-origin: --models: no model '${name}' (no ${name}/manifest.json in --models-dir)`);
      const manifest = readManifest(config.modelsDir, name);
      this.models.set(name, { manifest, modelPath: join(config.modelsDir, name, "model.onnx"), status: { state: "loading" } });
    }
    if (!this.models.size) throw new ConfigError("gpu-origin: --models-dir: no models found");
  }

  /** Creates every model's session in turn; failures are logged (not served to clients) and leave the model "failed". */
  async load(backend: ExecutionBackend): Promise<void> {
    for (const model of this.models.values()) {
      try {
        const session = await backend.createSession(model.modelPath, model.manifest);
        const { maxBatch, windowMs, maxQueueRows } = this.config;
        const prior = readOriginServiceLine(this.config.modelsDir, model.manifest.name);
        model.status = { state: "ready", batcher: new ModelBatcher(model.manifest, session, { maxBatch, windowMs, maxQueueRows }, prior) };
      } catch (error) {
        model.status = { state: "failed" };
        console.error(`gpu-origin: model ${model.manifest.name} failed to load on ${backend.provider}: ${(error as Error).message}`);
      }
    }
  }

  /** Whether every model is ready (the protocol's "server ready" when not draining). */
  isEveryModelReady(): boolean {
    return [...this.models.values()].every((m) => m.status.state === "ready");
  }

  /** Batchers of the models that loaded. */
  batchers(): ModelBatcher[] {
    return [...this.models.values()].flatMap((m) => (m.status.state === "ready" ? [m.status.batcher] : []));
  }
}
