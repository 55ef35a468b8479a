/** Reads and validates a model's manifest from a models folder on disk (Node side: origin, CLIs, benchmarks, tests). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseManifest, type ModelManifest } from "../src/models/manifest";

/** The manifest of `name` in `modelsDir`; throws ConfigError naming the file and field when invalid. */
export function readManifest(modelsDir: string, name: string): ModelManifest {
  return parseManifest(JSON.parse(readFileSync(join(modelsDir, name, "manifest.json"), "utf8")), `models/${name}/manifest.json`);
}
