/**
 * Decoded tensors: a name, a datatype, a shape and a flat row-major typed array. This is what moves
 * between the Worker, the buffer Durable Objects and the runners (typed arrays cross RPC cheaply).
 */
import type { Datatype, TensorData } from "./datatypes";

/** A tensor with its data decoded into a typed array (row-major). */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}
