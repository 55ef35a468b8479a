/**
 * `--provider timed`: a stand-in for a replica with hardware of its own, for load tests on a host
 * with fewer cores than replicas (no GPU can exist here, and replicas that share one host's cores
 * slow each other down, so adding one adds no capacity). Named as what it is: a fake accelerator.
 *
 * - **Time.** A batch of k rows takes the model's measured origin line (models/<m>/profile.json,
 *   `runtimes.origin.fit`: baseMs + perItemMs * k), each row scaled by its input elements over the
 *   profile's reference row (`memory.referenceRowShapes`, where the profile has it), waited on a
 *   timer: the replica's process uses no CPU while its "kernel" runs.
 * - **Outputs are the real model's.** Each distinct input row is run once on the CPU backend and its
 *   output rows are remembered (keyed by a SHA-1 of the row's bytes, shapes and datatypes; the
 *   oldest forgotten beyond `cacheBytes`), so a load test that repeats a few inputs gets correct
 *   answers at the profile's speed. A batch with rows not seen before runs them on the CPU first and
 *   ends at the later of that and its timer.
 *
 * Not for serving: the timing is the profile's, not a device's.
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { concatBatch, splitBatch } from "../src/batching/tensor-batch";
import type { ModelManifest, TensorSpec } from "../src/models/manifest";
import { profileFootprint, profileServiceLine } from "../src/models/profile";
import { elementCount, type Tensor } from "../src/protocol/tensor";
import type { ServiceLine } from "../src/scheduler/service-estimate";
import { ProviderUnavailableError, type BackendLoader, type OriginSession } from "./backend-registry";
import { loadCpuBackend } from "./ort-backends";
import { profilePath, readProfile } from "./read-manifest";

/** Output bytes a timed session remembers (its distinct input rows' outputs). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** What a timed session waits on and measures with (injected in tests). */
export interface TimedClock {
  nowMs(): number;
  /** Resolves once nowMs() has reached `atMs`. */
  sleepUntil(atMs: number): Promise<void>;
}

const realClock: TimedClock = {
  nowMs: () => performance.now(),
  sleepUntil: (atMs) => new Promise((resolve) => setTimeout(resolve, Math.max(0, atMs - performance.now()))),
};

/** The time model of a timed session: its service line and the input elements of the row it was measured at. */
export interface TimedProfile {
  line: ServiceLine;
  /** Elements of one input row the line was measured at; undefined: every row counts as one. */
  referenceRowElements?: number;
}

/** `--provider timed`: sessions of the CPU backend, each wrapped by timedSession with its model's profile. */
export const loadTimedBackend: BackendLoader = async (threads) => {
  const cpu = await loadCpuBackend(threads);
  return {
    provider: "timed",
    async createSession(modelPath, manifest) {
      // The session's model file is <modelsDir>/<name>/model.onnx (model-host.ts).
      const profile = readTimedProfile(dirname(dirname(modelPath)), manifest.name);
      return timedSession(await cpu.createSession(modelPath, manifest), manifest, profile);
    },
  };
};

/** The origin line and reference row of `model`'s profile.json in `modelsDir`; ProviderUnavailableError when it has no origin fit. */
export function readTimedProfile(modelsDir: string, model: string): TimedProfile {
  const profile = readProfile(modelsDir, model);
  const line = profileServiceLine(profile, "origin");
  if (!line) throw new ProviderUnavailableError(`execution provider 'timed' needs the origin service time of '${model}' (${profilePath(modelsDir, model)} with runtimes.origin.fit): run \`npm run profile -- --models ${model} --runtimes origin\``);
  return { line, referenceRowElements: profileFootprint(profile)?.referenceRowElements || undefined };
}

/**
 * `inner` (a real session) made to take `profile`'s time per batch and to run each distinct input
 * row only once (see the module's doc).
 */
export function timedSession(inner: OriginSession, manifest: ModelManifest, profile: TimedProfile, options: { cacheBytes?: number; clock?: TimedClock } = {}): OriginSession {
  const clock = options.clock ?? realClock;
  const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  /** Output rows by input row key, oldest first. */
  const cache = new Map<string, { outputs: Tensor[]; bytes: number }>();
  let cachedBytes = 0;
  const batched = manifest.inputs.filter((s) => s.batchAxis !== null);
  return {
    async run(inputs) {
      const startMs = clock.nowMs();
      const first = inputs[manifest.inputs.indexOf(batched[0]!)]!;
      const rows = first.shape[batched[0]!.batchAxis!]!;
      const keys = Array.from({ length: rows }, (_, r) => rowKey(manifest.inputs, inputs, r));
      const found = new Map<string, Tensor[]>();
      for (const key of keys) {
        const hit = cache.get(key);
        if (hit) found.set(key, hit.outputs);
      }
      const missing = [...new Set(keys.filter((k) => !found.has(k)))];
      if (missing.length) {
        // Every row new and distinct (a load test's first batches): the batch as it came, no copies.
        const rowInputs = missing.length === rows ? undefined : splitBatch(manifest.inputs, inputs, new Array<number>(rows).fill(1));
        const batch = rowInputs ? concatBatch(manifest.inputs, missing.map((k) => rowInputs[keys.indexOf(k)]!)) : inputs;
        const computed = splitBatch(manifest.outputs, await inner.run(batch), missing.map(() => 1));
        missing.forEach((key, i) => {
          const outputs = computed[i]!;
          found.set(key, outputs);
          const bytes = outputs.reduce((sum, t) => sum + t.data.byteLength, 0);
          cache.set(key, { outputs, bytes });
          cachedBytes += bytes;
        });
        for (const [key, entry] of cache) {
          if (cachedBytes <= cacheBytes) break;
          cache.delete(key);
          cachedBytes -= entry.bytes;
        }
      }
      const rowElements = batched.reduce((sum, spec) => sum + elementCount(inputs[manifest.inputs.indexOf(spec)]!.shape) / rows, 0);
      const rowScale = profile.referenceRowElements ? rowElements / profile.referenceRowElements : 1;
      await clock.sleepUntil(startMs + profile.line.baseMs + profile.line.perRowMs * rows * rowScale);
      return concatBatch(manifest.outputs, keys.map((k) => found.get(k)!));
    },
  };
}

/**
 * Row r's identity, read in place from the batch: every input's name, datatype, row shape and the
 * row's bytes (the slices of its batch axis; a tensor without one is hashed whole).
 */
function rowKey(specs: readonly TensorSpec[], inputs: Tensor[], r: number): string {
  const hash = createHash("sha1");
  specs.forEach((spec, i) => {
    const t = inputs[i]!;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const axis = spec.batchAxis;
    hash.update(`${t.name}\0${t.datatype}\0${t.shape.map((d, a) => (a === axis ? 1 : d)).join(",")}\0`);
    if (axis === null) return void hash.update(bytes);
    const rows = t.shape[axis]!;
    const outer = elementCount(t.shape.slice(0, axis));
    const slice = (elementCount(t.shape) / outer / rows) * t.data.BYTES_PER_ELEMENT;
    for (let o = 0; o < outer; o++) hash.update(bytes.subarray((o * rows + r) * slice, (o * rows + r + 1) * slice));
  });
  return hash.digest("hex");
}
