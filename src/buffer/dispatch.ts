/**
 * Worker side of the buffers: picks a shard for a request, hands it over, and turns the reply back
 * into a result or an InferenceError. A buffer answers every expected failure with a reply, so an
 * exception from the call means its Durable Object failed before answering (reset, eviction,
 * crash): the request is sent once more, to the next shard, while its deadline allows. The failed
 * attempt produced no reply, so the client still gets exactly one. Overload errors are not retried.
 *
 * Every call and reply also goes to the model's front door (front-door.ts), which refuses requests
 * before their bodies are parsed while a shard is busy or the way to it is congested.
 */
import { env } from "cloudflare:workers";
import { runtimeConfig } from "../config";
import type { ModelManifest, Placement } from "../models/manifest";
import { fromFailureRecord, InferenceError, unavailable } from "../protocol/errors";
import { FrontDoor } from "./front-door";
import type { BatchBuffer } from "./batch-buffer";
import { ControllerReports, type BufferJob, type BufferReply } from "./model-server";

/** A successful reply, with where it was served: the placement, and the shard for buffered ones. */
export type BufferResult = Extract<BufferReply, { ok: true }> & { placement: Placement; shard?: number };

/** How the caller's request is tied to the dispatch: its abort signal, and a way to finish work after it ends. */
export interface DispatchContext {
  signal: AbortSignal | undefined;
  waitUntil(promise: Promise<unknown>): void;
}

/** This isolate's front door in telemetry: a negative id, apart from the buffers' shard numbers and the direct path's. */
const FRONT_DOOR_REPORTER = -1 - Math.floor(Math.random() * 2 ** 30);

/** Per model: this isolate's front door (front-door.ts) and its reports to the model's controller. */
const doors = new Map<string, { door: FrontDoor; reports: ControllerReports }>();

function doorOf(manifest: ModelManifest): { door: FrontDoor; reports: ControllerReports } {
  let found = doors.get(manifest.name);
  if (!found) {
    const reports = new ControllerReports(env as Env, manifest.name, FRONT_DOOR_REPORTER, () => Date.now(), false);
    doors.set(manifest.name, (found = { door: new FrontDoor(manifest, reports.telemetry), reports }));
  }
  return found;
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

/** Refuses at once (503) a request for `shard` due at `deadlineAtMs` that the model's front door turns away (counted in its telemetry). */
export function shedIfBusy(manifest: ModelManifest, shard: number, deadlineAtMs: number, nowMs: number, waitUntil: (promise: Promise<unknown>) => void): void {
  const { door, reports } = doorOf(manifest);
  const refusal = door.refusal(shard, deadlineAtMs, nowMs);
  if (!refusal) return;
  reports.schedule(waitUntil, () => ({ queuedRows: 0, runningRows: 0 }));
  throw refusal;
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
  const { door } = doorOf(manifest);
  let shard = firstShard;
  for (let attempt = 0; ; attempt++) {
    const sentTo = shard;
    const stub = bufferStub(namespace, manifest.name, sentTo);
    // The client went away: drop the job from the buffer (kept alive past the request's end).
    const onAbort = () => waitUntil(stub.cancel(job.id).catch(() => false));
    signal?.addEventListener("abort", onAbort, { once: true });
    const sentAtMs = Date.now();
    door.sent(sentTo, job.rows);
    let reply: BufferReply | undefined;
    try {
      reply = await stub.infer(job, sentTo);
      if (!reply.ok) throw fromFailureRecord(reply.failure);
      // The buffer ran it in its isolate unless an origin replica served it (the plan may have changed since the route read it).
      return { ...reply, placement: reply.servedBy === "edge" ? "edge" : "origin", shard: sentTo };
    } catch (error) {
      if (!isBufferFailure(error)) throw error;
      const canRetry = attempt === 0 && !isOverloaded(error) && Date.now() < job.deadlineAtMs && !signal?.aborted;
      if (!canRetry) throw unavailable(isOverloaded(error) ? "batch buffer overloaded" : "batch buffer restarted; retry the request");
      shard = (shard + 1) % shards;
    } finally {
      door.replied(sentTo, Date.now() - sentAtMs, reply, Date.now());
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
