#!/usr/bin/env node
/**
 * Lays out everything gpu-origin needs at run time, and nothing else, in one folder: what the
 * container images copy into /app (deploy/origin/Dockerfile.*), and what test/node/deploy/ runs the
 * image's command in.
 *
 *   node deploy/origin/stage-runtime.mjs <out-dir>      (after `npm run build:origin`)
 *
 * <out-dir>/
 *   dist/gpu-origin/   main.js, main.js.map and package.json from the build
 *   models/<name>/     manifest.json, model.onnx (put there by src/cli/link-models.mjs) and profile.json
 *   node_modules/      the packages the bundle imports (its external imports in dist/gpu-origin/meta.json)
 *                      and their dependencies, as installed here: production packages only (no tsx, no
 *                      wrangler, not the packages that only ship model weights or the Worker's
 *                      onnxruntime-web); of onnxruntime-node's prebuilt binaries only this platform's
 *                      (bin/napi-v6/<platform>/<arch>: ~45 MB of its ~290 MB), including the CUDA provider
 *                      libraries when the install fetched them (ONNXRUNTIME_NODE_INSTALL=cuda12)
 *
 * Fails (exit 1) when the build is missing, a model has no weights, or a dependency is not installed.
 */
import { builtinModules } from "node:module";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const outArg = process.argv[2];
if (!outArg) fail("usage: node deploy/origin/stage-runtime.mjs <out-dir>");
const out = resolve(outArg);

/** Stops with a message (no stack: these are expected failures). */
function fail(message) {
  console.error(`stage-runtime: ${message}`);
  process.exit(1);
}

// 1. The bundle.
const distDir = join(root, "dist", "gpu-origin");
for (const file of ["main.js", "main.js.map", "package.json", "meta.json"]) {
  if (!existsSync(join(distDir, file))) fail(`${relative(root, join(distDir, file))} is missing: run \`npm run build:origin\` first`);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "dist", "gpu-origin"), { recursive: true });
for (const file of ["main.js", "main.js.map", "package.json"]) cpSync(join(distDir, file), join(out, "dist", "gpu-origin", file));

// 2. The models: what gpu-origin reads from --models-dir.
const modelNames = readdirSync(join(root, "models")).filter((name) => existsSync(join(root, "models", name, "manifest.json")));
for (const name of modelNames) {
  const from = join(root, "models", name);
  if (!existsSync(join(from, "model.onnx"))) fail(`models/${name}/model.onnx is missing: run \`node src/cli/link-models.mjs\` (npm install does)`);
  mkdirSync(join(out, "models", name), { recursive: true });
  for (const file of ["manifest.json", "model.onnx", "profile.json"]) {
    if (existsSync(join(from, file))) cpSync(join(from, file), join(out, "models", name, file));
  }
}

// 3. node_modules: the closure of the bundle's external imports over installed dependencies.
const builtins = new Set(builtinModules);
const meta = JSON.parse(readFileSync(join(distDir, "meta.json"), "utf8"));
const imported = new Set();
for (const output of Object.values(meta.outputs)) {
  for (const { path, external } of output.imports) {
    if (!external || path.startsWith("node:") || builtins.has(path)) continue;
    imported.add(packageNameOf(path));
  }
}

/** "@scope/name/sub/path" -> "@scope/name"; "name/sub" -> "name". */
function packageNameOf(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** The folder `name` resolves to from the package folder `fromDir`, walking up as Node does; undefined when not installed. */
function findPackage(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

/** Only this platform's prebuilt binaries of onnxruntime-node (bin/napi-v6/<platform>/<arch>). */
const keepBinary = (path) => {
  const match = /onnxruntime-node[\\/]bin[\\/]napi-v6[\\/]([^\\/]+)(?:[\\/]([^\\/]+))?/.exec(path);
  if (!match) return true;
  return match[1] === process.platform && (match[2] === undefined || match[2] === process.arch);
};

const copied = new Set();
const queue = [...imported].map((name) => ({ name, from: root, by: "dist/gpu-origin/main.js" }));
while (queue.length) {
  const { name, from, by } = queue.shift();
  const dir = findPackage(name, from);
  if (!dir) fail(`${name} (imported by ${by}) is not installed: run \`npm ci\``);
  if (copied.has(dir)) continue;
  copied.add(dir);
  const target = join(out, relative(root, dir));
  // A package's own node_modules holds other packages: they are copied when something needs them.
  cpSync(dir, target, { recursive: true, filter: (path) => !relative(dir, path).split(sep).includes("node_modules") && keepBinary(path) });
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
  for (const [peer, info] of Object.entries(manifest.peerDependenciesMeta ?? {})) if (info?.optional) optional.add(peer);
  const needed = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
  for (const dependency of Object.keys(needed)) {
    // An optional dependency that was not installed (another platform's binary, say) is not needed.
    if (optional.has(dependency) && !findPackage(dependency, dir)) continue;
    queue.push({ name: dependency, from: dir, by: manifest.name });
  }
}

/** Bytes under `path`. */
function sizeOf(path) {
  const stat = statSync(path);
  return stat.isDirectory() ? readdirSync(path).reduce((sum, entry) => sum + sizeOf(join(path, entry)), 0) : stat.size;
}
const mib = (path) => `${(sizeOf(path) / 2 ** 20).toFixed(1)} MiB`;
console.log(`stage-runtime: ${outArg}: dist ${mib(join(out, "dist"))}, models (${modelNames.join(", ")}) ${mib(join(out, "models"))}, node_modules (${copied.size} packages: ${[...imported].join(", ")} and their dependencies) ${mib(join(out, "node_modules"))}`);
