/** The Open Inference Protocol model metadata response for a manifest, on the edge and the origin. */
import type { ModelManifest, TensorSpec } from "../models/manifest";

const tensor = (t: TensorSpec) => ({ name: t.name, datatype: t.datatype, shape: t.shape });

/** Metadata of `m`; `parameters` says how this server serves it; `platform` what runs it (a pipeline of models: "pipeline"). */
export function modelMetadata(m: Pick<ModelManifest, "name" | "version" | "inputs" | "outputs">, parameters: Record<string, string | number | boolean>, platform = "onnxruntime_onnx") {
  return { name: m.name, versions: [m.version], platform, inputs: m.inputs.map(tensor), outputs: m.outputs.map(tensor), parameters };
}
