/**
 * The one place that picks where a model's batches run: the runner registered under the model's
 * (possibly overridden) placement (src/runner/registry.ts; builtin-runners.ts registers "edge" and
 * "origin"). Runners are kept per isolate, so a model's session is created once and reused; a
 * runner whose factory declares a config key is created again when that part of the config changes.
 */
import type { RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import "./builtin-runners";
import type { ModelRunner } from "./model-runner";
import { runnerFactory } from "./registry";

const runners = new Map<string, ModelRunner>();

/** The runner for a model under `config`, created on first use. */
export function runnerFor(entry: CatalogEntry, config: RuntimeConfig): ModelRunner {
  const { name, placement } = entry.manifest;
  const factory = runnerFactory(placement);
  const key = `${name}@${placement}:${factory.configKey?.(config) ?? ""}`;
  let runner = runners.get(key);
  if (!runner) {
    runner = factory.create(entry, config);
    runners.set(key, runner);
  }
  return runner;
}
