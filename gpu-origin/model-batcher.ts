/**
 * The origin's batching for one model: requests that arrive while the session is busy (or within
 * `windowMs` of a lone arrival) merge into one run of up to `maxBatch` rows, using the same pure
 * BatchQueue and tensor concat/split as the edge. One session run at a time; the queue is bounded
 * (503 with Retry-After when full); requests past their deadline are answered 503 without running.
 * Every submitted request settles exactly once.
 */
import { BatchQueue, type QueueLimits, type ReleasedBatch } from "../src/batching/batch-queue";
import { concatBatch, splitBatch } from "../src/batching/tensor-batch";
import type { ModelManifest } from "../src/models/manifest";
import { unavailable } from "../src/protocol/errors";
import type { InferRequest } from "../src/protocol/infer-request";
import type { Tensor } from "../src/protocol/tensor";
import type { OriginSession } from "./execution-backend";

/** What a request gets back: its rows of every manifest output, and how its batch went. */
export interface BatchedResult {
  outputs: Tensor[];
  batchRows: number;
  /** Time from submission to the start of its session run, in ms. */
  queueMs: number;
  /** Duration of session.run for its batch, in ms. */
  inferMs: number;
}

/** Counters served by the statistics endpoint. */
export interface BatcherStats {
  batches: number;
  rows: number;
  rejectedFull: number;
  expired: number;
  failedBatches: number;
  queuedRows: number;
  runningRows: number;
}

interface Job {
  inputs: Tensor[];
  resolve(result: BatchedResult): void;
  reject(error: unknown): void;
}

let nextId = 0;

/** Queues and runs one model's requests, one session run at a time. */
export class ModelBatcher {
  private readonly queue: BatchQueue<Job>;
  private isRunning = false;
  private isPumpScheduled = false;
  private timer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];
  private readonly counts = { batches: 0, rows: 0, rejectedFull: 0, expired: 0, failedBatches: 0 };
  private runningRows = 0;

  constructor(
    private readonly manifest: ModelManifest,
    private readonly session: OriginSession,
    limits: QueueLimits,
    /** Epoch ms clock with sub-ms resolution. */
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    this.queue = new BatchQueue({ ...limits });
  }

  /** Queues a parsed request; resolves with its outputs or rejects with an InferenceError (503 when full or late). */
  submit(request: InferRequest, deadlineAtMs: number): Promise<BatchedResult> {
    const nowMs = this.now();
    return new Promise<BatchedResult>((resolve, reject) => {
      const isQueued = this.queue.add({ id: String(nextId++), rows: request.rows, batchKey: request.batchKey, enqueuedAtMs: nowMs, deadlineAtMs, payload: { inputs: request.inputs, resolve, reject } });
      if (!isQueued) {
        this.counts.rejectedFull++;
        reject(unavailable(`model '${this.manifest.name}' is overloaded: origin queue full`));
        return;
      }
      this.schedulePump();
    });
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Current counters. */
  stats(): BatcherStats {
    return { ...this.counts, queuedRows: this.queue.queuedRows, runningRows: this.runningRows };
  }

  private isIdle(): boolean {
    return !this.isRunning && this.queue.queuedRows === 0;
  }

  /** Pumps on the next turn, so requests arriving in the same turn join one batch. */
  private schedulePump(): void {
    if (this.isPumpScheduled) return;
    this.isPumpScheduled = true;
    setImmediate(() => {
      this.isPumpScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.isRunning) return;
    this.isRunning = true;
    try {
      for (;;) {
        const nowMs = this.now();
        for (const r of this.queue.expire(nowMs)) {
          this.counts.expired++;
          r.payload.reject(unavailable("deadline exceeded while waiting at the origin"));
        }
        const batch = this.queue.takeReady(nowMs);
        if (!batch) break;
        await this.run(batch);
      }
    } finally {
      this.isRunning = false;
    }
    this.armTimer();
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async run(batch: ReleasedBatch<Job>): Promise<void> {
    this.runningRows = batch.rows;
    const startMs = this.now();
    try {
      const inputs = concatBatch(this.manifest.inputs, batch.requests.map((r) => r.payload.inputs));
      const outputs = await this.session.run(inputs);
      const inferMs = this.now() - startMs;
      const parts = splitBatch(this.manifest.outputs, outputs, batch.requests.map((r) => r.rows));
      this.counts.batches++;
      this.counts.rows += batch.rows;
      batch.requests.forEach((r, i) => r.payload.resolve({ outputs: parts[i]!, batchRows: batch.rows, queueMs: startMs - r.enqueuedAtMs, inferMs }));
    } catch (error) {
      this.counts.failedBatches++;
      console.error(`gpu-origin: batch of ${this.manifest.name} failed:`, error);
      for (const r of batch.requests) r.payload.reject(error);
    } finally {
      this.runningRows = 0;
    }
  }

  /** Wakes the pump when the next window ends or deadline passes. */
  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const dueAtMs = this.queue.nextDueAtMs(this.now());
    if (dueAtMs === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedulePump();
    }, Math.max(0, dueAtMs - this.now()));
  }
}
