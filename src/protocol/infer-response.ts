/**
 * Builds Open Inference Protocol infer responses and the headers that say how a request was served:
 * `Server-Timing` (queue wait, inference, origin hop, total) and the batch size, shard and placement.
 */
import type { ModelManifest, Placement } from "../models/manifest";
import { toJsonValues } from "./datatypes";
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
export function inferResponseBody(manifest: ModelManifest, id: string | undefined, outputs: Tensor[]) {
  return {
    model_name: manifest.name,
    model_version: manifest.version,
    ...(id !== undefined && { id }),
    outputs: outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonValues(t.datatype, t.data) })),
  };
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
