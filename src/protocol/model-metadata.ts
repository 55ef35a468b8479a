/** The Open Inference Protocol model metadata response for a manifest, on the edge and the origin. */
import type { ModelManifest, TensorSpec } from "../models/manifest";

const tensor = (t: TensorSpec) => ({ name: t.name, datatype: t.datatype, shape: t.shape });

/** Metadata of `m`; `parameters` says how this server serves it. */
export function modelMetadata(m: ModelManifest, parameters: Record<string, string | number | boolean>) {
  return { name: m.name, versions: [m.version], platform: "onnxruntime_onnx", inputs: m.inputs.map(tensor), outputs: m.outputs.map(tensor), parameters };
}
