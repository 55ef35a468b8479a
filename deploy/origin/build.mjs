#!/usr/bin/env node
/**
 * Production build of gpu-origin (`npm run build:origin`): bundles gpu-origin/main.ts and the src/
 * modules it imports into one plain-JavaScript ES module, dist/gpu-origin/main.js, so the origin
 * runs on `node` alone, without tsx or the TypeScript sources. Packages from node_modules stay
 * external (imported at run time): onnxruntime-node loads native libraries from its own folder, and
 * keeping every package external leaves the dependency versions to the lock file.
 *
 * Writes, in dist/gpu-origin/:
 *   main.js      the bundle (not minified: stack traces stay readable)
 *   main.js.map  its source map, without the sources (`node --enable-source-maps` maps traces to .ts lines)
 *   package.json {"type": "module"}, so Node loads main.js as ESM wherever dist/ is copied
 *   meta.json    esbuild's metafile: inputs, and the bare imports left to node_modules, which
 *                deploy/origin/stage-runtime.mjs copies into the image and the tests check
 *
 * Plain JavaScript, like src/cli/link-models.mjs, so it runs with nothing compiled first.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const outDir = join(root, "dist", "gpu-origin");

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ["gpu-origin/main.ts"],
  outfile: join(outDir, "main.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  packages: "external",
  sourcemap: "linked",
  sourcesContent: false,
  metafile: true,
  logLevel: "warning",
  legalComments: "none",
  banner: { js: "// gpu-origin production bundle: built by `npm run build:origin` (deploy/origin/build.mjs) from gpu-origin/main.ts; do not edit." },
});

writeFileSync(join(outDir, "package.json"), `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`);
writeFileSync(join(outDir, "meta.json"), JSON.stringify(result.metafile));

const bundle = join(outDir, "main.js");
console.log(`gpu-origin: built ${relative(root, bundle)} (${(statSync(bundle).size / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} modules)`);
