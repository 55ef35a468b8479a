/**
 * Runs a decoded request where its model's live plan places it: in this isolate ("direct", once its
 * session is warm) or through a buffer shard ("edge", "origin"). The infer route and the OCR
 * pipeline's stages (src/ocr/pipeline.ts) both serve requests through here.
 */
import type { CatalogEntry } from "../models/catalog";
import type { ModelManifest, Placement } from "../models/manifest";
import { checkPlatformLimits, inputSizesOf } from "../edge/limits";
import { fromFailureRecord } from "../protocol/errors";
import type { InferRequest } from "../protocol/infer-request";
import type { RuntimeConfig } from "../config";
import type { BatchBuffer } from "./batch-buffer";
import { isDirectReady, serveDirect } from "./direct";
import { dispatchToBuffer, pickShard, shedIfBusy, type BufferResult, type DispatchContext } from "./dispatch";

/** Where a request runs: this isolate ("direct", its session warm) or a buffer shard (placement "edge" or "origin"). */
export interface RequestRoute {
  runsAt: Placement;
  shard?: number;
}

/**
 * Where a request of `manifest` (its live plan) that is due at `deadlineAtMs` runs. A shard that just
 * refused a request due as late as this one could be gets none: 503 at once, before its body is parsed.
 */
export function routeRequest(entry: CatalogEntry, manifest: ModelManifest, config: RuntimeConfig, deadlineAtMs: number, nowMs: number, waitUntil: (promise: Promise<unknown>) => void): RequestRoute {
  if (manifest.placement === "direct" && isDirectReady(entry, manifest, config, waitUntil)) return { runsAt: "direct" };
  const shard = pickShard(manifest);
  shedIfBusy(manifest, shard, deadlineAtMs, nowMs, waitUntil);
  return { runsAt: manifest.placement === "direct" ? "edge" : manifest.placement, shard };
}

/** A decoded request, ready to run: its tensors (every manifest input), rows, batch key, deadline and trace. */
export type ModelCall = Pick<InferRequest, "inputs" | "outputs" | "rows" | "batchKey"> & { deadlineAtMs: number; traceparent: string };

/**
 * Runs `call` on its route: refused with 413 when over the platform's limits there (RPC payload,
 * isolate memory), else served in this isolate or through the shard's buffer. Resolves with the
 * outputs and how they were served; throws InferenceError. The OCR pipeline's stages call it too.
 */
export async function runRequest(env: Env, entry: CatalogEntry, manifest: ModelManifest, route: RequestRoute, call: ModelCall, context: DispatchContext): Promise<BufferResult> {
  const maxBatchRows = checkPlatformLimits(entry.footprint, route.runsAt, manifest, inputSizesOf(call.inputs), call.rows);
  const job = { id: crypto.randomUUID(), model: manifest.name, rows: call.rows, batchKey: call.batchKey, inputs: call.inputs, outputs: call.outputs, deadlineAtMs: call.deadlineAtMs, ...(maxBatchRows !== undefined && maxBatchRows < manifest.batching.maxBatch && { maxBatchRows }), traceparent: call.traceparent };
  if (route.shard === undefined) return directResult(await serveDirect(env, job, context));
  return dispatchToBuffer(env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>, manifest, job, context, route.shard);
}

/** A direct reply as a result (it has no shard), or its failure thrown as an InferenceError. */
function directResult(reply: Awaited<ReturnType<typeof serveDirect>>): BufferResult {
  if (!reply.ok) throw fromFailureRecord(reply.failure);
  return { ...reply, placement: "direct" };
}
