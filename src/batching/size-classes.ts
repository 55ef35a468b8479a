/**
 * Size classes (MBS, multi-buffer serving): which class a request's width falls in, and the strided
 * copy that pads a request into its batch (or crops a request's output out of it) in one pass. A
 * request of width w joins the smallest class width >= w; without class widths every width is its
 * own class. Pure: no I/O.
 */
import type { SizeClasses } from "../models/manifest";
import type { TensorData } from "../protocol/datatypes";

/** The class width of a request `width` wide: the smallest class >= width (the width itself without classes, or beyond the last). */
export function classWidthOf(classes: Pick<SizeClasses, "widths">, width: number): number {
  const widths = classes.widths;
  if (!widths) return width;
  let lo = 0;
  let hi = widths.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (widths[mid]! < width) lo = mid + 1;
    else hi = mid;
  }
  return lo < widths.length ? widths[lo]! : width;
}

/**
 * Copies a box of shape `box` from `source` (shape `sourceShape`, starting at `sourceAt` per axis)
 * into `target` (shape `targetShape`, starting at `targetAt`). Trailing axes that the box spans in
 * full on both sides are copied as one run, so padding or cropping one axis costs one pass.
 */
export function copyBox(source: TensorData, sourceShape: number[], sourceAt: number[], target: TensorData, targetShape: number[], targetAt: number[], box: number[]): void {
  const rank = box.length;
  // The innermost axis from which the box is not contiguous in both tensors.
  let split = rank - 1;
  let run = 1;
  while (split >= 0) {
    run *= box[split]!;
    const isFull = box[split] === sourceShape[split] && box[split] === targetShape[split];
    if (!isFull) break;
    split--;
  }
  if (split < 0) {
    (target as Float32Array).set((source as Float32Array).subarray(0, run), 0);
    return;
  }
  const sourceStrides = stridesOf(sourceShape);
  const targetStrides = stridesOf(targetShape);
  const index = new Array<number>(split).fill(0);
  const outer = box.slice(0, split).reduce((a, b) => a * b, 1);
  for (let n = 0; n < outer; n++) {
    let from = sourceAt[split]! * sourceStrides[split]!;
    let to = targetAt[split]! * targetStrides[split]!;
    for (let axis = 0; axis < split; axis++) {
      from += (sourceAt[axis]! + index[axis]!) * sourceStrides[axis]!;
      to += (targetAt[axis]! + index[axis]!) * targetStrides[axis]!;
    }
    (target as Float32Array).set((source as Float32Array).subarray(from, from + run), to);
    for (let axis = split - 1; axis >= 0 && ++index[axis]! === box[axis]; axis--) index[axis] = 0;
  }
}

function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis]!;
  }
  return strides;
}
