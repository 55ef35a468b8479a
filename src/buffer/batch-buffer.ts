/**
 * BatchBuffer: the Durable Object that coalesces one model shard's requests into micro-batches.
 * Thin glue around the shared scheduler (src/scheduler/): the BatchLoop admits, forms batches
 * lazily, runs one batch at a time and settles every request exactly once; this object supplies the
 * clock, the model's runner, tensor concat/split and an alarm backstop (local alarms fire tens of
 * ms late, so the in-memory timer does the waiting and the alarm only catches a lost timer).
 * It serves under its model's live plan (src/control/plan-cache.ts) and reports telemetry to the
 * model's controller about once a second, learning the published plan from each reply.
 */
import { DurableObject } from "cloudflare:workers";
import { concatBatch, splitBatch } from "../batching/tensor-batch";
import { runtimeConfig, type RuntimeConfig } from "../config";
import { controllerOf } from "../control/model-controller";
import { knownPlan, learnPlan, poolMembers } from "../control/plan-cache";
import { effectiveManifest } from "../control/plan";
import { TelemetryRecorder } from "../control/telemetry";
import type { ModelManifest } from "../models/manifest";
import { originPoolFor } from "../origin/origin-pool";
import type { CatalogEntry } from "../models/catalog";
import { toFailureRecord, unavailable, type FailureRecord } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import { runnerFor } from "../runner/runner-for";
import { adaptiveWindowPolicy } from "../scheduler/adaptive-window";
import { BatchLoop, type Executed } from "../scheduler/batch-loop";
import { windowPolicy } from "../scheduler/flush-policy";
import { Scheduler } from "../scheduler/scheduler";
import { ServiceEstimate, type ServiceLine } from "../scheduler/service-estimate";
import { SchedulerStats, type SchedulerStatsSnapshot } from "../scheduler/scheduler-stats";

/** Backstop delay of the alarm beyond the in-memory timer, in ms. */
const ALARM_BACKSTOP_MS = 250;
/** Telemetry goes to the controller at most this often; the last of a burst this long after it, ms. */
const REPORT_EVERY_MS = 1000;

/** One request as the Worker hands it to a buffer. */
export interface BufferJob {
  id: string;
  model: string;
  /** The shard this job was sent to (names this buffer in telemetry). */
  shard: number;
  rows: number;
  batchKey: string;
  /** Every manifest input, in manifest order. */
  inputs: Tensor[];
  /** Output names the client wants. */
  outputs: string[];
  /** Epoch ms at which the request fails if it has not been answered. */
  deadlineAtMs: number;
}

/** A buffer's reply to one job. */
export type BufferReply =
  | { ok: true; outputs: Tensor[]; batchRows: number; queueMs: number; inferMs: number; servedBy: string; originMs?: number }
  | { ok: false; failure: FailureRecord; busyUntilMs?: number };

/** What a batch gives each of its requests. */
type JobResult = { outputs: Tensor[]; servedBy: string; originMs?: number };

/** What the statistics endpoint shows of one shard. */
export type BufferStatsSnapshot = SchedulerStatsSnapshot & { queuedRows: number; runningRows: number; serviceMs?: ServiceLine };

/** Buffers and runs one model shard's batches. */
export class BatchBuffer extends DurableObject<Env> {
  private loop?: BatchLoop<BufferJob, JobResult>;
  private alarmAtMs?: number;
  private telemetry?: TelemetryRecorder;
  private lastReportAtMs = -Infinity;
  private reportTimer?: ReturnType<typeof setTimeout>;
  private isReporting = false;
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();

  /** Queues a job and resolves with its reply once its batch ran (or it was refused, expired, cancelled). */
  async infer(job: BufferJob): Promise<BufferReply> {
    const entry = runtimeConfig(this.env).models.get(job.model);
    if (!entry) return { ok: false, failure: toFailureRecord(unavailable(`model '${job.model}' is not served here`)) };
    const telemetry = (this.telemetry ??= new TelemetryRecorder(job.model, job.shard));
    telemetry.arrived(job.rows, this.now());
    this.scheduleReport();
    const outcome = await this.loopFor(entry, this.manifestOf(entry), this.serversOf(entry)).submit({ id: job.id, rows: job.rows, batchKey: job.batchKey, deadlineAtMs: job.deadlineAtMs, input: job });
    if (!outcome.ok) {
      telemetry.failed(job.rows, outcome.busyUntilMs !== undefined ? "refused" : "expired");
      return { ok: false, failure: toFailureRecord(outcome.error), ...(outcome.busyUntilMs !== undefined && { busyUntilMs: outcome.busyUntilMs }) };
    }
    telemetry.answeredIn(outcome.queueMs + outcome.inferMs);
    const wanted = new Set(job.outputs);
    const { outputs, ...served } = outcome.value;
    return { ok: true, outputs: outputs.filter((t) => wanted.has(t.name)), batchRows: outcome.batchRows, queueMs: outcome.queueMs, inferMs: outcome.inferMs, ...served };
  }

  /** Drops a waiting job whose client went away. Returns whether it was still waiting. */
  cancel(id: string): boolean {
    return this.loop?.cancel(id) ?? false;
  }

  /** This shard's counters and recent samples. */
  stats(): BufferStatsSnapshot {
    const scheduler = this.loop?.scheduler;
    const serviceMs = scheduler?.service.fit();
    return { ...(this.loop?.stats ?? new SchedulerStats()).snapshot(), queuedRows: scheduler?.queuedRows ?? 0, runningRows: scheduler?.runningRows ?? 0, ...(serviceMs && { serviceMs }) };
  }

  /** Backstop: starts whatever is due if the in-memory timer did not (e.g. after a restart). */
  override async alarm(): Promise<void> {
    this.alarmAtMs = undefined;
    this.loop?.wake();
  }

  /** The model's manifest under its live plan. */
  private manifestOf(entry: CatalogEntry): ModelManifest {
    return effectiveManifest(entry.manifest, knownPlan(entry.manifest.name)?.plan);
  }

  /**
   * Batches this shard runs at once: one at the edge (one session in one isolate); on the origin its
   * share of the planned pool, so that, as the planner models it, the pool serves one queue of the
   * model's batches on poolSize servers (one shard: exactly that).
   */
  private serversOf(entry: CatalogEntry): number {
    const plan = knownPlan(entry.manifest.name)?.plan;
    return plan?.placement === "origin" ? Math.max(1, Math.ceil(plan.poolSize / plan.shards)) : 1;
  }

  /** Sends the telemetry recorded so far when the last report is old enough, else arms a timer for it. */
  private scheduleReport(): void {
    const dueInMs = this.lastReportAtMs + REPORT_EVERY_MS - this.now();
    if (dueInMs <= 0 && !this.isReporting) return void this.report();
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      if (!this.telemetry?.isEmpty) this.scheduleReport();
    }, Math.max(dueInMs, 50));
  }

  /** One report to the controller; its reply is the published plan. Failures only lose this report. */
  private async report(): Promise<void> {
    const telemetry = this.telemetry!;
    const nowMs = this.now();
    this.lastReportAtMs = nowMs;
    this.isReporting = true;
    const scheduler = this.loop?.scheduler;
    const serviceLine = scheduler?.service.fit();
    const report = telemetry.take(nowMs, { queuedRows: scheduler?.queuedRows ?? 0, runningRows: scheduler?.runningRows ?? 0, ...(serviceLine && { serviceLine }) });
    try {
      learnPlan(telemetry.model, await controllerOf(this.env, telemetry.model).report(report), this.now());
    } catch (error) {
      console.warn(`telemetry of ${telemetry.model}#${telemetry.shard} not delivered: ${(error as Error).message}`);
    } finally {
      this.isReporting = false;
    }
  }

  /** The loop of this shard's model, created on first use; a changed manifest (or plan) re-configures it. */
  private loopFor({ service }: CatalogEntry, manifest: ModelManifest, servers: number): BatchLoop<BufferJob, JobResult> {
    const { maxBatch, windowMs, maxQueueRows } = manifest.batching;
    if (this.loop) {
      this.loop.scheduler.configure({ maxBatch, windowMs, maxQueueRows, servers });
      return this.loop;
    }
    const policy = manifest.batching.adaptiveWindow ? adaptiveWindowPolicy() : windowPolicy;
    // Until batches are measured here, the model's profile stands in (origin: its kernel time, without the hop).
    const prior = manifest.placement === "edge" ? service.edge : service.origin;
    this.loop = new BatchLoop(new Scheduler({ maxBatch, windowMs, maxQueueRows, servers }, policy, new ServiceEstimate(prior)), {
      label: manifest.name,
      now: () => this.now(),
      execute: (jobs, batch) => this.execute(jobs, batch.jobs.map((j) => j.rows)),
      onNextDue: (atMs) => this.armAlarm(atMs),
    });
    return this.loop;
  }

  /** Concatenates the jobs' inputs, runs the batch on the model's runner, and splits the outputs. */
  private async execute(jobs: BufferJob[], rowsOf: number[]): Promise<Executed<JobResult>> {
    const config = runtimeConfig(this.env);
    const catalogEntry = config.models.get(jobs[0]!.model)!;
    const entry = { ...catalogEntry, manifest: this.manifestOf(catalogEntry) };
    const inputs = concatBatch(entry.manifest.inputs, jobs.map((j) => j.inputs));
    if (entry.manifest.placement === "origin") await this.refreshPool(config);
    const startMs = this.now();
    // The batch may run until its last request's deadline; each request still fails at its own.
    const result = await runnerFor(entry, config).run(inputs, Math.max(...jobs.map((j) => j.deadlineAtMs)));
    this.telemetry?.ran(rowsOf.reduce((sum, rows) => sum + rows, 0), result.serviceMs ?? this.now() - startMs);
    const parts = splitBatch(entry.manifest.outputs, result.outputs, rowsOf);
    const results = parts.map((outputs) => ({ outputs, servedBy: result.servedBy, ...(result.originMs !== undefined && { originMs: result.originMs }) }));
    return { results, ...(result.serviceMs !== undefined && { serviceMs: result.serviceMs }) };
  }

  /** Brings the isolate's origin pool to the registry's members (static ORIGIN_URLS while it cannot be reached). */
  private async refreshPool(config: RuntimeConfig): Promise<void> {
    if (!config.originSecret) return;
    originPoolFor(config.originSecret, config.originUrls).state.setMembers(await poolMembers(this.env, this.now(), config.originUrls));
  }

  /** Arms the alarm as a backstop behind the loop's timer (never earlier than needed, once at a time). */
  private armAlarm(dueAtMs: number | undefined): void {
    if (dueAtMs === undefined || this.alarmAtMs !== undefined) return;
    this.alarmAtMs = dueAtMs + ALARM_BACKSTOP_MS;
    // The backstop neither holds replies behind the output gate nor blocks events while it is stored.
    void this.ctx.storage.setAlarm(this.alarmAtMs, { allowUnconfirmed: true, allowConcurrency: true });
  }
}
