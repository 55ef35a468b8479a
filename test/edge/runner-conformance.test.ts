/**
 * The edge runner (OrtWebRunner: onnxruntime-web, WASM) inside real workerd against the runner
 * conformance suite, created through the runner registry as the buffers create it; and the
 * registry itself: one runner per Placement, an unknown name refused with the registered names.
 * The origin runner passes the same suite against a real gpu-origin in the node project
 * (test/node/runner/origin-runner-conformance.test.ts).
 */
import { env } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { runtimeConfig } from "../../src/config";
import { OrtWebRunner } from "../../src/edge/ort-web-runner";
import { CATALOG } from "../../src/models/catalog";
import { PLACEMENTS } from "../../src/models/manifest";
import { OriginPoolRunner } from "../../src/origin/origin-pool-runner";
import "../../src/runner/builtin-runners";
import { registeredRunners, runnerFactory } from "../../src/runner/registry";
import { CONFORMANCE_MODELS } from "../fixtures/conformance-cases";
import "../fixtures/provided-context";
import { describeRunnerConformance, runnerBatch } from "../fixtures/runner-conformance";

const entryOf = (model: string) => CATALOG.get(model)!;

describe("runner registry", () => {
  it("registers one runner under every placement", () => {
    expect(registeredRunners()).toEqual([...PLACEMENTS]);
  });

  it("creates the runner its name selects", () => {
    const config = runtimeConfig(env);
    expect(runnerFactory("edge").create(entryOf("silero-vad"), config)).toBeInstanceOf(OrtWebRunner);
    // The Worker's own ("direct") and a buffer's ("edge") batches share one factory, hence one session per isolate.
    expect(runnerFactory("direct")).toBe(runnerFactory("edge"));
    const withPool = { ...config, originSecret: "test-secret-0123456789abcdef", originUrls: ["http://127.0.0.1:9"] };
    expect(runnerFactory("origin").create(entryOf("ppocr-det"), withPool)).toBeInstanceOf(OriginPoolRunner);
  });

  it("refuses an origin runner with 503 when no origin pool is configured", () => {
    expect(() => runnerFactory("origin").create(entryOf("ppocr-det"), { ...runtimeConfig(env), originSecret: undefined })).toThrow(expect.objectContaining({ status: 503 }));
  });

  it("refuses an unknown name with an error listing the registered runners", () => {
    expect(() => runnerFactory("gpu")).toThrow("no runner is registered as 'gpu' (registered: edge, origin, direct)");
  });
});

describeRunnerConformance({
  label: "OrtWebRunner (edge, workerd)",
  manifestOf: (model) => entryOf(model).manifest,
  references: () => inject("conformanceReferences"),
  // Origin-only models (ppocr-det) have no weights at the edge; the origin runner's suite covers them.
  models: CONFORMANCE_MODELS.filter((model) => !entryOf(model).originOnly),
  open: async (model) => runnerBatch(runnerFactory("edge").create(entryOf(model), runtimeConfig(env))),
});
