/**
 * gpu-origin's execution backends against the runner conformance suite: every registered backend
 * that can run here must pass it; every one that cannot is listed and must fail to load (or to
 * create a session) with ProviderUnavailableError saying what to install, never be skipped quietly.
 * On this project's CI (no GPU) that is: cpu and timed (the stand-in, on the CPU backend) pass, cuda
 * and webgpu are unavailable.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROVIDERS } from "../../../gpu-origin/origin-config";
import { loadBackend, ProviderUnavailableError, registeredBackends, type ExecutionBackend } from "../../../gpu-origin/execution-backend";
import { describeRunnerConformance } from "../../fixtures/runner-conformance";
import { conformanceReferences } from "../../setup/conformance-references";
import { manifestOf } from "../origin/fixtures";

const modelsDir = join(import.meta.dirname, "..", "..", "..", "models");
const modelPath = (model: string) => join(modelsDir, model, "model.onnx");

/** What an unavailable backend's message must name: the package or install step that brings it. */
const INSTALL_HINTS: Record<string, RegExp> = {
  cuda: /ONNXRUNTIME_NODE_INSTALL=cuda12/,
  webgpu: /npm install --no-save webgpu|no WebGPU adapter/,
};

/** Each registered backend, loaded and able to create a session, or the error that says why not. */
const probed = await Promise.all(
  registeredBackends().map(async (name) => {
    try {
      const backend = await loadBackend(name, 1);
      await backend.createSession(modelPath("silero-vad"), manifestOf("silero-vad"));
      return { name, backend };
    } catch (error) {
      return { name, error };
    }
  }),
);
const available = probed.flatMap((p) => ("backend" in p ? [p as { name: string; backend: ExecutionBackend }] : []));
const unavailable = probed.flatMap((p) => ("error" in p ? [p as { name: string; error: unknown }] : []));

describe("execution backend registry", () => {
  it("registers a backend under every --provider name", () => {
    expect(registeredBackends()).toEqual([...PROVIDERS]);
  });

  it("has cpu available everywhere", () => {
    expect(available.map((b) => b.name)).toContain("cpu");
  });

  it("refuses an unregistered provider with ProviderUnavailableError listing the registered ones", async () => {
    await expect(loadBackend("tpu", 1)).rejects.toThrow(new ProviderUnavailableError("execution provider: no execution backend is registered as 'tpu' (registered: cpu, cuda, webgpu, timed)"));
  });

  it(`lists the backends unavailable here: ${unavailable.map((b) => b.name).join(", ") || "none"}`, () => {
    expect(available.length + unavailable.length).toBe(PROVIDERS.length);
  });

  for (const { name, error } of unavailable) {
    it(`${name} is unavailable here and fails with ProviderUnavailableError naming what to install`, () => {
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as Error).message).toMatch(INSTALL_HINTS[name] ?? /install/);
    });
  }
});

for (const { name, backend } of available) {
  describeRunnerConformance({
    label: `gpu-origin backend '${name}'`,
    manifestOf,
    references: conformanceReferences,
    async open(model) {
      const session = await backend.createSession(modelPath(model), manifestOf(model));
      return (inputs) => session.run(inputs);
    },
  });
}
