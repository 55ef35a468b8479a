/**
 * The one interface every place a batch can run implements: onnxruntime-web inside the edge
 * isolate, or a pool of Open Inference Protocol origin servers. Buffers do not care which.
 * Implementations are registered by name (registry.ts; the names are the Placement values) and
 * must pass the one conformance suite, test/fixtures/runner-conformance.ts.
 */
import type { Tensor } from "../protocol/tensor";

/** What a runner returns for one batch. */
export interface RunResult {
  /** The batch's rows of every session output in manifest order, or of the outputs the run was asked for (`run`'s `outputs`), in that order. */
  outputs: Tensor[];
  /** Label of the server that ran it ("edge", or the origin replica's index). */
  servedBy: string;
  /** Time the origin reported for the hop, when the batch left the isolate (ms). */
  originMs?: number;
  /** Time the batch itself took, without one-off work such as creating the session (ms); the scheduler learns from it. */
  serviceMs?: number;
}

/** Runs one batch of a model. Implementations keep their sessions warm across calls. */
export interface ModelRunner {
  /**
   * Runs a batch: `inputs` in manifest order; rejects with InferenceError on a client-visible
   * failure. `traceparent`: the batch's span, for a runner that calls another server. `outputs`: the
   * outputs (session or derived) the batch's requests want; a runner that calls another server asks
   * it for those only, one that runs a session may return all the session's outputs instead.
   */
  run(inputs: Tensor[], deadlineAtMs: number, traceparent?: string, outputs?: readonly string[]): Promise<RunResult>;
  /** Runners with a session: creates and warms it (once); resolves when a batch runs at full speed. */
  warm?(): Promise<void>;
  /** Runners with a session: whether it is created and warm. */
  isWarm?(): boolean;
}
