/**
 * The "direct" placement: the Worker isolate that took a request runs it itself, with no Durable
 * Object hop: the planner's choice where the hop costs more than a buffer's batching saves. The
 * isolate hosts the same model server as a buffer (model-server.ts: the shared scheduler, batches
 * concatenated and split, admission control, deadlines, statistics, telemetry under this isolate's
 * own negative reporter id), so the requests that meet in one isolate are batched too: lazily, under
 * the plan's maxBatch and window (the planner's direct model: one server, lazy formation, on a shared
 * thread). While the session runs a batch, the requests that arrive wait to be read; the server
 * yields the thread once after the run (BatchLoop's afterRun), so they queue together and the next
 * batch takes them, up to the plan's maxBatch.
 *
 * A Worker's async work belongs to the request that started it: workerd cancels the continuations
 * of a request once it has completed, and its timers with it. So here nothing waits on another
 * request's context. Each batch is run from one of its own requests (`startFromOwnRequest`): every
 * waiting request offers to lead a batch, kept open by its waitUntil until it has led one or been
 * answered; the scheduler hands a batch's run to the first of its requests that is waiting, and a
 * request's continuation runs in its own context even when another request settles it (workerd
 * resolves promises across requests in the creator's context). Each request arms its own deadline
 * timer, which wakes the server to fail it on time; the server itself arms none.
 *
 * An isolate serves a model directly only once its session is created and warm: until then its
 * requests take the buffered path while the session warms in the background, so no request waits
 * for a cold start.
 */
import type { RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import type { ModelManifest } from "../models/manifest";
import { runnerFor } from "../runner/runner-for";
import type { DispatchContext } from "./dispatch";
import { ModelServer, type BufferJob, type BufferReply, type BufferStatsSnapshot, type ServerHost } from "./model-server";

/** This isolate in telemetry: a negative id, apart from the buffers' shard numbers. */
const REPORTER = -1 - Math.floor(Math.random() * 2 ** 30);

type Run = () => Promise<void>;

/** The requests waiting in this isolate, by job id: how to hand one a batch to run (undefined: none, it was answered). */
const waitingToLead = new Map<string, (run: Run | undefined) => void>();

/** Starts a batch's run from the first of its requests still waiting to lead, in that request's context. */
const startFromOwnRequest: NonNullable<ServerHost["worker"]>["start"] = (batch, run) => {
  for (const job of batch.jobs) {
    const lead = waitingToLead.get(job.id);
    if (!lead) continue;
    waitingToLead.delete(job.id);
    return lead(run);
  }
  void run(); // unreachable: a batch's requests wait for it
};

const servers = new Map<string, ModelServer>();

function serverOf(env: Env, model: string): ModelServer {
  let server = servers.get(model);
  if (!server) servers.set(model, (server = new ModelServer(model, { env, reporter: REPORTER, now: () => Date.now(), worker: { start: startFromOwnRequest } })));
  return server;
}

/**
 * Whether this isolate can run `manifest`'s model (placed "direct") now: its session is warm.
 * When it is not, starts warming it in the background (kept alive by `waitUntil`) and says no.
 */
export function isDirectReady(entry: CatalogEntry, manifest: ModelManifest, config: RuntimeConfig, waitUntil: (task: Promise<unknown>) => void): boolean {
  const runner = runnerFor({ ...entry, manifest }, config);
  if (runner.isWarm?.() ?? true) return true;
  waitUntil(runner.warm!().catch((error) => console.warn(`warming ${manifest.name}: ${(error as Error).message}`)));
  return false;
}

/** Creates and warms the session of `manifest`'s model (placed "direct") in this isolate; resolves when it can serve. */
export async function warmDirect(entry: CatalogEntry, manifest: ModelManifest, config: RuntimeConfig): Promise<void> {
  await runnerFor({ ...entry, manifest }, config).warm?.();
}

/** Runs a job in this isolate's model server, batched with the others waiting here; resolves with its reply. */
export async function serveDirect(env: Env, job: BufferJob, { signal, waitUntil }: DispatchContext): Promise<BufferReply> {
  const server = serverOf(env, job.model);
  let lead!: (run: Run | undefined) => void;
  const led = new Promise<Run | undefined>((resolve) => (lead = resolve));
  waitingToLead.set(job.id, lead);
  // This request stays open until the batch it leads has run, even when it was answered first (late).
  waitUntil(led.then((run) => run?.()));
  const onAbort = () => server.cancel(job.id);
  signal?.addEventListener("abort", onAbort, { once: true });
  const reply = server.infer(job, waitUntil); // queued (or refused) by now
  // The server arms no timers: each waiting request wakes it, from its own context, when a batch
  // is due (its window ends) and at the request's deadline, until the request is answered.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armWake = () => {
    const atMs = Math.min(server.nextWakeAtMs() ?? Infinity, job.deadlineAtMs + 1);
    timer = setTimeout(() => (server.wake(), armWake()), Math.max(1, atMs - Date.now()));
  };
  armWake();
  try {
    return await reply;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    waitingToLead.delete(job.id);
    lead(undefined);
  }
}

/** This isolate's direct statistics of `model`, if it served any. */
export function directStats(model: string): BufferStatsSnapshot | undefined {
  return servers.get(model)?.stats();
}
