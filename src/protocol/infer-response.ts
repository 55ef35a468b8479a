/**
 * Builds Open Inference Protocol infer responses and the headers that say how a request was served:
 * `Server-Timing` (queue wait, inference, origin hop, total) and the batch size, shard and placement.
 */
import type { Context } from "hono";
import type { ModelManifest, Placement } from "../models/manifest";
import { toJsonValues } from "./datatypes";
import { binaryEntries, BINARY_CONTENT_TYPE, INFERENCE_HEADER_LENGTH, packBinary } from "./oip-binary";
import type { Tensor } from "./tensor";

/** How a request was served, as the buffer reported it. */
export interface ServedInfo {
  /** The batch's number in its buffer shard (buffered placements). */
  batchId?: number;
  batchRows: number;
  queueMs: number;
  inferMs: number;
  originMs?: number;
  servedBy: string;
  placement: Placement;
  /** The buffer shard (buffered placements only). */
  shard?: number;
}

/** The JSON body of an infer response. */
export function inferResponseBody(manifest: Pick<ModelManifest, "name" | "version">, id: string | undefined, outputs: Tensor[]) {
  return {
    model_name: manifest.name,
    model_version: manifest.version,
    ...(id !== undefined && { id }),
    outputs: outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonValues(t.datatype, t.data) })),
  };
}

/** The infer answer: JSON, or the binary tensor extension when the request asked for binary outputs. */
export function inferAnswer(c: Context, manifest: Pick<ModelManifest, "name" | "version">, id: string | undefined, outputs: Tensor[], wantsBinary: boolean, headers: Record<string, string> = {}): Response {
  if (!wantsBinary) return c.json(inferResponseBody(manifest, id, outputs), 200, headers);
  const packed = packBinary({ ...inferResponseBody(manifest, id, []), outputs: binaryEntries(outputs) }, outputs);
  return c.body(packed.body, 200, { ...headers, "Content-Type": BINARY_CONTENT_TYPE, [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) });
}

/** Response headers describing how the request was served; `totalMs` is the edge's whole handling time. */
export function servedHeaders(info: ServedInfo, totalMs: number): Record<string, string> {
  const timing = [`queue;dur=${info.queueMs.toFixed(1)}`, `infer;dur=${info.inferMs.toFixed(1)}`];
  if (info.originMs !== undefined) timing.push(`origin;dur=${info.originMs.toFixed(1)}`);
  timing.push(`total;dur=${totalMs.toFixed(1)}`);
  return {
    "Server-Timing": timing.join(", "),
    "X-Batch-Size": String(info.batchRows),
    "X-Served-By": info.servedBy,
    "X-Placement": info.placement,
    ...(info.shard !== undefined && { "X-Shard": String(info.shard) }),
  };
}
