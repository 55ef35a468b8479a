/**
 * The origin's batching for one model: a thin adapter over the shared scheduler (src/scheduler/),
 * the same lazy formation, per-request deadlines and admission control as the edge buffer, with
 * onnxruntime-node as the server (one session run at a time) and tensor concat/split from
 * src/batching (size classes padded and cropped as at the edge). Every submitted request settles exactly once; failures reject with an
 * InferenceError (503 with Retry-After when refused or late).
 */
import { concatBatch, ownWidthsOf, splitBatch } from "../src/batching/tensor-batch";
import type { ModelManifest } from "../src/models/manifest";
import { sessionInputs } from "../src/models/uint8-inputs";
import type { InferRequest } from "../src/protocol/infer-request";
import type { Tensor } from "../src/protocol/tensor";
import { BatchLoop } from "../src/scheduler/batch-loop";
import { windowPolicy } from "../src/scheduler/flush-policy";
import { Scheduler, type SchedulerLimits } from "../src/scheduler/scheduler";
import type { SchedulerStatsSnapshot } from "../src/scheduler/scheduler-stats";
import { ServiceEstimate, type ServiceLine } from "../src/scheduler/service-estimate";
import type { OriginSession } from "./execution-backend";

/** What a request gets back: its rows of every manifest output, and how its batch went. */
export interface BatchedResult {
  outputs: Tensor[];
  /** The batch's number in this model's batcher. */
  batchId: number;
  batchRows: number;
  /** Time from admission to the start of its batch, in ms. */
  queueMs: number;
  /** Duration of its batch (concat, session.run, split), in ms. */
  inferMs: number;
}

/** Counters served by the statistics endpoint. */
export type BatcherStats = SchedulerStatsSnapshot & { queuedRows: number; runningRows: number };

let nextId = 0;

/** Queues and runs one model's requests, one session run at a time. */
export class ModelBatcher {
  private readonly loop: BatchLoop<Tensor[], Tensor[]>;

  constructor(
    private readonly manifest: ModelManifest,
    session: OriginSession,
    limits: SchedulerLimits,
    /** Service time per batch size to start from (the model's profile), until batches are measured. */
    prior?: ServiceLine,
    /** Epoch ms clock with sub-ms resolution. */
    now: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    this.loop = new BatchLoop(new Scheduler({ ...limits }, windowPolicy, new ServiceEstimate(prior)), {
      label: manifest.name,
      now,
      // Requests that arrive in the same turn of the event loop join one batch.
      defer: (run) => setImmediate(run),
      execute: async (inputs, batch) => {
        // Size classes: requests of one class are padded to its width and their outputs cropped back.
        const { sizeClasses } = manifest.batching;
        const crop = sizeClasses && { sizeClasses, widths: ownWidthsOf(manifest.inputs, inputs, sizeClasses) };
        const batchInputs = sessionInputs(manifest.inputs, concatBatch(manifest.inputs, inputs, sizeClasses));
        return { results: splitBatch(manifest.outputs, await session.run(batchInputs), batch.jobs.map((j) => j.rows), crop) };
      },
    });
  }

  /** Queues a parsed request; resolves with its outputs or rejects with an InferenceError. */
  async submit(request: InferRequest, deadlineAtMs: number): Promise<BatchedResult> {
    const outcome = await this.loop.submit({ id: String(nextId++), rows: request.rows, batchKey: request.batchKey, deadlineAtMs, input: request.inputs });
    if (!outcome.ok) throw outcome.error;
    return { outputs: outcome.value, batchId: outcome.batchId, batchRows: outcome.batchRows, queueMs: outcome.queueMs, inferMs: outcome.inferMs };
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    return this.loop.whenIdle();
  }

  /** Current counters. */
  stats(): BatcherStats {
    return { ...this.loop.stats.snapshot(), queuedRows: this.loop.scheduler.queuedRows, runningRows: this.loop.scheduler.runningRows };
  }
}
