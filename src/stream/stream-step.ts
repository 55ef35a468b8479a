/**
 * One chunk of a stream as a row of the model's step, and back, pure: the chunk's samples, the
 * stream's state and the shared scalars become one request's inputs (in manifest order, ready for
 * concatBatch), and a row of the step's outputs (from splitBatch) becomes the chunk's probability
 * and the stream's next state.
 */
import type { ModelManifest, TensorSpec } from "../models/manifest";
import { allocateTensorData, writeJsonValue } from "../protocol/datatypes";
import type { Tensor } from "../protocol/tensor";
import type { StreamSpec } from "./stream-protocol";

/** What a step gives one chunk. */
export interface ChunkResult {
  /** The result output's first value (Silero: the speech probability). */
  probability: number;
  /** The stream's recurrent state after this chunk (one row). */
  state: Float32Array;
}

/** A stream's shared scalar inputs as tensors, by name (built once per stream buffer). */
export function scalarTensors(manifest: ModelManifest, spec: StreamSpec): Map<string, Tensor> {
  const scalars = new Map<string, Tensor>();
  for (const t of manifest.inputs.filter((s: TensorSpec) => s.batchAxis === null)) {
    const data = allocateTensorData(t.datatype, 1);
    writeJsonValue(t.datatype, data, 0, spec.scalars[t.name]);
    scalars.set(t.name, { name: t.name, datatype: t.datatype, shape: [], data });
  }
  return scalars;
}

/** The inputs of one chunk with the stream's `state`, in manifest order. */
export function chunkInputs(manifest: ModelManifest, spec: StreamSpec, scalars: Map<string, Tensor>, samples: Float32Array, state: Float32Array): Tensor[] {
  return manifest.inputs.map((t): Tensor => {
    if (t.name === spec.chunkInput) return { name: t.name, datatype: "FP32", shape: [1, samples.length], data: samples };
    if (t.name === spec.stateInput) return { name: t.name, datatype: t.datatype, shape: spec.stateShape, data: state };
    return scalars.get(t.name)!;
  });
}

/** A chunk's row of the step's outputs (every manifest output, in order). */
export function chunkResult(manifest: ModelManifest, spec: StreamSpec, outputs: Tensor[]): ChunkResult {
  const at = (name: string) => outputs[manifest.outputs.findIndex((o) => o.name === name)]!;
  return { probability: Number(at(spec.resultOutput).data[0]), state: at(spec.stateOutput).data as Float32Array };
}

/** The zero state of a stream. */
export function zeroState(spec: StreamSpec): Float32Array {
  return new Float32Array(spec.stateShape.reduce((a, b) => a * b, 1));
}
