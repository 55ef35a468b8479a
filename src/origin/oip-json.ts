/**
 * The JSON form of the edge-to-origin hop: a batch's tensors become one Open Inference Protocol
 * infer request, and the origin's answer (JSON, or the binary extension's header and bytes) is
 * checked against the manifest before it is trusted (every output present, datatype and shape as
 * declared, data length equal to the shape's). Any OIP server (gpu-origin, Triton, KServe) answers
 * the JSON form. Pure: no I/O.
 */
import { outputSpecsNamed } from "../models/derived-outputs";
import type { ModelManifest } from "../models/manifest";
import { allocateTensorData, toJsonValues, writeJsonValue, type TensorData } from "../protocol/datatypes";
import { elementCount, type Tensor } from "../protocol/tensor";
import { BinaryFormatError, BinaryReader, binaryDataSize } from "../protocol/oip-binary";

/** The body of the infer request for a batch: `inputs` in manifest order; `timeoutMs` tells the origin the batch's budget; `outputs`, when given, the outputs to return. */
export function encodeInferRequest(inputs: Tensor[], id: string, timeoutMs: number, outputs?: readonly string[]): string {
  return JSON.stringify({
    id,
    parameters: { timeout_ms: Math.max(1, Math.floor(timeoutMs)) },
    inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonValues(t.datatype, t.data) })),
    ...(outputs && { outputs: outputs.map((name) => ({ name })) }),
  });
}

/** An answer that does not fit the manifest or the request. */
export class MalformedResponseError extends Error {
  override name = "MalformedResponseError";
}

/**
 * The outputs of an infer response (its JSON, or the JSON header of a binary-extension body with
 * the bytes after it as `payload`): those named `names` (session or derived outputs; default: the
 * session's), in that order. Throws MalformedResponseError when the id differs from `expectedId`
 * (when the server echoes one) or an output is missing, mistyped or mis-shaped. JSON floats may be
 * null (JSON's encoding of NaN).
 */
export function decodeInferResponse(manifest: ModelManifest, body: unknown, expectedId: string, payload?: Uint8Array, names: readonly string[] = manifest.outputs.map((o) => o.name)): Tensor[] {
  const specs = outputSpecsNamed(manifest, names);
  if (typeof body !== "object" || body === null) throw new MalformedResponseError("response is not a JSON object");
  const { id, outputs } = body as { id?: unknown; outputs?: unknown };
  if (id !== undefined && id !== expectedId) throw new MalformedResponseError("response id does not match the request");
  if (!Array.isArray(outputs)) throw new MalformedResponseError("response has no outputs array");
  const reader = new BinaryReader(payload ?? new Uint8Array(0));
  const decoded = new Map<string, Tensor>();
  try {
    // Binary data follows the header's order of outputs, so walk them in that order.
    for (const out of outputs as Array<{ name?: unknown; datatype?: unknown; shape?: unknown; data?: unknown; parameters?: unknown }>) {
      const size = typeof out === "object" && out !== null ? binaryDataSize(out) : undefined;
      const spec = specs.find((s) => s.name === out?.name);
      if (!spec || decoded.has(spec.name)) {
        if (size !== undefined) reader.skip(size);
        continue;
      }
      if (out.datatype !== spec.datatype) throw new MalformedResponseError(`output '${spec.name}' has datatype ${String(out.datatype)}, expected ${spec.datatype}`);
      const shape = out.shape;
      if (!Array.isArray(shape) || shape.length !== spec.shape.length || !shape.every((d, axis) => Number.isInteger(d) && d >= 0 && (spec.shape[axis] === -1 || d === spec.shape[axis]))) {
        throw new MalformedResponseError(`output '${spec.name}' has shape ${JSON.stringify(shape)}, expected [${spec.shape}]`);
      }
      let data: TensorData;
      if (size !== undefined) data = reader.take(spec.datatype, elementCount(shape as number[]), size);
      else if (Array.isArray(out.data)) data = decodeValues(spec.name, spec.datatype, shape as number[], out.data);
      else throw new MalformedResponseError(`output '${spec.name}' has no data`);
      decoded.set(spec.name, { name: spec.name, datatype: spec.datatype, shape: shape as number[], data });
    }
    reader.finish();
  } catch (error) {
    if (error instanceof BinaryFormatError) throw new MalformedResponseError(error.message);
    throw error;
  }
  return specs.map((spec) => {
    const tensor = decoded.get(spec.name);
    if (!tensor) throw new MalformedResponseError(`output '${spec.name}' is missing`);
    return tensor;
  });
}

function decodeValues(name: string, datatype: Tensor["datatype"], shape: number[], values: unknown[]): TensorData {
  const flat = values.length && Array.isArray(values[0]) ? (values.flat(shape.length) as unknown[]) : values;
  const count = elementCount(shape);
  if (flat.length !== count) throw new MalformedResponseError(`output '${name}' has ${flat.length} values for ${count} elements`);
  const data = allocateTensorData(datatype, count);
  if (datatype === "FP32" || datatype === "FP64") {
    const floats = data as Float32Array;
    for (let i = 0; i < count; i++) {
      const v = flat[i];
      if (typeof v === "number") floats[i] = v;
      else if (v === null) floats[i] = NaN;
      else throw new MalformedResponseError(`output '${name}': value ${i} is not a number`);
    }
    return data;
  }
  for (let i = 0; i < count; i++) {
    const problem = writeJsonValue(datatype, data, i, flat[i]);
    if (problem) throw new MalformedResponseError(`output '${name}': value ${i}: ${problem}`);
  }
  return data;
}
