/**
 * Loads BATCH's hourly Twitter MAP fits from bench/data/batch-twitter-maps (a copy of
 * ../shared/traces/batch-twitter-maps; see bench/data/README.md): MAP{h}_D0 and MAP{h}_D1,
 * comma-separated rows, rates per second. Also the Azure LLM trace's arrival times (bench/data).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type MarkovianArrival, toMarkovianArrival } from "../src/planner/index";

/** The repository root (the parent of bench/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Where the Twitter MAPs live. */
export const TWITTER_MAPS_DIR = resolve(REPO_ROOT, "bench/data/batch-twitter-maps");

/** The Azure LLM conversation trace's arrival times, ms after the first (bench/data/README.md). */
export function loadAzureArrivalsMs(): Float64Array {
  const path = resolve(REPO_ROOT, "bench/data/azure-llm-2023-conv-arrivals-ms.txt");
  if (!existsSync(path)) throw new Error(`the Azure trace's arrival times are missing: expected ${path}`);
  return Float64Array.from(readFileSync(path, "utf8").trim().split(/\r?\n/), Number);
}

/** The 24 hourly MAPs, hour 1 first; throws a clear error when the folder is missing. */
export function loadTwitterMaps(): { hour: number; arrival: MarkovianArrival }[] {
  if (!existsSync(TWITTER_MAPS_DIR)) throw new Error(`BATCH's Twitter MAPs are missing: expected ${TWITTER_MAPS_DIR}/MAP{1..24}_D0 and _D1 (see bench/data/README.md)`);
  const read = (name: string): number[][] =>
    readFileSync(resolve(TWITTER_MAPS_DIR, name), "utf8")
      .trim()
      .split(/\r?\n/)
      .map((line) => line.split(",").map(Number));
  return Array.from({ length: 24 }, (_, i) => i + 1).map((hour) => ({ hour, arrival: toMarkovianArrival({ kind: "map", D0: read(`MAP${hour}_D0`), D1: read(`MAP${hour}_D1`) }) }));
}
