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
import { runnerFactory, type RunnerFactory } from "./registry";

/** Created runners per factory (placements that share a factory share its runners), by model and config key. */
const runners = new WeakMap<RunnerFactory, Map<string, ModelRunner>>();

/** The runner for a model under `config`, created on first use. */
export function runnerFor(entry: CatalogEntry, config: RuntimeConfig): ModelRunner {
  const factory = runnerFactory(entry.manifest.placement);
  let created = runners.get(factory);
  if (!created) runners.set(factory, (created = new Map()));
  const key = `${entry.manifest.name}:${factory.configKey?.(config) ?? ""}`;
  let runner = created.get(key);
  if (!runner) created.set(key, (runner = factory.create(entry, config)));
  return runner;
}
