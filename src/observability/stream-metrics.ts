/**
 * The metrics of streams (docs/streaming.md), recorded by each stream shard and delivered to the
 * model's controller as the request metrics are (src/edge/request-metrics.ts), so `/metrics` sums
 * them over shards and survives hibernation:
 *
 *   eir_stream_opens_total{model,status}            counter: upgrades a shard answered (101 admitted, 503 full)
 *   eir_stream_closes_total{model,code}             counter: streams ended, by close code (1000 asked, 1013
 *                                                   overloaded, 1001 the client went away, ...)
 *   eir_stream_chunks_total{model,outcome}          counter: chunks by outcome (answered; queue_full, late,
 *                                                   expired: the scheduler did not run it; failed)
 *   eir_stream_chunk_duration_seconds{model}        histogram: a chunk's arrival at its shard to its answer
 *   eir_stream_step_rows{model}                     histogram: chunks per batch (a step, or part of one)
 *
 * Open streams = opens with status 101 minus closes. Same buckets as the inference histograms.
 */
import Counter from "prom-client/lib/counter.js";
import Histogram from "prom-client/lib/histogram.js";
import Registry from "prom-client/lib/registry.js";
import { BATCH_BUCKETS, LATENCY_BUCKETS_S, type MetricFamily } from "./inference-metrics";

/** One stream shard's metrics, in their own registry. */
export class StreamMetrics {
  readonly registry = new Registry();
  private readonly opens: Counter<"model" | "status">;
  private readonly closes: Counter<"model" | "code">;
  private readonly chunks: Counter<"model" | "outcome">;
  private readonly chunkDuration: Histogram<"model">;
  private readonly stepRows: Histogram<"model">;

  constructor(readonly model: string) {
    const registers = [this.registry];
    this.opens = new Counter({ name: "eir_stream_opens_total", help: "Stream upgrades a shard answered, by status (101 admitted, 503 the shard is full).", labelNames: ["model", "status"], registers });
    this.closes = new Counter({ name: "eir_stream_closes_total", help: "Streams ended, by WebSocket close code.", labelNames: ["model", "code"], registers });
    this.chunks = new Counter({ name: "eir_stream_chunks_total", help: "Stream chunks by outcome: answered, refused (queue_full, late), expired, or failed.", labelNames: ["model", "outcome"], registers });
    this.chunkDuration = new Histogram({ name: "eir_stream_chunk_duration_seconds", help: "A stream chunk's arrival at its shard to its answer, s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.stepRows = new Histogram({ name: "eir_stream_step_rows", help: "Chunks per stream batch (a step, or part of one).", labelNames: ["model"], buckets: BATCH_BUCKETS, registers });
  }

  /** A stream upgrade answered with `status`. */
  opened(status: 101 | 503): void {
    this.opens.inc({ model: this.model, status: String(status) });
  }

  /** A stream ended with close `code`. */
  closed(code: number): void {
    this.closes.inc({ model: this.model, code: String(code) });
  }

  /** A chunk answered after `ms`, or not run (`outcome`). */
  chunk(outcome: "answered" | "queue_full" | "late" | "expired" | "cancelled" | "failed", ms?: number): void {
    this.chunks.inc({ model: this.model, outcome });
    if (ms !== undefined) this.chunkDuration.observe({ model: this.model }, ms / 1000);
  }

  /** A batch of `rows` chunks ran. */
  step(rows: number): void {
    this.stepRows.observe({ model: this.model }, rows);
  }

  /** The families recorded so far (prom-client's JSON). */
  async families(): Promise<MetricFamily[]> {
    return (await this.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
  }
}
