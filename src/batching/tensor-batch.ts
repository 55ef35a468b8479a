/**
 * Tensor batching: concatenate the inputs of several requests along each tensor's batch axis, run
 * once, and split the outputs back. Tensors without a batch axis (batchAxis null) are shared by the
 * whole batch: the batch key guarantees they are equal, so the first request's copy is used.
 */
import type { TensorSpec } from "../models/manifest";
import { allocateTensorData, type TensorData } from "../protocol/datatypes";
import { elementCount, type Tensor } from "../protocol/tensor";

/** Concatenates per-request inputs (each in `specs` order) into one batch, in `specs` order. */
export function concatBatch(specs: TensorSpec[], requests: Tensor[][]): Tensor[] {
  return specs.map((spec, i) => {
    const parts = requests.map((inputs) => inputs[i]!);
    if (spec.batchAxis === null || parts.length === 1) return parts[0]!;
    return concatAlong(spec.batchAxis, parts);
  });
}

function concatAlong(axis: number, parts: Tensor[]): Tensor {
  const first = parts[0]!;
  const shape = first.shape.slice();
  shape[axis] = parts.reduce((n, t) => n + t.shape[axis]!, 0);
  const data = allocateTensorData(first.datatype, elementCount(shape));
  const outer = elementCount(first.shape.slice(0, axis));
  const inner = elementCount(first.shape.slice(axis + 1));
  let offset = 0;
  for (let o = 0; o < outer; o++) {
    for (const part of parts) {
      const block = part.shape[axis]! * inner;
      setBlock(data, part.data, o * block, block, offset);
      offset += block;
    }
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/**
 * Splits batch outputs back into one list per request, given each request's rows. Throws when an
 * output's batch dimension does not equal the total rows (a model that broke the batch contract).
 */
export function splitBatch(specs: TensorSpec[], outputs: Tensor[], rowsPerRequest: number[]): Tensor[][] {
  const totalRows = rowsPerRequest.reduce((a, b) => a + b, 0);
  const perRequest: Tensor[][] = rowsPerRequest.map(() => []);
  specs.forEach((spec, i) => {
    const output = outputs[i]!;
    if (spec.batchAxis === null) {
      perRequest.forEach((list) => list.push(output));
      return;
    }
    const axis = spec.batchAxis;
    if (output.shape[axis] !== totalRows) {
      throw new BatchContractError(`output '${spec.name}' has ${output.shape[axis]} rows along axis ${axis}, expected ${totalRows}`);
    }
    const outer = elementCount(output.shape.slice(0, axis));
    const inner = elementCount(output.shape.slice(axis + 1));
    let rowStart = 0;
    rowsPerRequest.forEach((rows, r) => {
      const shape = output.shape.slice();
      shape[axis] = rows;
      const data = allocateTensorData(output.datatype, elementCount(shape));
      for (let o = 0; o < outer; o++) {
        setBlock(data, output.data, (o * totalRows + rowStart) * inner, rows * inner, o * rows * inner);
      }
      perRequest[r]!.push({ name: output.name, datatype: output.datatype, shape, data });
      rowStart += rows;
    });
  });
  return perRequest;
}

/** A model returned outputs whose batch dimension does not match its inputs. */
export class BatchContractError extends Error {
  override name = "BatchContractError";
}

function setBlock(target: TensorData, source: TensorData, from: number, length: number, at: number): void {
  (target as Float32Array).set((source as Float32Array).subarray(from, from + length), at);
}
