/**
 * How the running system applies plans: each isolate (the Worker's and the buffers') keeps every
 * model's last published plan, refreshed from the model's controller in the background at most once
 * per PLAN_REFRESH_MS (a buffer also learns it from every telemetry reply), and serves requests
 * with the manifest under that plan. So a new plan reaches routing and batching within about a
 * second, and the hot path never waits for the controller (a refresh starts once the request
 * that found it due has its answer). The origin pool's members are cached
 * the same way from the registry.
 */
import type { ModelManifest } from "../models/manifest";
import { controllerOf, registryOf } from "./model-controller";
import { effectiveManifest, type PublishedPlan } from "./plan";

/** Longest age of a cached plan or member list before a background refresh, ms. */
export const PLAN_REFRESH_MS = 1000;

interface Cached<T> {
  value?: T;
  fetchedAtMs: number;
  refreshing?: Promise<void>;
}

const plans = new Map<string, Cached<PublishedPlan>>();
const pool: Cached<string[]> = { fetchedAtMs: -Infinity };

/** Records a published plan of `model` (an older version than the one known is ignored). */
export function learnPlan(model: string, published: PublishedPlan, nowMs: number): void {
  const entry = plans.get(model);
  if (entry?.value && entry.value.version > published.version) return;
  plans.set(model, { ...entry, value: published, fetchedAtMs: nowMs });
}

/** The last known published plan of `model`. */
export function knownPlan(model: string): PublishedPlan | undefined {
  return plans.get(model)?.value;
}

/** The manifest to serve `manifest`'s model with now: under its last known plan (the manifest itself until one is known). */
export function servingManifest(manifest: ModelManifest): ModelManifest {
  return effectiveManifest(manifest, plans.get(manifest.name)?.value?.plan);
}

/**
 * Starts a background refresh of `model`'s plan from its controller when the known one is older
 * than PLAN_REFRESH_MS (or none is known); returns it (undefined when none is due). Callers start it
 * once their answer is ready, so the controller's call never delays the request that found it due.
 */
export function refreshPlan(env: Env, model: string, nowMs: number): Promise<void> | undefined {
  let entry = plans.get(model);
  if (!entry) plans.set(model, (entry = { fetchedAtMs: -Infinity }));
  if (entry.refreshing || nowMs - entry.fetchedAtMs < PLAN_REFRESH_MS) return undefined;
  const refreshing = controllerOf(env, model)
    .published(model)
    .then((published) => learnPlan(model, published, Date.now()))
    // The controller unreachable: keep serving the known plan; try again after the interval.
    .catch(() => void (entry.fetchedAtMs = Date.now()))
    .finally(() => void (plans.get(model)!.refreshing = undefined));
  entry.refreshing = refreshing;
  return refreshing;
}

/**
 * The origin pool's member base URLs: from the registry, cached for PLAN_REFRESH_MS (the first call
 * in an isolate waits for it; later ones refresh in the background). `fallback` (the static
 * ORIGIN_URLS) stands in while the registry cannot be reached.
 */
export async function poolMembers(env: Env, nowMs: number, fallback: readonly string[]): Promise<readonly string[]> {
  if (!pool.refreshing && nowMs - pool.fetchedAtMs >= PLAN_REFRESH_MS) {
    pool.refreshing = registryOf(env)
      .members()
      .then((urls) => void (pool.value = urls))
      .catch(() => undefined)
      .finally(() => {
        pool.fetchedAtMs = Date.now();
        pool.refreshing = undefined;
      });
  }
  if (pool.value === undefined && pool.refreshing) await pool.refreshing;
  return pool.value ?? fallback;
}
