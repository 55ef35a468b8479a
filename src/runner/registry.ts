/**
 * Runners by name. The names are the Placement values of the manifests ("edge", "origin"), so a
 * model's (possibly overridden) placement selects its runner by name; builtin-runners.ts registers
 * the two built-in ones and runner-for.ts keeps the created runners per isolate. Another runner
 * (say, a second origin protocol) is one `registerRunner` call and one Placement value away.
 */
import type { RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import type { ModelRunner } from "./model-runner";
import { NamedRegistry } from "./named-registry";

/** Creates the runner of one model. */
export interface RunnerFactory {
  /** A new runner for `entry` under `config`; throws an InferenceError when it cannot run here (e.g. no origin pool configured). */
  create(entry: CatalogEntry, config: RuntimeConfig): ModelRunner;
  /** The part of `config` a created runner depends on ("" when none): runner-for.ts creates a new runner when it changes. */
  configKey?(config: RuntimeConfig): string;
}

const runners = new NamedRegistry<RunnerFactory>("runner");

/** Registers a runner factory as `name` (a Placement value for the built-in ones). Throws when the name is taken by another factory. */
export function registerRunner(name: string, factory: RunnerFactory): void {
  runners.register(name, factory);
}

/** The factory registered as `name`; throws UnknownNameError listing the registered names. */
export function runnerFactory(name: string): RunnerFactory {
  return runners.resolve(name);
}

/** Names of the registered runners, in registration order. */
export function registeredRunners(): string[] {
  return runners.names();
}
