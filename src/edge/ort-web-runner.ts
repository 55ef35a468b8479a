/**
 * ModelRunner on onnxruntime-web (WASM) inside the edge isolate. One session per model per isolate,
 * created on first use, warmed up, and kept; a failed creation is not cached, so the next batch
 * retries it.
 *
 * Warm-up: V8 first runs WebAssembly from its baseline tier and optimises only code that has run
 * often, so a fresh session is several times slower for its first ~100 runs (ppocr-cls batch 1:
 * ~18 ms cold, ~4 ms warm). A new session runs a small zero batch until WARM_UP_BUDGET_MS or
 * WARM_UP_RUNS is reached (the run cap also bounds it where the clock does not advance during CPU
 * work, as on Cloudflare's edge).
 */
import type { ModelManifest } from "../models/manifest";
import { sessionInputs } from "../models/uint8-inputs";
import { allocateTensorData, datatypeOfOrtType, ortTypeOf, writeJsonValue, type TensorData } from "../protocol/datatypes";
import { unavailable } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import type { ModelRunner, RunResult } from "../runner/model-runner";
import { createOrtWebSession, ort, runQueued } from "./ort-web";

/** Longest warm-up of a new session, ms. */
const WARM_UP_BUDGET_MS = 300;
/** Most warm-up runs of a new session. */
const WARM_UP_RUNS = 60;
/** Size of dynamic non-batch dims in the warm-up batch (small: the kernels, not the sizes, warm up). */
const WARM_UP_DIM = 64;

/** Runs a model's batches in this isolate with onnxruntime-web. */
export class OrtWebRunner implements ModelRunner {
  private session?: Promise<ort.InferenceSession>;
  private warmSession?: ort.InferenceSession;

  constructor(
    private readonly manifest: ModelManifest,
    /** Reads the model's ONNX bytes (once per session; not kept after). */
    private readonly loadModel: () => Promise<ArrayBuffer>,
  ) {}

  async run(inputs: Tensor[], deadlineAtMs?: number): Promise<RunResult> {
    const warm = this.warmSession;
    const session = warm ?? (await this.ensureSession());
    const feeds = feedsOf(sessionInputs(this.manifest.inputs, inputs));
    let startMs = 0;
    // Timed from when the session is free (the run may queue behind other runs). A run queued past
    // its deadline is skipped; the first run after a cold start goes ahead (its callers decide).
    const results = await runQueued(session, feeds, warm ? deadlineAtMs : undefined, () => (startMs = performance.now()));
    if (!results) throw unavailable("deadline exceeded before the session was free", 1, "expired");
    const serviceMs = performance.now() - startMs;
    const outputs = this.manifest.outputs.map((spec): Tensor => {
      const value = results[spec.name];
      if (!value) throw new Error(`model ${this.manifest.name} returned no output '${spec.name}'`);
      return { name: spec.name, datatype: datatypeOfOrtType(value.type) ?? spec.datatype, shape: value.dims.slice(), data: value.data as TensorData };
    });
    return { outputs, servedBy: "edge", serviceMs };
  }

  async warm(): Promise<void> {
    await this.ensureSession();
  }

  isWarm(): boolean {
    return this.warmSession !== undefined;
  }

  private ensureSession(): Promise<ort.InferenceSession> {
    this.session ??= this.loadModel()
      .then(createOrtWebSession)
      .then(async (session) => {
        await warmUp(session, this.manifest);
        return (this.warmSession = session);
      })
      .catch((error) => {
        this.session = undefined;
        throw error;
      });
    return this.session;
  }
}

function feedsOf(inputs: Tensor[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = new ort.Tensor(ortTypeOf(t.datatype) as "float32", t.data as Float32Array, t.shape);
  return feeds;
}

/** A one-row request of zeros (and input defaults) that `manifest`'s model takes: what warm-ups run. */
export function warmUpInputs(manifest: ModelManifest): Tensor[] {
  return manifest.inputs.map((spec): Tensor => {
    // A dynamic dim takes the first variant's size if it fixes one (Silero: 512 samples at the default 16 kHz).
    const variantShape = manifest.variants?.[0]?.shapes[spec.name];
    const shape = spec.shape.map((d, axis) => {
      if (axis === spec.batchAxis) return 1;
      if (d !== -1) return d;
      const fixed = variantShape?.[axis] ?? -1;
      return fixed !== -1 ? fixed : Math.min(WARM_UP_DIM, spec.maxShape?.[axis] ?? WARM_UP_DIM);
    });
    const data = allocateTensorData(spec.datatype, shape.reduce((a, b) => a * b, 1));
    if (spec.default) for (let i = 0; i < data.length; i++) writeJsonValue(spec.datatype, data, i, spec.default);
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
}

/** Runs a one-row batch of zeros (and input defaults) until the warm-up budget or run cap is reached. */
async function warmUp(session: ort.InferenceSession, manifest: ModelManifest): Promise<void> {
  const feeds = feedsOf(warmUpInputs(manifest));
  const startMs = performance.now();
  for (let run = 0; run < WARM_UP_RUNS && performance.now() - startMs < WARM_UP_BUDGET_MS; run++) await runQueued(session, feeds);
}
