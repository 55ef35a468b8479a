/** Reads and validates a model's manifest from a models folder on disk (Node side: origin, CLIs, benchmarks, tests). */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseManifest, type ModelManifest } from "../src/models/manifest";
import { profileServiceLine } from "../src/models/profile";
import type { ServiceLine } from "../src/scheduler/service-estimate";

/** The manifest of `name` in `modelsDir`; throws ConfigError naming the file and field when invalid. */
export function readManifest(modelsDir: string, name: string): ModelManifest {
  return parseManifest(JSON.parse(readFileSync(join(modelsDir, name, "manifest.json"), "utf8")), `models/${name}/manifest.json`);
}

/** Where `name`'s profile.json is in `modelsDir`. */
export const profilePath = (modelsDir: string, name: string): string => join(modelsDir, name, "profile.json");

/** `name`'s profile.json in `modelsDir`, parsed (undefined when it has none). */
export function readProfile(modelsDir: string, name: string): unknown {
  const file = profilePath(modelsDir, name);
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
}

/** The origin service line of `name`'s profile.json in `modelsDir`, if it has one. */
export function readOriginServiceLine(modelsDir: string, name: string): ServiceLine | undefined {
  return profileServiceLine(readProfile(modelsDir, name), "origin");
}
