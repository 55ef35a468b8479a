/** The Open Inference Protocol model metadata response for a manifest, on the edge and the origin. */
import { outputSpecsOf } from "../models/derived-outputs";
import type { ModelManifest, TensorSpec } from "../models/manifest";

const tensor = (t: TensorSpec) => ({ name: t.name, datatype: t.datatype, shape: t.shape });

/** Metadata of `m` (its outputs: the session's, then the derived ones); `parameters` says how this server serves it; `platform` what runs it (a pipeline of models: "pipeline"). */
export function modelMetadata(m: Pick<ModelManifest, "name" | "version" | "inputs" | "outputs"> & Partial<Pick<ModelManifest, "derivedOutputs">>, parameters: Record<string, string | number | boolean>, platform = "onnxruntime_onnx") {
  return { name: m.name, versions: [m.version], platform, inputs: m.inputs.map(tensor), outputs: outputSpecsOf(m).map(tensor), parameters };
}
