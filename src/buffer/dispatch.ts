/**
 * Worker side of the buffers: picks a shard for a request, hands it over, and turns the reply back
 * into a result or an InferenceError. If the buffer's Durable Object resets (its callers see a
 * retryable error), the request is sent once more, to a fresh shard, while its deadline allows;
 * the failed attempt produced no reply, so the client still gets exactly one.
 */
import type { ModelManifest } from "../models/manifest";
import { fromFailureRecord, unavailable } from "../protocol/errors";
import type { BatchBuffer, BufferJob, BufferReply } from "./batch-buffer";

/** A successful buffer reply, with the shard that served it. */
export type BufferResult = Extract<BufferReply, { ok: true }> & { shard: number };

/** Sends a job to one of the model's shards; resolves with the result or throws InferenceError. */
export async function dispatchToBuffer(
  namespace: DurableObjectNamespace<BatchBuffer>,
  manifest: ModelManifest,
  job: BufferJob,
  signal: AbortSignal | undefined,
): Promise<BufferResult> {
  const shards = manifest.batching.shards;
  let shard = Math.floor(Math.random() * shards);
  for (let attempt = 0; ; attempt++) {
    const stub = namespace.get(namespace.idFromName(`${manifest.name}#${shard}`));
    const onAbort = () => void stub.cancel(job.id).catch(() => undefined);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await stub.infer(job);
      if (!reply.ok) throw fromFailureRecord(reply.failure);
      return { ...reply, shard };
    } catch (error) {
      const canRetry = attempt === 0 && isRetryable(error) && Date.now() < job.deadlineAtMs && !signal?.aborted;
      if (!canRetry) throw isRetryable(error) ? unavailable("batch buffer restarted; retry the request") : error;
      shard = (shard + 1) % shards;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** Durable Object resets and overloads surface as errors marked `retryable` by the runtime. */
function isRetryable(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { retryable?: unknown }).retryable === true;
}
