/**
 * ModelRunner on onnxruntime-web (WASM) inside the edge isolate. One session per model per isolate,
 * created on first use and kept; a failed creation is not cached, so the next batch retries it.
 */
import type { ModelManifest } from "../models/manifest";
import { datatypeOfOrtType, ortTypeOf, type TensorData } from "../protocol/datatypes";
import type { Tensor } from "../protocol/tensor";
import type { ModelRunner, RunResult } from "../runner/model-runner";
import { createOrtWebSession, ort } from "./ort-web";

/** Runs a model's batches in this isolate with onnxruntime-web. */
export class OrtWebRunner implements ModelRunner {
  readonly placement = "edge";
  private session?: Promise<ort.InferenceSession>;

  constructor(
    private readonly manifest: ModelManifest,
    private readonly modelBytes: ArrayBuffer,
  ) {}

  async run(inputs: Tensor[]): Promise<RunResult> {
    const session = await this.ensureSession();
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) feeds[t.name] = new ort.Tensor(ortTypeOf(t.datatype) as "float32", t.data as Float32Array, t.shape);
    const results = await session.run(feeds);
    const outputs = this.manifest.outputs.map((spec): Tensor => {
      const value = results[spec.name];
      if (!value) throw new Error(`model ${this.manifest.name} returned no output '${spec.name}'`);
      return { name: spec.name, datatype: datatypeOfOrtType(value.type) ?? spec.datatype, shape: value.dims.slice(), data: value.data as TensorData };
    });
    return { outputs, servedBy: "edge" };
  }

  private ensureSession(): Promise<ort.InferenceSession> {
    this.session ??= createOrtWebSession(this.modelBytes).catch((error) => {
      this.session = undefined;
      throw error;
    });
    return this.session;
  }
}
