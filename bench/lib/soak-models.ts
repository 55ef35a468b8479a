/**
 * The valid traffic of the soak benchmark: for each model a small pool of seeded one-row inputs
 * (one shape per seed) with their onnxruntime-node reference outputs, request bodies that carry a
 * unique id (JSON, or the binary tensor extension), and the check that an answer holds its own
 * seed's outputs — not another seed's (a row delivered to the wrong request), not garbage.
 *
 * Tolerance: the edge runs onnxruntime-web (WASM) and the origin onnxruntime-node; their kernels
 * sum in different orders, which moves outputs by ~1e-6..1e-4. Every output compared here is
 * bounded (softmax and sigmoid probabilities in [0, 1], VAD's LSTM state in [-1, 1]), so 1e-3
 * absolute is well above that noise, and seeds are only pooled when every pair of them differs by
 * at least SEPARATION x the tolerance, so a swapped row cannot pass for its own.
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../../src/protocol/oip-binary";
import { seededFloats } from "../../test/fixtures/model-inputs";

/** Largest absolute difference accepted between an answer and its reference. */
export const TOLERANCE = 1e-3;
/** Pooled seeds differ pairwise by at least this many tolerances. */
export const SEPARATION = 10;

/** An output tensor as FP32 values. */
export interface OutputTensor {
  shape: number[];
  data: ArrayLike<number>;
}

/** One pooled input and what the model answers for it. */
export interface SeedCase {
  model: string;
  seed: number;
  inputName: string;
  shape: number[];
  data: Float32Array;
  /** The JSON `inputs` array of a request, serialised once. */
  inputsJson: string;
  reference: Map<string, OutputTensor>;
}

/** A model's pool of seeds. */
export interface ModelPool {
  model: string;
  seeds: SeedCase[];
  /** Smallest pairwise max-abs difference between pooled seeds' outputs of one shape (Infinity with one seed). */
  minSeparation: number;
  /** Asks for binary outputs always (ppocr-rec answers 6625 logits a step: JSON would cost the edge more than the model). */
  isBinaryOutputOnly: boolean;
}

/** Shapes (one row) each model's seeds cycle through; det's H and W are multiples of 32, rec's W of 8. */
export const SHAPES: Record<string, { input: string; shapes: number[][] }> = {
  "silero-vad": { input: "input", shapes: [[1, 512]] },
  "ppocr-cls": { input: "x", shapes: [[1, 3, 48, 192]] },
  "ppocr-rec": { input: "x", shapes: [[1, 3, 48, 32], [1, 3, 48, 64]] },
  "ppocr-det": { input: "x", shapes: [[1, 3, 64, 64], [1, 3, 96, 96]] },
};

/** Builds each model's pool of `size` seeds (tried from 1 upward, at most 4 x size candidates) with references. */
export async function buildPools(modelsDir: string, size: number): Promise<ModelPool[]> {
  const pools: ModelPool[] = [];
  for (const [model, { input, shapes }] of Object.entries(SHAPES)) {
    const session = await ort.InferenceSession.create(join(modelsDir, model, "model.onnx"), { intraOpNumThreads: 1 });
    const seeds: SeedCase[] = [];
    let minSeparation = Infinity;
    for (let seed = 1; seed <= 4 * size && seeds.length < size; seed++) {
      const shape = shapes[seed % shapes.length]!;
      const data = model === "ppocr-det" ? textLinesImage(shape[2]!, shape[3]!, seed) : seededFloats(shape.reduce((a, b) => a * b, 1), seed * 7919 + model.length);
      const feeds: Record<string, ort.Tensor> = { [input]: new ort.Tensor("float32", data, shape) };
      if (model === "silero-vad") {
        feeds.state = new ort.Tensor("float32", new Float32Array(2 * 128), [2, 1, 128]);
        feeds.sr = new ort.Tensor("int64", BigInt64Array.of(16000n), []);
      }
      const results = await session.run(feeds);
      const reference = new Map(Object.entries(results).map(([name, t]) => [name, { shape: [...t.dims], data: Float32Array.from(t.data as Float32Array) }]));
      const distances = seeds.filter((s) => sameShape(s.shape, shape)).map((s) => distance(s.reference, reference));
      if (distances.some((d) => d < SEPARATION * TOLERANCE)) continue;
      minSeparation = Math.min(minSeparation, ...distances);
      const inputsJson = JSON.stringify([{ name: input, datatype: "FP32", shape, data: Array.from(data) }]);
      seeds.push({ model, seed, inputName: input, shape, data, inputsJson, reference });
    }
    await session.release();
    pools.push({ model, seeds, minSeparation, isBinaryOutputOnly: model === "ppocr-rec" });
  }
  return pools;
}

/**
 * A [1, 3, H, W] image, normalised to [-1, 1], of white paper with 1-3 seeded lines of dark
 * glyph-like strokes: the detector answers ~0 everywhere for noise, which would make every seed
 * look alike, but maps these lines to distinct probability regions.
 */
export function textLinesImage(H: number, W: number, seed: number): Float32Array {
  const random = seededFloats(4096, seed);
  let k = 0;
  const next = () => (random[k++ % random.length]! + 1) / 2;
  const image = new Float32Array(3 * H * W).fill(1);
  const lines = 1 + Math.floor(next() * 3);
  for (let line = 0; line < lines; line++) {
    const y0 = Math.floor(next() * (H - 12));
    const height = 6 + Math.floor(next() * 6);
    const x0 = Math.floor((next() * W) / 3);
    const x1 = x0 + Math.floor(W / 3 + next() * (W - x0 - W / 3));
    for (let x = x0; x < x1; x += 3) {
      if (next() <= 0.35) continue;
      for (let y = y0; y < y0 + height; y++) for (let c = 0; c < 3; c++) for (const dx of [0, 1]) if (x + dx < W) image[c * H * W + y * W + x + dx] = -1;
    }
  }
  return image;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Largest absolute difference over every output of two answers (Infinity when their shapes differ). */
export function distance(a: Map<string, OutputTensor>, b: Map<string, OutputTensor>): number {
  let max = 0;
  for (const [name, ta] of a) {
    const tb = b.get(name);
    if (!tb || !sameShape(ta.shape, tb.shape) || ta.data.length !== tb.data.length) return Infinity;
    for (let i = 0; i < ta.data.length; i++) {
      const d = Math.abs(ta.data[i]! - tb.data[i]!);
      if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
    }
  }
  return max;
}

/** A request body for `c` carrying `id` and `parameters`: JSON, or the binary extension with its headers. */
export function requestBody(c: SeedCase, id: string, parameters: Record<string, unknown>, isBinary: boolean): { body: string | Uint8Array; headers: Record<string, string> } {
  if (!isBinary) {
    return { body: `{"id":${JSON.stringify(id)},"parameters":${JSON.stringify(parameters)},"inputs":${c.inputsJson}}`, headers: { "content-type": "application/json" } };
  }
  const entry = { name: c.inputName, datatype: "FP32" as const, shape: c.shape, parameters: { binary_data_size: c.data.byteLength } };
  const packed = packBinary({ id, parameters, inputs: [entry] }, [{ name: c.inputName, datatype: "FP32", shape: c.shape, data: c.data }]);
  return { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
}

/** Whose outputs an answer holds. */
export type Verdict = { kind: "own" } | { kind: "other-seed"; seed: number } | { kind: "wrong"; maxAbsDiff: number };

/** Compares `outputs` with `own`'s reference, then with every other seed of the pool. */
export function verdictOf(outputs: Map<string, OutputTensor>, own: SeedCase, pool: ModelPool): Verdict {
  const ownDiff = distance(own.reference, outputs);
  if (ownDiff <= TOLERANCE) return { kind: "own" };
  const other = pool.seeds.find((s) => s !== own && distance(s.reference, outputs) <= TOLERANCE);
  return other ? { kind: "other-seed", seed: other.seed } : { kind: "wrong", maxAbsDiff: ownDiff };
}
