/**
 * Derived outputs (manifest `derivedOutputs`): reductions over the last axis of a session output,
 * computed by the serving core next to the session, wherever the model runs (the edge isolate, the
 * Worker's direct path, gpu-origin), so that a client needing only each step's winner receives bytes
 * per step rather than per step and class. ppocr-rec's `softmax_11.tmp_0` is [rows, steps, 6625]
 * FP32, about 1 MB for a 320-pixel line; its `argmax` and `max` are [rows, steps], 320 bytes in all.
 *
 * A derived output is requested by name like any output (OIP `outputs`); a request naming no
 * outputs gets the session's outputs only. A reduction runs over the last axis only, so it commutes
 * with splitting a batch into its requests and with cropping a size class back to a request's steps
 * (its crop is its source's). Pure: no I/O.
 */
import { allocateTensorData } from "../protocol/datatypes";
import { elementCount, type Tensor } from "../protocol/tensor";
import type { DerivedOutput, ModelManifest, RequestSpec, SizeClasses, TensorSpec } from "./manifest";

type OutputsOf = Pick<RequestSpec, "outputs" | "derivedOutputs">;

/** The tensor spec of a derived output: its source's without the last axis; INT32 for argmax. */
export function derivedTensorSpec(outputs: TensorSpec[], derived: DerivedOutput): TensorSpec {
  const from = outputs.find((t) => t.name === derived.from)!;
  return {
    name: derived.name,
    datatype: derived.op === "argmax" ? "INT32" : from.datatype,
    shape: from.shape.slice(0, -1),
    ...(from.maxShape && { maxShape: from.maxShape.slice(0, -1) }),
    batchAxis: from.batchAxis,
  };
}

/** Every output a request may name, in order: the session's, then the derived ones. */
export function outputSpecsOf(manifest: OutputsOf): TensorSpec[] {
  return [...manifest.outputs, ...(manifest.derivedOutputs ?? []).map((d) => derivedTensorSpec(manifest.outputs, d))];
}

/** The specs of `names` (each an output or derived output of the manifest), in that order. */
export function outputSpecsNamed(manifest: OutputsOf, names: readonly string[]): TensorSpec[] {
  const specs = outputSpecsOf(manifest);
  return names.map((name) => specs.find((s) => s.name === name)!);
}

/**
 * The tensors named `names`, in that order, from `tensors` (a session's outputs, or those of them an
 * origin returned): each one present is passed through, each derived one missing is computed from its source.
 */
export function pickOutputs(manifest: OutputsOf, tensors: Tensor[], names: readonly string[]): Tensor[] {
  return names.map((name) => {
    const present = tensors.find((t) => t.name === name);
    if (present) return present;
    const derived = manifest.derivedOutputs?.find((d) => d.name === name);
    const source = derived && tensors.find((t) => t.name === derived.from);
    if (!source) throw new Error(`output '${name}' is neither among the results nor derived from one of them`);
    return reduceLastAxis(source, derived.op, derived.name);
  });
}

/** The session outputs a run must return so that `names` can be answered (each derived output needs its source), in manifest order. */
export function sessionOutputsFor(manifest: OutputsOf, names: readonly string[]): string[] {
  const needed = new Set(names.map((name) => manifest.derivedOutputs?.find((d) => d.name === name)?.from ?? name));
  return manifest.outputs.map((o) => o.name).filter((n) => needed.has(n));
}

/** Size classes whose crops also cover the derived outputs (each cropped as its source). */
export function cropsWithDerived(sizeClasses: SizeClasses, manifest: Pick<ModelManifest, "derivedOutputs">): SizeClasses {
  const extra = manifest.derivedOutputs.flatMap((d) => {
    const crop = sizeClasses.outputs[d.from];
    return crop ? [[d.name, crop] as const] : [];
  });
  return extra.length ? { ...sizeClasses, outputs: { ...sizeClasses.outputs, ...Object.fromEntries(extra) } } : sizeClasses;
}

/** `op` over the last axis of `tensor`: for each leading index, the first index of the largest value (argmax) or that value (max). NaN never wins. */
export function reduceLastAxis(tensor: Tensor, op: DerivedOutput["op"], name: string): Tensor {
  const shape = tensor.shape.slice(0, -1);
  const width = tensor.shape.at(-1)!;
  const count = elementCount(shape);
  const values = tensor.data as ArrayLike<number | bigint>;
  const data = allocateTensorData(op === "argmax" ? "INT32" : tensor.datatype, count) as { [i: number]: number | bigint; length: number };
  for (let i = 0, base = 0; i < count; i++, base += width) {
    let best = 0;
    for (let c = 1; c < width; c++) if (values[base + c]! > values[base + best]!) best = c;
    data[i] = op === "argmax" ? best : values[base + best]!;
  }
  return { name, datatype: op === "argmax" ? "INT32" : tensor.datatype, shape, data: data as unknown as Tensor["data"] };
}
