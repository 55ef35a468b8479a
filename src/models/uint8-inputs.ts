/**
 * Inputs sent as 8-bit pixels (manifest input `fromUint8`). A FP32 input that a model takes as
 * normalised pixels (PP-OCR's NormalizeImage: (v * scale - mean[c]) / std[c] per channel) may be sent
 * as the UINT8 values v instead: a quarter of the bytes through the Worker, the buffer's RPC and the
 * hop to the origin (ppocr-det at 1280 x 960: 3.7 MB instead of 14.7). It travels as UINT8 and is
 * normalised next to the session, wherever the model runs (the edge isolate, gpu-origin), in float32
 * in NormalizeImage's order of operations, so the session sees bit for bit what a client that
 * normalised itself would send. Requests in UINT8 and in FP32 never share a batch (their batch keys
 * differ). Pure: no I/O.
 */
import { allocateTensorData } from "../protocol/datatypes";
import type { Tensor } from "../protocol/tensor";
import type { TensorSpec } from "./manifest";

type Normalisation = NonNullable<TensorSpec["fromUint8"]>;

/** The datatypes an input takes: its own, and UINT8 when it declares fromUint8. */
export function acceptsDatatype(spec: TensorSpec, datatype: string): boolean {
  return datatype === spec.datatype || (datatype === "UINT8" && spec.fromUint8 !== undefined);
}

/** The session's inputs: every UINT8 tensor of a `fromUint8` input normalised to FP32, the rest as they are. */
export function sessionInputs(specs: readonly TensorSpec[], inputs: Tensor[]): Tensor[] {
  return inputs.map((t) => {
    const normalisation = t.datatype === "UINT8" ? specs.find((s) => s.name === t.name)?.fromUint8 : undefined;
    return normalisation ? normalise(t, normalisation) : t;
  });
}

/** A UINT8 tensor normalised along `axis`: one 256-entry float32 table per channel. */
function normalise(t: Tensor, { axis, scale, mean, std }: Normalisation): Tensor {
  const channels = t.shape[axis]!;
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const tables = Array.from({ length: channels }, (_, c) => lookupTable(scale, mean[c]!, std[c]!));
  const src = t.data as Uint8Array;
  const out = allocateTensorData("FP32", src.length) as Float32Array;
  for (let start = 0, c = 0; start < src.length; start += inner, c = (c + 1) % channels) {
    const table = tables[c]!;
    for (let i = start; i < start + inner; i++) out[i] = table[src[i]!]!;
  }
  return { name: t.name, datatype: "FP32", shape: t.shape, data: out };
}

const tables = new Map<string, Float32Array>();

/** (v * scale - mean) / std for v = 0..255, each operation rounded to float32 as numpy computes it. */
export function lookupTable(scale: number, mean: number, std: number): Float32Array {
  const key = `${scale}/${mean}/${std}`;
  let table = tables.get(key);
  if (!table) {
    const f = Math.fround;
    table = Float32Array.from({ length: 256 }, (_, v) => f(f(f(v * f(scale)) - f(mean)) / f(std)));
    tables.set(key, table);
  }
  return table;
}
