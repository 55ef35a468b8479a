/**
 * OriginPoolRunner against the runner conformance suite, forwarding (binary hop, signed) to a real
 * gpu-origin process on 127.0.0.1 that serves every conformance model on its cpu backend.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { OriginPool } from "../../../src/origin/origin-pool";
import { OriginPoolRunner } from "../../../src/origin/origin-pool-runner";
import { CONFORMANCE_MODELS } from "../../fixtures/conformance-cases";
import { describeRunnerConformance, runnerBatch } from "../../fixtures/runner-conformance";
import { conformanceReferences } from "../../setup/conformance-references";
import { manifestOf } from "../origin/fixtures";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "../origin/origin-process";

let origin: OriginProcess | undefined;
let pool: OriginPool | undefined;

beforeAll(async () => {
  origin = await startOrigin(["--models", CONFORMANCE_MODELS.join(",")]);
  await waitReady(origin);
  pool = new OriginPool([origin.url], TEST_SECRET);
}, 90_000);

afterAll(() => stopOrigin(origin));

describeRunnerConformance({
  label: "OriginPoolRunner (gpu-origin process, binary hop)",
  manifestOf,
  references: conformanceReferences,
  open: async (model) => runnerBatch(new OriginPoolRunner(manifestOf(model), pool!)),
});

it("served every conformance batch from the one replica, which stayed admitted", () => {
  expect(pool!.state.snapshot().map((r) => r.state)).toEqual(["admitted"]);
});
