/**
 * BatchBuffer: the Durable Object that coalesces one model shard's requests into micro-batches.
 * Thin glue around the pure BatchQueue: an in-memory timer releases each batch when its window ends
 * (alarms fire tens of ms late locally, so the alarm is only a backstop), one batch runs at a time,
 * and every request gets exactly one reply: a result, or a failure record with its status.
 */
import { DurableObject } from "cloudflare:workers";
import { BatchQueue, type QueuedRequest, type ReleasedBatch } from "../batching/batch-queue";
import { concatBatch, splitBatch } from "../batching/tensor-batch";
import { runtimeConfig } from "../config";
import { toFailureRecord, unavailable, type FailureRecord } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import { runnerFor } from "../runner/runner-for";
import { BufferStats, type BufferStatsSnapshot } from "./buffer-stats";

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
  /** Epoch ms after which the request must not run. */
  deadlineAtMs: number;
}

/** A buffer's reply to one job. */
export type BufferReply =
  | { ok: true; outputs: Tensor[]; batchRows: number; queueMs: number; inferMs: number; servedBy: string; originMs?: number }
  | { ok: false; failure: FailureRecord };

type Waiter = { job: BufferJob; reply: (r: BufferReply) => void };

/** Buffers and runs one model shard's batches. */
export class BatchBuffer extends DurableObject<Env> {
  private queue?: BatchQueue<Waiter>;
  private isRunning = false;
  private timer?: ReturnType<typeof setTimeout>;
  private timerAtMs?: number;
  private isAlarmSet = false;
  private readonly statistics = new BufferStats();
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();

  /** Queues a job and resolves with its reply once its batch ran (or it failed, expired, was cancelled). */
  infer(job: BufferJob): Promise<BufferReply> {
    const entry = runtimeConfig(this.env).models.get(job.model);
    if (!entry) return Promise.resolve(failure(unavailable(`model '${job.model}' is not served here`)));
    const limits = entry.manifest.batching;
    if (!this.queue) this.queue = new BatchQueue(limits);
    else this.queue.limits = limits;
    const nowMs = this.now();
    if (job.deadlineAtMs <= nowMs) {
      this.statistics.count("expired");
      return Promise.resolve(failure(unavailable("deadline exceeded before the request was queued")));
    }
    return new Promise<BufferReply>((reply) => {
      const queued = this.queue!.add({ id: job.id, rows: job.rows, batchKey: job.batchKey, enqueuedAtMs: nowMs, deadlineAtMs: job.deadlineAtMs, payload: { job, reply } });
      if (!queued) {
        this.statistics.count("rejectedFull");
        reply(failure(unavailable(`model '${job.model}' is overloaded: buffer full`)));
        return;
      }
      void this.pump(false);
    });
  }

  /** Drops a waiting job whose client went away. Returns whether it was still waiting. */
  cancel(id: string): boolean {
    const removed = this.queue?.remove(id);
    if (!removed) return false;
    this.statistics.count("cancelled");
    removed.payload.reply(failure(unavailable("request cancelled by the client")));
    this.schedule();
    return true;
  }

  /** This shard's counters and recent samples. */
  stats(): BufferStatsSnapshot & { queuedRows: number } {
    return { ...this.statistics.snapshot(), queuedRows: this.queue?.queuedRows ?? 0 };
  }

  /** Backstop: releases whatever is due if the in-memory timer did not (e.g. after a restart). */
  override async alarm(): Promise<void> {
    this.isAlarmSet = false;
    await this.pump(false);
  }

  /**
   * Expires and releases batches until nothing is due, one batch at a time. `isTimerFire` marks a
   * wake-up by the window timer, the only case whose lateness measures the timer's precision.
   */
  private async pump(isTimerFire: boolean): Promise<void> {
    if (this.isRunning || !this.queue) return;
    this.isRunning = true;
    try {
      let isFirst = true;
      for (;;) {
        const nowMs = this.now();
        this.expire(nowMs);
        const batch = this.queue.takeReady(nowMs);
        if (!batch) break;
        const windowErrorMs = isTimerFire && isFirst && batch.reason === "window" ? nowMs - batch.windowEndsAtMs : undefined;
        this.statistics.released(batch.rows, batch.reason, windowErrorMs);
        isFirst = false;
        await this.run(batch);
      }
    } finally {
      this.isRunning = false;
    }
    this.schedule();
  }

  private expire(nowMs: number): void {
    const expired = this.queue!.expire(nowMs);
    if (!expired.length) return;
    this.statistics.count("expired", expired.length);
    for (const r of expired) r.payload.reply(failure(unavailable("deadline exceeded while waiting in the batch buffer")));
  }

  private async run(batch: ReleasedBatch<Waiter>): Promise<void> {
    const jobs = batch.requests.map((r) => r.payload.job);
    try {
      const config = runtimeConfig(this.env);
      const entry = config.models.get(jobs[0]!.model)!;
      const { manifest } = entry;
      const inputs = concatBatch(manifest.inputs, jobs.map((j) => j.inputs));
      const startMs = this.now();
      const result = await runnerFor(entry, config).run(inputs, Math.min(...jobs.map((j) => j.deadlineAtMs)));
      const inferMs = this.now() - startMs;
      const parts = splitBatch(manifest.outputs, result.outputs, batch.requests.map((r) => r.rows));
      batch.requests.forEach((r: QueuedRequest<Waiter>, i) => {
        const wanted = new Set(r.payload.job.outputs);
        r.payload.reply({
          ok: true,
          outputs: parts[i]!.filter((t) => wanted.has(t.name)),
          batchRows: batch.rows,
          queueMs: startMs - r.enqueuedAtMs,
          inferMs,
          servedBy: result.servedBy,
          ...(result.originMs !== undefined && { originMs: result.originMs }),
        });
      });
    } catch (error) {
      this.statistics.count("failedBatches");
      const record = toFailureRecord(error);
      if (record.status === 500) console.error(`batch of ${jobs[0]!.model} failed:`, error);
      for (const r of batch.requests) r.payload.reply({ ok: false, failure: record });
    }
  }

  /** Arms the in-memory timer for the next due time, and the alarm as a backstop. */
  private schedule(): void {
    const dueAtMs = this.queue?.nextDueAtMs(this.now());
    if (dueAtMs === undefined) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = this.timerAtMs = undefined;
      return;
    }
    if (this.timerAtMs !== dueAtMs) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timerAtMs = dueAtMs;
      this.timer = setTimeout(() => {
        this.timer = this.timerAtMs = undefined;
        void this.pump(true);
      }, Math.max(0, dueAtMs - this.now()));
    }
    if (!this.isAlarmSet) {
      this.isAlarmSet = true;
      // The backstop neither holds replies behind the output gate nor blocks events while it is stored.
      void this.ctx.storage.setAlarm(dueAtMs + ALARM_BACKSTOP_MS, { allowUnconfirmed: true, allowConcurrency: true });
    }
  }
}

function failure(error: ReturnType<typeof unavailable>): BufferReply {
  return { ok: false, failure: toFailureRecord(error) };
}
