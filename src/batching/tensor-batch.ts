/**
 * Tensor batching: concatenate the inputs of several requests along each tensor's batch axis, run
 * once, and split the outputs back. Tensors without a batch axis (batchAxis null) are shared by the
 * whole batch: the batch key guarantees they are equal, so the first request's copy is used. With
 * size classes (manifest `batching.sizeClasses`), the class input is padded to the batch's class
 * width in the same copy (a batch of one too, so a request's outputs do not depend on who shares
 * its batch), and each cropped output is cut back to the request's own steps in the split's copy.
 */
import type { SizeClasses, TensorSpec } from "../models/manifest";
import { allocateTensorData, type TensorData } from "../protocol/datatypes";
import { elementCount, type Tensor } from "../protocol/tensor";
import { classWidthOf, copyBox } from "./size-classes";

/**
 * Concatenates per-request inputs (each in `specs` order) into one batch, in `specs` order; with
 * `sizeClasses`, pads its input along its axis to the largest class width among the requests.
 */
export function concatBatch(specs: TensorSpec[], requests: Tensor[][], sizeClasses?: SizeClasses): Tensor[] {
  return specs.map((spec, i) => {
    const parts = requests.map((inputs) => inputs[i]!);
    if (spec.batchAxis === null) return parts[0]!;
    if (sizeClasses?.input === spec.name) {
      const classWidth = Math.max(...parts.map((t) => classWidthOf(sizeClasses, t.shape[sizeClasses.axis]!)));
      if (parts.some((t) => t.shape[sizeClasses.axis] !== classWidth)) return concatPadded(spec.batchAxis, parts, sizeClasses.axis, classWidth, sizeClasses.padValue);
    }
    if (parts.length === 1) return parts[0]!;
    return concatAlong(spec.batchAxis, parts);
  });
}

/** Each request's own width on the size-class axis (what splitBatch crops its outputs to). */
export function ownWidthsOf(specs: TensorSpec[], requests: Tensor[][], sizeClasses: SizeClasses): number[] {
  const i = specs.findIndex((s) => s.name === sizeClasses.input);
  return requests.map((inputs) => inputs[i]!.shape[sizeClasses.axis]!);
}

/** Concatenation along `axis` with every part padded to `width` along `padAxis`, in one copy per part. */
function concatPadded(axis: number, parts: Tensor[], padAxis: number, width: number, padValue: number): Tensor {
  const first = parts[0]!;
  const shape = first.shape.slice();
  shape[axis] = parts.reduce((n, t) => n + t.shape[axis]!, 0);
  shape[padAxis] = width;
  const data = allocateTensorData(first.datatype, elementCount(shape));
  if (padValue !== 0) fillWith(data, padValue);
  const at = shape.map(() => 0);
  for (const part of parts) {
    copyBox(part.data, part.shape, part.shape.map(() => 0), data, shape, at, part.shape);
    at[axis]! += part.shape[axis]!;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

function fillWith(data: TensorData, value: number): void {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) data.fill(BigInt(value));
  else data.fill(value);
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

/** What splitBatch needs to crop size-class outputs: the classes and each request's own width. */
export interface Crop {
  sizeClasses: SizeClasses;
  widths: number[];
}

/**
 * Splits batch outputs back into one list per request, given each request's rows; with `crop`,
 * each output the size classes name keeps only the request's own steps (its width / stride) along
 * its axis. Throws when an output's batch dimension does not equal the total rows, or it has fewer
 * steps than a request needs (a model that broke the batch contract).
 */
export function splitBatch(specs: TensorSpec[], outputs: Tensor[], rowsPerRequest: number[], crop?: Crop): Tensor[][] {
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
    const cropAxis = crop?.sizeClasses.outputs[spec.name];
    if (crop && cropAxis) {
      perRequest.forEach((list, r) => list.push(cropRows(output, axis, rowsPerRequest, r, cropAxis.axis, crop.widths[r]! / cropAxis.stride)));
      return;
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

/** Request r's rows of `output`, its first `steps` along `cropAxis`, in one copy. */
function cropRows(output: Tensor, axis: number, rowsPerRequest: number[], r: number, cropAxis: number, steps: number): Tensor {
  if (output.shape[cropAxis]! < steps) throw new BatchContractError(`output '${output.name}' has ${output.shape[cropAxis]} steps along axis ${cropAxis}, a request needs ${steps}`);
  let rowStart = 0;
  for (let i = 0; i < r; i++) rowStart += rowsPerRequest[i]!;
  const shape = output.shape.slice();
  shape[axis] = rowsPerRequest[r]!;
  shape[cropAxis] = steps;
  const data = allocateTensorData(output.datatype, elementCount(shape));
  const at = shape.map((_, i) => (i === axis ? rowStart : 0));
  copyBox(output.data, output.shape, at, data, shape, shape.map(() => 0), shape);
  return { name: output.name, datatype: output.datatype, shape, data };
}

/** A model returned outputs whose batch dimension does not match its inputs. */
export class BatchContractError extends Error {
  override name = "BatchContractError";
}

function setBlock(target: TensorData, source: TensorData, from: number, length: number, at: number): void {
  (target as Float32Array).set((source as Float32Array).subarray(from, from + length), at);
}
