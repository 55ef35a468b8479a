/**
 * ModelRunner that forwards each batch, as one Open Inference Protocol request (binary tensor
 * extension by default, JSON on request), to the origin replica with the fewest outstanding requests. A failed attempt goes to another replica only when
 * retry-policy says it is safe and the deadline leaves time for it; otherwise the batch fails with
 * one InferenceError. Either way `run` settles exactly once, so every request of the batch gets
 * exactly one answer from the buffer.
 */
import { sessionOutputsFor } from "../models/derived-outputs";
import type { ModelManifest } from "../models/manifest";
import { sessionInputs } from "../models/uint8-inputs";
import { unavailable } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import type { ModelRunner, RunResult } from "../runner/model-runner";
import { decodeInferResponse, encodeInferRequest, MalformedResponseError } from "./oip-json";
import { BINARY_CONTENT_TYPE, encodeBinaryInferRequest } from "../protocol/oip-binary";
import type { AttemptResult, HopRequest, OriginPool } from "./origin-pool";
import { clientErrorFor, shouldRetry, type AttemptFailure } from "./retry-policy";

/** Weight of the newest attempt in the running estimate of an attempt's duration. */
const ATTEMPT_EWMA_WEIGHT = 0.2;

/** How tensors travel on the hop. */
export type HopWire = "binary" | "json";

const encoder = new TextEncoder();

/** One attempt as observed by `onAttempt` (tests and benchmarks). */
export interface AttemptRecord {
  replica: number;
  result: AttemptResult;
}

/** Runs a model's batches on an origin pool. */
export class OriginPoolRunner implements ModelRunner {
  /** Running estimate of a successful attempt's duration, in ms (0 until one succeeded). */
  expectedAttemptMs = 0;
  /** Called after every attempt, for observation. */
  onAttempt?: (record: AttemptRecord) => void;
  private readonly path: string;

  constructor(
    private readonly manifest: ModelManifest,
    private readonly pool: OriginPool,
    /** "binary" (default): the OIP binary tensor extension (gpu-origin, Triton); "json": plain OIP JSON. */
    readonly wire: HopWire = "binary",
    /**
     * Whether the pool's servers take this project's extensions (gpu-origin: ORIGIN_EXTENSIONS, the
     * default): UINT8 pixel inputs and derived outputs. Without them (Triton, KServe's runtimes) the
     * runner normalises pixel inputs itself and asks for the session outputs the derived ones come
     * from; the buffer then derives them (pickOutputs).
     */
    readonly extensions = true,
  ) {
    this.path = `/v2/models/${encodeURIComponent(manifest.name)}/versions/${encodeURIComponent(manifest.version)}/infer`;
  }

  async run(batch: Tensor[], deadlineAtMs: number, traceparent?: string, wanted?: readonly string[]): Promise<RunResult> {
    const inputs = this.extensions ? batch : sessionInputs(this.manifest.inputs, batch);
    const outputs = wanted && (this.extensions ? wanted : sessionOutputsFor(this.manifest, wanted));
    void this.pool.refreshHealth();
    const tried = new Set<number>();
    let lastFailure: AttemptFailure | undefined;
    for (;;) {
      const index = await this.choose(tried, deadlineAtMs);
      if (index === undefined) throw lastFailure ? clientErrorFor(lastFailure) : unavailable("no origin replica is available");
      const startMs = this.pool.now();
      if (startMs >= deadlineAtMs) throw unavailable("deadline exceeded before the batch reached the origin");
      tried.add(index);
      const id = randomId();
      const result = await this.pool.attempt(index, { ...this.encode(inputs, id, deadlineAtMs - startMs, outputs), ...(traceparent && { traceparent }) }, deadlineAtMs);
      this.onAttempt?.({ replica: index, result });
      if (result.ok) {
        try {
          const decoded = decodeInferResponse(this.manifest, result.body, id, result.payload, outputs);
          this.expectedAttemptMs = this.expectedAttemptMs ? this.expectedAttemptMs + ATTEMPT_EWMA_WEIGHT * (result.durationMs - this.expectedAttemptMs) : result.durationMs;
          const serviceMs = replicaServiceMs(result.serverTiming);
          return { outputs: decoded, servedBy: `origin/${index}`, originMs: result.durationMs, ...(serviceMs !== undefined && { serviceMs }) };
        } catch (error) {
          if (!(error instanceof MalformedResponseError)) throw error;
          // A 200 whose body does not fit the model: the batch may have run; do not retry.
          this.pool.state.record(index, { kind: "failed" }, this.pool.now());
          throw clientErrorFor({ kind: "server-error", status: 200 });
        }
      }
      lastFailure = result.failure;
      if (!shouldRetry(result.failure, this.pool.now(), deadlineAtMs, this.expectedAttemptMs)) throw clientErrorFor(result.failure);
    }
  }

  /** The wire form of a batch: the binary tensor extension, or plain JSON for servers without it. */
  private encode(inputs: Tensor[], id: string, timeoutMs: number, outputs?: readonly string[]): HopRequest {
    if (this.wire === "json") return { path: this.path, body: encoder.encode(encodeInferRequest(inputs, id, timeoutMs, outputs)), contentType: "application/json" };
    const { body, headerLength } = encodeBinaryInferRequest(inputs, id, timeoutMs, outputs);
    return { path: this.path, body, contentType: BINARY_CONTENT_TYPE, inferenceHeaderLength: headerLength };
  }

  /** An untried admitted replica; when none is admitted, waits for the due probes (within the deadline). */
  private async choose(tried: ReadonlySet<number>, deadlineAtMs: number): Promise<number | undefined> {
    const index = this.pool.state.pick(this.pool.now(), tried);
    if (index !== undefined || this.pool.state.hasAdmitted()) return index;
    const remainingMs = deadlineAtMs - this.pool.now();
    if (remainingMs <= 0) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.pool.refreshHealth(), new Promise<void>((resolve) => (timer = setTimeout(resolve, remainingMs)))]);
    if (timer !== undefined) clearTimeout(timer);
    return this.pool.state.pick(this.pool.now(), tried);
  }
}

/**
 * The replica's own time for the batch from its Server-Timing (total minus queue: what one server of
 * the pool spends on it, without the hop or the wait for that server), when it reports both.
 */
export function replicaServiceMs(serverTiming: string | null): number | undefined {
  if (!serverTiming) return undefined;
  const dur = (name: string) => Number(new RegExp(`(?:^|,)\\s*${name};dur=([0-9.]+)`).exec(serverTiming)?.[1] ?? NaN);
  const serviceMs = dur("total") - dur("queue");
  return Number.isFinite(serviceMs) && serviceMs >= 0 ? serviceMs : undefined;
}

function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}
