/**
 * BatchBuffer: the Durable Object that coalesces one model shard's requests into micro-batches.
 * Thin glue around the shared scheduler (src/scheduler/): the BatchLoop admits, forms batches
 * lazily, runs one batch at a time and settles every request exactly once; this object supplies the
 * clock, the model's runner, tensor concat/split and an alarm backstop (local alarms fire tens of
 * ms late, so the in-memory timer does the waiting and the alarm only catches a lost timer).
 */
import { DurableObject } from "cloudflare:workers";
import { concatBatch, splitBatch } from "../batching/tensor-batch";
import { runtimeConfig } from "../config";
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

/** One request as the Worker hands it to a buffer. */
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
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();

  /** Queues a job and resolves with its reply once its batch ran (or it was refused, expired, cancelled). */
  async infer(job: BufferJob): Promise<BufferReply> {
    const entry = runtimeConfig(this.env).models.get(job.model);
    if (!entry) return { ok: false, failure: toFailureRecord(unavailable(`model '${job.model}' is not served here`)) };
    const outcome = await this.loopFor(entry).submit({ id: job.id, rows: job.rows, batchKey: job.batchKey, deadlineAtMs: job.deadlineAtMs, input: job });
    if (!outcome.ok) return { ok: false, failure: toFailureRecord(outcome.error), ...(outcome.busyUntilMs !== undefined && { busyUntilMs: outcome.busyUntilMs }) };
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

  /** The loop of this shard's model, created on first use; a changed manifest re-configures it. */
  private loopFor({ manifest, service }: CatalogEntry): BatchLoop<BufferJob, JobResult> {
    const { maxBatch, windowMs, maxQueueRows } = manifest.batching;
    if (this.loop) {
      this.loop.scheduler.configure({ maxBatch, windowMs, maxQueueRows });
      return this.loop;
    }
    const policy = manifest.batching.adaptiveWindow ? adaptiveWindowPolicy() : windowPolicy;
    // Until batches are measured here, the model's profile stands in (origin: its kernel time, without the hop).
    const prior = manifest.placement === "edge" ? service.edge : service.origin;
    this.loop = new BatchLoop(new Scheduler({ maxBatch, windowMs, maxQueueRows }, policy, new ServiceEstimate(prior)), {
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
    const entry = config.models.get(jobs[0]!.model)!;
    const inputs = concatBatch(entry.manifest.inputs, jobs.map((j) => j.inputs));
    // The batch may run until its last request's deadline; each request still fails at its own.
    const result = await runnerFor(entry, config).run(inputs, Math.max(...jobs.map((j) => j.deadlineAtMs)));
    const parts = splitBatch(entry.manifest.outputs, result.outputs, rowsOf);
    const results = parts.map((outputs) => ({ outputs, servedBy: result.servedBy, ...(result.originMs !== undefined && { originMs: result.originMs }) }));
    return { results, ...(result.serviceMs !== undefined && { serviceMs: result.serviceMs }) };
  }

  /** Arms the alarm as a backstop behind the loop's timer (never earlier than needed, once at a time). */
  private armAlarm(dueAtMs: number | undefined): void {
    if (dueAtMs === undefined || this.alarmAtMs !== undefined) return;
    this.alarmAtMs = dueAtMs + ALARM_BACKSTOP_MS;
    // The backstop neither holds replies behind the output gate nor blocks events while it is stored.
    void this.ctx.storage.setAlarm(this.alarmAtMs, { allowUnconfirmed: true, allowConcurrency: true });
  }
}
