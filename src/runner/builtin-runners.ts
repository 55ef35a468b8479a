/**
 * The built-in runners, registered under the Placement they serve (as onnxruntime registers its
 * backends in its entry point): "edge" (in a buffer) and "direct" (in the Worker) run batches in
 * this isolate with onnxruntime-web, "origin" forwards them to the origin pool. Importing this module registers them; the
 * `satisfies` clause makes a new Placement without a runner a type error.
 */
import { OrtWebRunner } from "../edge/ort-web-runner";
import { loadWeights } from "../edge/weights";
import type { Placement } from "../models/manifest";
import { originPoolFor } from "../origin/origin-pool";
import { OriginPoolRunner } from "../origin/origin-pool-runner";
import { unavailable } from "../protocol/errors";
import { registerRunner, type RunnerFactory } from "./registry";

/** onnxruntime-web in this isolate: a buffer's ("edge") or the Worker's own ("direct"); one factory, so one session per isolate. */
const ortWeb: RunnerFactory = {
  create: (entry) => new OrtWebRunner(entry.manifest, () => loadWeights(entry.manifest.name)),
};

/** One runner factory per placement. */
export const BUILTIN_RUNNERS = {
  edge: ortWeb,
  origin: {
    create(entry, config) {
      if (!config.originSecret) throw unavailable(`model '${entry.manifest.name}' runs on the origin pool, which is not configured`, 5);
      return new OriginPoolRunner(entry.manifest, originPoolFor(config.originSecret, config.originUrls, config.originHeaders), config.originWire, config.originExtensions);
    },
    configKey: (config) => `${config.originWire}/${config.originExtensions}`,
  },
  direct: ortWeb,
} satisfies Record<Placement, RunnerFactory>;

for (const [name, factory] of Object.entries(BUILTIN_RUNNERS)) registerRunner(name, factory);
