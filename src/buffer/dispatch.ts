/**
 * Worker side of the buffers: picks a shard for a request, hands it over, and turns the reply back
 * into a result or an InferenceError. A buffer answers every expected failure with a reply, so an
 * exception from the call means its Durable Object failed before answering (reset, eviction,
 * crash): the request is sent once more, to the next shard, while its deadline allows. The failed
 * attempt produced no reply, so the client still gets exactly one. Overload errors are not retried.
 *
 * Front-door shedding: when a buffer refuses a request at admission it says until when it is busy
 * (a request due before then would be refused too). This isolate remembers that per shard and
 * refuses such requests itself, before their bodies are parsed or the buffer is called, so overload
 * costs the buffer's thread as little as possible. The buffer cannot see requests still on their way
 * to it (waiting in this event loop or its input queue): PIE (src/scheduler/pie.ts) measures that
 * wait from each reply and refuses a share of new requests at the same point while it is long.
 */
import { env } from "cloudflare:workers";
import { runtimeConfig } from "../config";
import { maxLatencyMsOf, type ModelManifest, type Placement } from "../models/manifest";
import { Pie } from "../scheduler/pie";
import { fromFailureRecord, InferenceError, unavailable } from "../protocol/errors";
import type { BatchBuffer } from "./batch-buffer";
import type { BufferJob, BufferReply } from "./model-server";

/** A successful reply, with where it was served: the placement, and the shard for buffered ones. */
export type BufferResult = Extract<BufferReply, { ok: true }> & { placement: Placement; shard?: number };

/** How the caller's request is tied to the dispatch: its abort signal, and a way to finish work after it ends. */
export interface DispatchContext {
  signal: AbortSignal | undefined;
  waitUntil(promise: Promise<unknown>): void;
}

/** PIE's target delay on the way to a buffer and back, as a share of the model's longest wait (maxLatencyMs). */
const PIE_TARGET_SHARE = 0.1;

/** Per shard ("model#shard"): a request due before this epoch ms would be refused. */
const busyUntilMs = new Map<string, number>();

/** Per shard ("model#shard"): PIE on the way to it (src/scheduler/pie.ts). */
const pies = new Map<string, Pie>();

/** The way to a shard's PIE; its target delay is PIE_TARGET_SHARE of the model's longest wait. */
function pieOf(manifest: ModelManifest, shard: number): Pie {
  const key = `${manifest.name}#${shard}`;
  let pie = pies.get(key);
  if (!pie) pies.set(key, (pie = new Pie(PIE_TARGET_SHARE * maxLatencyMsOf(manifest))));
  return pie;
}

/** Durable Object ids and stub options per namespace by name ("model#shard"), derived once per isolate (idFromName hashes the name). */
const idsOf = new WeakMap<DurableObjectNamespace<BatchBuffer>, Map<string, { id: DurableObjectId; options?: DurableObjectNamespaceGetDurableObjectOptions }>>();

/**
 * The buffer stub of a model shard. Buffers are named per model and shard (one object worldwide
 * each); BUFFER_LOCATION_HINT, when set, asks Cloudflare to create them near that region (a hint
 * only applies when an object is first created; see docs/deploy.md for the trade-off).
 */
export function bufferStub(namespace: DurableObjectNamespace<BatchBuffer>, model: string, shard: number): DurableObjectStub<BatchBuffer> {
  let ids = idsOf.get(namespace);
  if (!ids) idsOf.set(namespace, (ids = new Map()));
  const name = `${model}#${shard}`;
  let found = ids.get(name);
  if (!found) {
    const locationHint = runtimeConfig(env as Env).bufferLocationHint;
    ids.set(name, (found = { id: namespace.idFromName(name), ...(locationHint && { options: { locationHint } }) }));
  }
  return namespace.get(found.id, found.options);
}

/** Picks the shard a new request of `manifest` goes to. */
export function pickShard(manifest: ModelManifest): number {
  return Math.floor(Math.random() * manifest.batching.shards);
}

/** Refuses at once (503) a request due at `deadlineAtMs` that the shard said it cannot take. */
export function shedIfBusy(manifest: ModelManifest, shard: number, deadlineAtMs: number, nowMs: number): void {
  const key = `${manifest.name}#${shard}`;
  const untilMs = busyUntilMs.get(key);
  if (untilMs !== undefined && untilMs <= nowMs) busyUntilMs.delete(key);
  else if (untilMs !== undefined && deadlineAtMs < untilMs) throw unavailable(`model '${manifest.name}' is overloaded: busy for about ${Math.ceil(untilMs - nowMs)} ms`, Math.max(1, Math.ceil((untilMs - nowMs) / 1000)), "late");
  const pie = pieOf(manifest, shard);
  if (!pie.admits(nowMs)) throw unavailable(`model '${manifest.name}' is overloaded: requests wait ${Math.round(pie.queueDelayMs)} ms on the way to its buffer`, 1, "late");
}

/** Sends a job to the shard (then the next, on a reset); resolves with the result or throws InferenceError. */
export async function dispatchToBuffer(
  namespace: DurableObjectNamespace<BatchBuffer>,
  manifest: ModelManifest,
  job: BufferJob,
  { signal, waitUntil }: DispatchContext,
  firstShard = pickShard(manifest),
): Promise<BufferResult> {
  const shards = manifest.batching.shards;
  let shard = firstShard;
  for (let attempt = 0; ; attempt++) {
    const stub = bufferStub(namespace, manifest.name, shard);
    // The client went away: drop the job from the buffer (kept alive past the request's end).
    const onAbort = () => waitUntil(stub.cancel(job.id).catch(() => false));
    signal?.addEventListener("abort", onAbort, { once: true });
    const pie = pieOf(manifest, shard);
    const sentAtMs = Date.now();
    pie.sent();
    let heldMs: number | undefined;
    try {
      const reply = await stub.infer(job, shard);
      heldMs = reply.heldMs;
      if (!reply.ok) {
        if (reply.busyUntilMs !== undefined) busyUntilMs.set(`${manifest.name}#${shard}`, reply.busyUntilMs);
        throw fromFailureRecord(reply.failure);
      }
      // The buffer ran it in its isolate unless an origin replica served it (the plan may have changed since the route read it).
      return { ...reply, placement: reply.servedBy === "edge" ? "edge" : "origin", shard };
    } catch (error) {
      if (!isBufferFailure(error)) throw error;
      const canRetry = attempt === 0 && !isOverloaded(error) && Date.now() < job.deadlineAtMs && !signal?.aborted;
      if (!canRetry) throw unavailable(isOverloaded(error) ? "batch buffer overloaded" : "batch buffer restarted; retry the request");
      shard = (shard + 1) % shards;
    } finally {
      pie.replied(Date.now() - sentAtMs, heldMs, Date.now());
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
