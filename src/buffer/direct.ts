/**
 * The "direct" placement: the Worker isolate that took a request runs it itself, with no Durable
 * Object hop: the planner's choice where batching cannot pay (per-row service time nearly flat,
 * the hop costing more than a batch amortises). Each request is its own batch, run from its own
 * request context: a Worker may not share work between requests (I/O objects, timers included,
 * belong to the request that made them, and workerd cancels the continuations of promises whose
 * request has completed), so requests never wait on one another's batches here. The isolate's
 * onnxruntime-web session runs one call at a time, so the requests of a model form one FIFO queue
 * on one server, the M/G/1 queue the planner models for this placement (lazy, window 0, maxBatch 1).
 *
 * Per isolate and model: the session (shared with any buffer in the isolate), its learnt service
 * time, admission control (refused at once with 503 when the work queued ahead would make the
 * request miss its deadline, or when maxQueueRows are in flight), per-request deadlines (a request
 * still queued at its deadline gets 503 and its run is skipped), statistics, and telemetry to the
 * model's controller under this isolate's own (negative) reporter id. An isolate serves a model
 * directly only once its session is created and warm: until then its requests take the buffered
 * path while the session warms in the background, so no request waits for a cold start.
 */
import type { RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import { pickOutputs } from "../models/derived-outputs";
import type { ModelManifest } from "../models/manifest";
import { InferenceError, toFailureRecord, unavailable } from "../protocol/errors";
import { runnerFor } from "../runner/runner-for";
import { busyRefusal } from "./front-door";
import { ServiceEstimate } from "../scheduler/service-estimate";
import { SchedulerStats } from "../scheduler/scheduler-stats";
import type { DispatchContext } from "./dispatch";
import { ControllerReports, statsSnapshot, type BufferJob, type BufferReply, type BufferStatsSnapshot, type ReportState } from "./model-server";

/** This isolate in telemetry: a negative id, apart from the buffers' shard numbers. */
const REPORTER = -1 - Math.floor(Math.random() * 2 ** 30);

/** One model served directly in this isolate. */
class DirectModel {
  readonly stats = new SchedulerStats();
  private readonly service: ServiceEstimate;
  private readonly reports: ControllerReports;
  /** Admitted and not yet answered: rows, and the predicted service time of their runs, ms. */
  private inFlightRows = 0;
  private inFlightMs = 0;

  constructor(env: Env, entry: CatalogEntry) {
    this.service = new ServiceEstimate(entry.service.edge);
    this.reports = new ControllerReports(env, entry.manifest.name, REPORTER, () => Date.now(), false);
  }

  async serve(entry: CatalogEntry, manifest: ModelManifest, config: RuntimeConfig, job: BufferJob, { signal, waitUntil }: DispatchContext): Promise<BufferReply> {
    const nowMs = Date.now();
    const runMs = this.service.ms(job.rows);
    this.reports.telemetry.arrived(job.rows, nowMs);
    const busyUntilMs = nowMs + this.inFlightMs;
    const isQueueFull = this.inFlightRows + job.rows > manifest.batching.maxQueueRows;
    // An idle isolate always admits (a stale estimate corrects itself), as the scheduler does.
    if (this.inFlightRows > 0 && (isQueueFull || busyUntilMs + runMs > job.deadlineAtMs)) {
      this.stats.count(isQueueFull ? "rejectedFull" : "rejectedLate", job.rows);
      this.reports.telemetry.failed(job.rows, "refused");
      this.reports.schedule(waitUntil, () => this.state());
      const error = busyRefusal(job.model, busyUntilMs, nowMs, isQueueFull ? "queue_full" : "late");
      return { ok: false, failure: toFailureRecord(error), busyUntilMs };
    }
    this.stats.admitted(job.rows);
    this.inFlightRows += job.rows;
    this.inFlightMs += runMs;
    try {
      const run = runnerFor({ ...entry, manifest }, config).run(job.inputs, job.deadlineAtMs);
      // The request stays open until its run settles (answered late or not): a run settling after its request completed would do so outside any request.
      waitUntil(run.catch(() => undefined));
      const result = await withDeadline(run, job.deadlineAtMs, signal);
      const serviceMs = result.serviceMs ?? 0;
      this.service.observe(job.rows, serviceMs);
      this.stats.started(job.rows, "idle");
      this.reports.telemetry.ran(job.rows, serviceMs);
      this.reports.telemetry.answeredIn(Date.now() - nowMs);
      return { ok: true, outputs: pickOutputs(manifest, result.outputs, job.outputs), batchRows: job.rows, queueMs: Math.max(0, Date.now() - nowMs - serviceMs), inferMs: serviceMs, servedBy: result.servedBy };
    } catch (error) {
      if (error instanceof InferenceError && error.status === 503) {
        this.stats.count(signal?.aborted ? "cancelled" : "expired", job.rows);
        this.reports.telemetry.failed(job.rows, "expired");
      } else this.stats.count("failedBatches", 1);
      return { ok: false, failure: toFailureRecord(error) };
    } finally {
      this.inFlightRows -= job.rows;
      this.inFlightMs = Math.max(0, this.inFlightMs - runMs);
      this.reports.schedule(waitUntil, () => this.state());
    }
  }

  private state(): ReportState {
    const serviceLine = this.service.fit();
    return { queuedRows: this.inFlightRows, runningRows: 0, ...(serviceLine && { serviceLine }) };
  }

  snapshot(): BufferStatsSnapshot {
    return statsSnapshot(this.stats, this.state());
  }
}

/**
 * `run`, or a 503 at `deadlineAtMs` (or when `signal` aborts) if it has not finished by then; the
 * timer is this request's own. A run still queued then is skipped by the runner (its deadline).
 */
async function withDeadline<T>(run: Promise<T>, deadlineAtMs: number, signal: AbortSignal | undefined): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable("deadline exceeded while waiting for the isolate's session", 1, "expired")), Math.max(0, deadlineAtMs - Date.now()));
    onAbort = () => reject(unavailable("request cancelled by the client", 1, "cancelled"));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([run, late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    run.catch(() => undefined);
  }
}

const models = new Map<string, DirectModel>();

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

/** Runs a job in this isolate, from this request's context; resolves with its reply. */
export function serveDirect(env: Env, entry: CatalogEntry, manifest: ModelManifest, config: RuntimeConfig, job: BufferJob, context: DispatchContext): Promise<BufferReply> {
  let model = models.get(job.model);
  if (!model) models.set(job.model, (model = new DirectModel(env, entry)));
  return model.serve(entry, manifest, config, job, context);
}

/** This isolate's direct statistics of `model`, if it served any. */
export function directStats(model: string): BufferStatsSnapshot | undefined {
  return models.get(model)?.snapshot();
}

