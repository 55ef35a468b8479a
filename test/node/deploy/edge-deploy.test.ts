/**
 * The edge's deploy path, with the real wrangler: `wrangler deploy --dry-run` bundles the Worker as
 * a deploy would (no account needed) and the upload holds no model weights (they deploy as static
 * assets, origin-only ones not at all); and the configuration is validated when the Worker starts, so
 * a bad var stops `wrangler dev` (and a deploy, which starts the Worker the same way) with a message
 * naming the field.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, ROOT, wranglerEnv } from "../../../src/cli/processes";

const wrangler = resolve(ROOT, "node_modules", ".bin", "wrangler");
const MIB = 1024 * 1024;
const outDir = mkdtempSync(join(tmpdir(), "edge-dry-run-"));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Runs wrangler to completion (at most `timeoutMs`, then its process group is killed); resolves with its exit code and output. */
function runWrangler(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(wrangler, args, { cwd: ROOT, detached: true, env: { ...wranglerEnv(), CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

/** Every model's weights file, by model (models/<name>/model.onnx, put there by the install step). */
function modelWeights(): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const name of readdirSync(join(ROOT, "models"))) {
    const file = join(ROOT, "models", name, "model.onnx");
    try {
      sizes.set(name, statSync(file).size);
    } catch {
      // a folder without weights
    }
  }
  return sizes;
}

describe("edge deploy", () => {
  it("bundles no model weights and uploads under 16 MiB", async () => {
    const { code, output } = await runWrangler(["deploy", "--dry-run", "--outdir", outDir]);
    expect(code, output).toBe(0);
    const [, totalKiB, gzipKiB] = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output) ?? [];
    console.log(`wrangler deploy --dry-run: upload ${totalKiB} KiB, gzip ${gzipKiB} KiB`);
    expect(Number(totalKiB) * 1024).toBeLessThan(16 * MIB);
    const files = readdirSync(outDir).map((name) => ({ name, size: statSync(join(outDir, name)).size }));
    expect(files.filter((f) => f.name.endsWith(".onnx"))).toEqual([]);
    // No module has the size of a model's weights (a Data module under another name).
    const weightSizes = new Set(modelWeights().values());
    expect(weightSizes.size).toBeGreaterThan(0);
    expect(files.filter((f) => weightSizes.has(f.size))).toEqual([]);
  }, 120_000);

  it("deploys only the edge models' weights as assets", () => {
    const assets = join(ROOT, "dist", "edge-assets", "models");
    const expected = [...modelWeights().keys()].filter((name) => {
      const manifest = JSON.parse(readFileSync(join(ROOT, "models", name, "manifest.json"), "utf8")) as { placement: string; pinned?: string[] };
      return !(manifest.placement === "origin" && manifest.pinned?.includes("placement"));
    });
    expect(expected).not.toContain("ppocr-det");
    expect(readdirSync(assets).sort()).toEqual(expected.map((name) => `${name}.onnx`).sort());
    for (const name of expected) expect(statSync(join(assets, `${name}.onnx`)).size).toBe(modelWeights().get(name));
  });

  it("bundles the benchmarks' Workers (no-op, profiling) with every Durable Object class wrangler.toml binds", async () => {
    // They run under the same wrangler.toml, so a class bound there and not exported stops them (the soak's baseline, the edge benchmark, `npm run profile`).
    const bound = [...readFileSync(join(ROOT, "wrangler.toml"), "utf8").matchAll(/^class_name = "(\w+)"/gm)].map((m) => m[1]);
    expect(bound).toContain("StreamBuffer");
    for (const script of ["src/edge/noop-worker.ts", "src/edge/profile-worker.ts"]) {
      const { code, output } = await runWrangler(["deploy", "--dry-run", "--outdir", join(outDir, script.replace(/\W/g, "-")), script]);
      expect({ script, code, notExported: /not exported/.test(output) }).toEqual({ script, code: 0, notExported: false });
    }
  }, 180_000);

  it("stops `wrangler dev` at start-up on a bad var, naming the field", async () => {
    const [a, b] = await Promise.all([freePort(), freePort()]);
    const dev = (port: number, variable: string) => runWrangler(["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", "0", "--show-interactive-dev-session=false", "--persist-to", join(outDir, `state-${port}`), "--var", variable]);
    const [overrides, hint] = await Promise.all([dev(a, 'MODEL_OVERRIDES:{"ppocr-cls":{"batching":{"windowMs":-1}}}'), dev(b, "BUFFER_LOCATION_HINT:mars")]);
    expect(overrides.code).not.toBe(0);
    expect(overrides.output).toContain("MODEL_OVERRIDES.ppocr-cls: batching.windowMs");
    expect(hint.code).not.toBe(0);
    expect(hint.output).toContain("BUFFER_LOCATION_HINT: must be one of wnam, enam");
  }, 120_000);
});
