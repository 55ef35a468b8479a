/**
 * The one place that chooses where a model's batches run, from its (possibly overridden) placement.
 * Runners are kept per isolate, so a model's session is created once and reused.
 */
import type { RuntimeConfig } from "../config";
import { OrtWebRunner } from "../edge/ort-web-runner";
import type { CatalogEntry } from "../models/catalog";
import { originPoolFor } from "../origin/origin-pool";
import { OriginPoolRunner } from "../origin/origin-pool-runner";
import { unavailable } from "../protocol/errors";
import type { ModelRunner } from "./model-runner";

const runners = new Map<string, ModelRunner>();

/** The runner for a model under `config`, created on first use. */
export function runnerFor(entry: CatalogEntry, config: RuntimeConfig): ModelRunner {
  const { manifest } = entry;
  const key = manifest.placement === "origin" ? `${manifest.name}@origin:${config.originWire}` : `${manifest.name}@edge`;
  let runner = runners.get(key);
  if (!runner) {
    if (manifest.placement === "origin") {
      if (!config.originSecret) throw unavailable(`model '${manifest.name}' runs on the origin pool, which is not configured`, 5);
      runner = new OriginPoolRunner(manifest, originPoolFor(config.originSecret, config.originUrls), config.originWire);
    } else {
      runner = new OrtWebRunner(manifest, entry.weights);
    }
    runners.set(key, runner);
  }
  return runner;
}
