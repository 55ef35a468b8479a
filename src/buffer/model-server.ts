/**
 * One model's serving core in one isolate: the shared scheduler's BatchLoop fed with BufferJobs,
 * batches concatenated, run on the model's runner and split, and telemetry reported to the
 * model's controller about once a second (learning the published plan from each reply). The
 * `BatchBuffer` Durable Object (one per model and shard) hosts it, and so does each Worker isolate
 * that serves a model "direct" (direct.ts).
 */
import { concatBatch, ownWidthsOf, splitBatch } from "../batching/tensor-batch";
import { runtimeConfig, type RuntimeConfig } from "../config";
import { controllerOf } from "../control/model-controller";
import { knownPlan, learnPlan, poolMembers } from "../control/plan-cache";
import { effectiveManifest } from "../control/plan";
import { TelemetryRecorder } from "../control/telemetry";
import type { CatalogEntry } from "../models/catalog";
import { cropsWithDerived, outputSpecsNamed, outputSpecsOf, pickOutputs } from "../models/derived-outputs";
import { maxLatencyMsOf, runtimeOf, type ModelManifest } from "../models/manifest";
import { originPoolFor } from "../origin/origin-pool";
import { toFailureRecord, unavailable, type FailureRecord } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import { childSpan, formatTraceparent, traceOf } from "../protocol/trace";
import { runnerFor } from "../runner/runner-for";
import { warmUpInputs } from "../edge/ort-web-runner";
import { adaptiveWindowPolicy } from "../scheduler/adaptive-window";
import { BatchLoop, type Executed, type LoopHost } from "../scheduler/batch-loop";
import { windowPolicy } from "../scheduler/flush-policy";
import { Scheduler } from "../scheduler/scheduler";
import { ServiceEstimate, type ServiceLine } from "../scheduler/service-estimate";
import { SchedulerStats, type SchedulerStatsSnapshot } from "../scheduler/scheduler-stats";

/** Telemetry goes to the controller at most this often, ms. */
const REPORT_EVERY_MS = 1000;

/** Resolves in a later turn of the event loop, after the I/O already waiting for the thread. */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** One request as the Worker hands it to a model server. */
export interface BufferJob {
  id: string;
  model: string;
  rows: number;
  batchKey: string;
  /** Every manifest input, in manifest order. */
  inputs: Tensor[];
  /** Output names the client wants. */
  outputs: string[];
  /** Epoch ms at which the request fails if it has not been answered. */
  deadlineAtMs: number;
  /** Most rows a batch at this request's shape may hold in the isolate's memory (src/edge/limits.ts), when fewer than maxBatch. */
  maxBatchRows?: number;
  /** The request's span at the edge (W3C traceparent): a batch sent to the origin continues its oldest request's trace. */
  traceparent?: string;
}

/**
 * A model server's reply to one job. `heldMs`: from the job's arrival to its reply, as the buffer
 * measured it (the Worker's round trip minus this is the way there and back: src/scheduler/pie.ts).
 */
export type BufferReply =
  | { ok: true; outputs: Tensor[]; batchId?: number; batchRows: number; queueMs: number; inferMs: number; servedBy: string; originMs?: number; heldMs?: number }
  | { ok: false; failure: FailureRecord; busyUntilMs?: number; heldMs?: number };

/** What a batch gives each of its requests. */
type JobResult = { outputs: Tensor[]; servedBy: string; originMs?: number };

/** What the statistics endpoint shows of one server. */
export type BufferStatsSnapshot = SchedulerStatsSnapshot & { queuedRows: number; runningRows: number; serviceMs?: ServiceLine };

/** What a host gives its model servers. */
export interface ServerHost {
  env: Env;
  /** Names this server in telemetry: the buffer's shard. */
  reporter: number;
  /** Epoch ms clock. */
  now(): number;
  /** Told the next time the loop must wake (a Durable Object arms an alarm as a backstop). */
  onNextDue?(atMs: number | undefined): void;
  /**
   * A Worker isolate, whose timers and async work belong to the request that made them (the
   * "direct" placement: direct.ts): the server arms no timers (its waiting requests wake it:
   * nextWakeAtMs), reports go out under the reporting request's waitUntil, and `start` starts each
   * batch from one of its own requests.
   */
  worker?: { start: NonNullable<LoopHost<BufferJob, JobResult>["start"]> };
}

/** What a report says of the server besides its counts. */
export type ReportState = { queuedRows: number; runningRows: number; serviceLine?: ServiceLine };

/** A scheduler's queue and learnt service line, for a report or the statistics (none yet: empty). */
export function reportStateOf(scheduler: Pick<Scheduler<unknown>, "queuedRows" | "runningRows" | "service"> | undefined): ReportState {
  const serviceLine = scheduler?.service.fit();
  return { queuedRows: scheduler?.queuedRows ?? 0, runningRows: scheduler?.runningRows ?? 0, ...(serviceLine && { serviceLine }) };
}

/** The statistics endpoint's view of a server: its counters (none yet: zeros), queue and learnt service line. */
export function statsSnapshot(stats: SchedulerStats | undefined, { serviceLine, ...queue }: ReportState): BufferStatsSnapshot {
  return { ...(stats ?? new SchedulerStats()).snapshot(), ...queue, ...(serviceLine && { serviceMs: serviceLine }) };
}

/**
 * One server's telemetry and its reports to the model's controller: at most one per
 * REPORT_EVERY_MS, sent by the call that finds one due (or, where timers outlive requests, by a
 * timer at the end of the interval); each reply is the published plan, which this isolate learns.
 */
export class ControllerReports {
  readonly telemetry: TelemetryRecorder;
  private lastReportAtMs = -Infinity;
  private reportTimer?: ReturnType<typeof setTimeout>;
  private isReporting = false;

  constructor(
    private readonly env: Env,
    private readonly model: string,
    private readonly reporter: number,
    private readonly now: () => number,
    private readonly hasTimers: boolean,
  ) {
    this.telemetry = new TelemetryRecorder(model, reporter);
  }

  /** Sends the telemetry recorded so far when the last report is old enough (kept alive by `keepAlive`), else arms a timer for it. */
  schedule(keepAlive: (task: Promise<unknown>) => void, state: () => ReportState): void {
    const dueInMs = this.lastReportAtMs + REPORT_EVERY_MS - this.now();
    if (dueInMs <= 0 && !this.isReporting) return keepAlive(this.report(state()));
    if (!this.hasTimers) return;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      if (!this.telemetry.isEmpty) this.schedule(() => undefined, state);
    }, Math.max(dueInMs, 50));
  }

  /** One report to the controller; its reply is the published plan. Failures only lose this report. */
  private async report(state: ReportState): Promise<void> {
    const nowMs = this.now();
    this.lastReportAtMs = nowMs;
    this.isReporting = true;
    const report = this.telemetry.take(nowMs, state);
    try {
      learnPlan(this.model, await controllerOf(this.env, this.model).report(report), this.now());
    } catch (error) {
      console.warn(`telemetry of ${this.model}#${this.reporter} not delivered: ${(error as Error).message}`);
    } finally {
      this.isReporting = false;
    }
  }
}

/** Serves one model in one isolate. */
export class ModelServer {
  private loop?: BatchLoop<BufferJob, JobResult>;
  private warming?: Promise<Tensor[]>;
  private readonly reports: ControllerReports;

  constructor(
    readonly model: string,
    private readonly host: ServerHost,
  ) {
    this.reports = new ControllerReports(host.env, model, host.reporter, host.now, !host.worker);
  }

  private get telemetry(): TelemetryRecorder {
    return this.reports.telemetry;
  }

  /**
   * Queues a job and resolves with its reply once its batch ran (or it was refused, expired,
   * cancelled). `keepAlive` keeps the controller's report this call may send alive (a Worker's
   * waitUntil; a Durable Object needs none).
   */
  async infer(job: BufferJob, keepAlive: (task: Promise<unknown>) => void = () => undefined): Promise<BufferReply> {
    const receivedAtMs = this.host.now();
    const entry = runtimeConfig(this.host.env).models.get(job.model);
    if (!entry) return { ok: false, failure: toFailureRecord(unavailable(`model '${job.model}' is not served here`)), heldMs: 0 };
    this.telemetry.arrived(job.rows, receivedAtMs);
    const outcome = await this.loopFor(entry, this.manifestOf(entry), this.serversOf(entry)).submit({ id: job.id, rows: job.rows, batchKey: job.batchKey, deadlineAtMs: job.deadlineAtMs, ...(job.maxBatchRows !== undefined && { maxBatchRows: job.maxBatchRows }), input: job });
    if (outcome.ok) this.telemetry.answeredIn(outcome.queueMs + outcome.inferMs);
    else this.telemetry.failed(job.rows, outcome.busyUntilMs !== undefined ? "refused" : "expired");
    // Reports go out once this request has its outcome: the controller's call never delays it.
    this.reports.schedule(keepAlive, () => this.loopState());
    const heldMs = this.host.now() - receivedAtMs;
    if (!outcome.ok) return { ok: false, failure: toFailureRecord(outcome.error), ...(outcome.busyUntilMs !== undefined && { busyUntilMs: outcome.busyUntilMs }), heldMs };
    const { outputs, ...served } = outcome.value;
    return { ok: true, outputs: pickOutputs(entry.manifest, outputs, job.outputs), batchId: outcome.batchId, batchRows: outcome.batchRows, queueMs: outcome.queueMs, inferMs: outcome.inferMs, ...served, heldMs };
  }

  /** Drops a waiting job whose client went away. Returns whether it was still waiting. */
  cancel(id: string): boolean {
    return this.loop?.cancel(id) ?? false;
  }

  /**
   * Creates and warms the model's session in this isolate when its batches run here (origin
   * placement: nothing to warm), then runs one request (`inputs`, default zeros) through the batch
   * path (concat, run, split) outside the scheduler, so that the first real request meets compiled
   * code and no statistics count the warm-up. Resolves with that request's outputs. The path runs
   * once per server: later calls (every readiness probe) only wait for that run.
   */
  warm(inputs?: Tensor[]): Promise<Tensor[]> {
    this.warming ??= this.warmOnce(inputs).catch((error) => {
      this.warming = undefined; // a failed warm-up is tried again by the next call
      throw error;
    });
    return this.warming;
  }

  private async warmOnce(inputs?: Tensor[]): Promise<Tensor[]> {
    const config = runtimeConfig(this.host.env);
    const catalogEntry = config.models.get(this.model);
    if (!catalogEntry) return [];
    const manifest = this.manifestOf(catalogEntry);
    if (runtimeOf(manifest.placement) !== "edge") return [];
    this.loopFor(catalogEntry, manifest, this.serversOf(catalogEntry));
    const runner = runnerFor({ ...catalogEntry, manifest }, config);
    await runner.warm?.();
    const requests = [inputs ?? warmUpInputs(manifest)];
    const { sizeClasses } = manifest.batching;
    const batch = concatBatch(manifest.inputs, requests, sizeClasses);
    const crop = sizeClasses && { sizeClasses, widths: ownWidthsOf(manifest.inputs, requests, sizeClasses) };
    return splitBatch(manifest.outputs, (await runner.run(batch, this.host.now() + maxLatencyMsOf(manifest))).outputs, [1], crop)[0]!;
  }

  /** Starts whatever is due (an alarm's backstop; a waiting request's timer in a Worker). */
  wake(): void {
    this.loop?.wake();
  }

  /** When the server must next wake: a batch due on a free server, or a queued request's deadline (undefined: nothing queued). */
  nextWakeAtMs(): number | undefined {
    return this.loop?.scheduler.nextWakeAtMs(this.host.now());
  }

  /** This server's counters and recent samples. */
  stats(): BufferStatsSnapshot {
    return statsSnapshot(this.loop?.stats, this.loopState());
  }

  /** The model's manifest under its live plan. */
  private manifestOf(entry: CatalogEntry): ModelManifest {
    return effectiveManifest(entry.manifest, knownPlan(entry.manifest.name)?.plan);
  }

  /**
   * Batches this server runs at once: one at the edge (one session in one isolate); on the origin
   * its share of the planned pool, so that, as the planner models it, the pool serves one queue of
   * the model's batches on poolSize servers (one shard: exactly that).
   */
  private serversOf(entry: CatalogEntry): number {
    const plan = knownPlan(entry.manifest.name)?.plan;
    return plan?.placement === "origin" ? Math.max(1, Math.ceil(plan.poolSize / plan.shards)) : 1;
  }

  /** Queue and service line for a report. */
  private loopState(): ReportState {
    return reportStateOf(this.loop?.scheduler);
  }

  /** The loop of this model, created on first use; a changed manifest (or plan) re-configures it. */
  private loopFor(entry: CatalogEntry, manifest: ModelManifest, servers: number): BatchLoop<BufferJob, JobResult> {
    const { maxBatch, windowMs, maxQueueRows } = manifest.batching;
    if (this.loop) {
      this.loop.scheduler.configure({ maxBatch, windowMs, maxQueueRows, servers });
      return this.loop;
    }
    const policy = manifest.batching.adaptiveWindow ? adaptiveWindowPolicy() : windowPolicy;
    // Until batches are measured here, the model's profile stands in (origin: its kernel time, without the hop).
    const prior = entry.service[runtimeOf(manifest.placement)];
    this.loop = new BatchLoop(new Scheduler({ maxBatch, windowMs, maxQueueRows, servers }, policy, new ServiceEstimate(prior)), {
      label: manifest.name,
      now: () => this.host.now(),
      execute: (jobs, batch) => this.execute(jobs, batch.jobs.map((j) => j.rows)),
      ...(this.host.onNextDue && { onNextDue: this.host.onNextDue }),
      ...(this.host.worker && { start: this.host.worker.start, setTimer: () => undefined, clearTimer: () => undefined }),
      // A batch that ran here (not on an origin) held workerd's thread: the requests that came
      // meanwhile are read in the next turn, and join the queue before the next batch forms.
      afterRun: () => (this.manifestOf(entry).placement === "origin" ? Promise.resolve() : nextTurn()),
    });
    return this.loop;
  }

  /** Concatenates the jobs' inputs (padded to their size class), runs the batch on the model's runner, and splits (and crops) the outputs. */
  private async execute(jobs: BufferJob[], rowsOf: number[]): Promise<Executed<JobResult>> {
    const config = runtimeConfig(this.host.env);
    const catalogEntry = config.models.get(this.model)!;
    const entry = { ...catalogEntry, manifest: this.manifestOf(catalogEntry) };
    const { sizeClasses } = entry.manifest.batching;
    const requests = jobs.map((j) => j.inputs);
    const inputs = concatBatch(entry.manifest.inputs, requests, sizeClasses);
    const crop = sizeClasses && { sizeClasses: cropsWithDerived(sizeClasses, entry.manifest), widths: ownWidthsOf(entry.manifest.inputs, requests, sizeClasses) };
    // The outputs any of the jobs wants (an origin returns only those; derived ones are computed next to the session).
    const wanted = new Set(jobs.flatMap((j) => j.outputs));
    const names = outputSpecsOf(entry.manifest).map((o) => o.name).filter((n) => wanted.has(n));
    if (entry.manifest.placement === "origin") await this.refreshPool(config);
    const startMs = this.host.now();
    // The batch may run until its last request's deadline; each request still fails at its own. It is
    // a span of its oldest request's trace.
    const trace = formatTraceparent(childSpan(traceOf(jobs[0]!.traceparent)));
    const result = await runnerFor(entry, config).run(inputs, Math.max(...jobs.map((j) => j.deadlineAtMs)), trace, names);
    this.telemetry.ran(rowsOf.reduce((sum, rows) => sum + rows, 0), result.serviceMs ?? this.host.now() - startMs);
    const parts = splitBatch(outputSpecsNamed(entry.manifest, names), pickOutputs(entry.manifest, result.outputs, names), rowsOf, crop);
    const results = parts.map((outputs) => ({ outputs, servedBy: result.servedBy, ...(result.originMs !== undefined && { originMs: result.originMs }) }));
    return { results, ...(result.serviceMs !== undefined && { serviceMs: result.serviceMs }) };
  }

  /** Brings the isolate's origin pool to the registry's members (static ORIGIN_URLS while it cannot be reached). */
  private async refreshPool(config: RuntimeConfig): Promise<void> {
    if (!config.originSecret) return;
    originPoolFor(config.originSecret, config.originUrls, config.originHeaders).state.setMembers(await poolMembers(this.host.env, this.host.now(), config.originUrls));
  }
}
