/**
 * Worker side of the buffers: picks a shard for a request, hands it over, and turns the reply back
 * into a result or an InferenceError. A buffer answers every expected failure with a reply, so an
 * exception from the call means its Durable Object failed before answering (reset, eviction,
 * crash): the request is sent once more, to the next shard, while its deadline allows. The failed
 * attempt produced no reply, so the client still gets exactly one. Overload errors are not retried.
 */
import type { ModelManifest } from "../models/manifest";
import { fromFailureRecord, InferenceError, unavailable } from "../protocol/errors";
import type { BatchBuffer, BufferJob, BufferReply } from "./batch-buffer";

/** A successful buffer reply, with the shard that served it. */
export type BufferResult = Extract<BufferReply, { ok: true }> & { shard: number };

/** How the caller's request is tied to the dispatch: its abort signal, and a way to finish work after it ends. */
export interface DispatchContext {
  signal: AbortSignal | undefined;
  waitUntil(promise: Promise<unknown>): void;
}

/** Sends a job to one of the model's shards; resolves with the result or throws InferenceError. */
export async function dispatchToBuffer(
  namespace: DurableObjectNamespace<BatchBuffer>,
  manifest: ModelManifest,
  job: BufferJob,
  { signal, waitUntil }: DispatchContext,
): Promise<BufferResult> {
  const shards = manifest.batching.shards;
  let shard = Math.floor(Math.random() * shards);
  for (let attempt = 0; ; attempt++) {
    const stub = namespace.get(namespace.idFromName(`${manifest.name}#${shard}`));
    // The client went away: drop the job from the buffer (kept alive past the request's end).
    const onAbort = () => waitUntil(stub.cancel(job.id).catch(() => false));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await stub.infer(job);
      if (!reply.ok) throw fromFailureRecord(reply.failure);
      return { ...reply, shard };
    } catch (error) {
      if (!isBufferFailure(error)) throw error;
      const canRetry = attempt === 0 && !isOverloaded(error) && Date.now() < job.deadlineAtMs && !signal?.aborted;
      if (!canRetry) throw unavailable(isOverloaded(error) ? "batch buffer overloaded" : "batch buffer restarted; retry the request");
      shard = (shard + 1) % shards;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** Errors thrown by the stub itself (not failure replies turned into InferenceErrors above). */
function isBufferFailure(error: unknown): boolean {
  return !(error instanceof InferenceError);
}

/** The runtime marks an overloaded Durable Object's errors `overloaded`; retrying adds load. */
function isOverloaded(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { overloaded?: unknown }).overloaded === true;
}
