/**
 * gpu-origin's Prometheus metrics (`GET /metrics`, the text exposition format, with prom-client),
 * named after Triton's (nv_inference_*) with this project's `eir_` prefix and base units:
 *
 *   eir_inference_requests_total{model,status}         counter: inference requests by HTTP status
 *   eir_inference_request_duration_seconds{model}      histogram: time the server held a request
 *   eir_inference_queue_duration_seconds{model}        histogram: wait in the batch queue
 *   eir_inference_compute_duration_seconds{model}      histogram: the batch's run (concat, session.run, split)
 *   eir_inference_batch_size{model}                    histogram: rows of the batch each request ran in
 *   eir_inference_queue_rows{model}                    gauge: rows queued now
 *   eir_inference_rejections_total{model,reason}       counter: refused at admission (queue_full, late) or expired
 *
 * Plus prom-client's default process metrics (CPU, memory, event loop lag) as `eir_process_*` and
 * `eir_nodejs_*`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ModelHost } from "./model-host";

/** Buckets of the latency histograms, s: 1 ms to 10 s. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets of the batch-size histogram, rows. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** One inference request as the server answered it. */
export interface AnsweredRequest {
  model: string;
  status: number;
  totalMs: number;
  /** When it ran in a batch. */
  served?: { batchRows: number; queueMs: number; inferMs: number };
}

/** The metrics of one gpu-origin process. */
export class OriginMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"model" | "status">;
  private readonly duration: Histogram<"model">;
  private readonly queue: Histogram<"model">;
  private readonly compute: Histogram<"model">;
  private readonly batchSize: Histogram<"model">;

  constructor(host: ModelHost) {
    const registers = [this.registry];
    this.requests = new Counter({ name: "eir_inference_requests_total", help: "Inference requests by model and HTTP status.", labelNames: ["model", "status"], registers });
    this.duration = new Histogram({ name: "eir_inference_request_duration_seconds", help: "Time the server held an inference request, s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.queue = new Histogram({ name: "eir_inference_queue_duration_seconds", help: "Wait of a request in its model's batch queue, s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.compute = new Histogram({ name: "eir_inference_compute_duration_seconds", help: "Run of the batch a request was in (concat, session.run, split), s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.batchSize = new Histogram({ name: "eir_inference_batch_size", help: "Rows of the batch each request ran in.", labelNames: ["model"], buckets: BATCH_BUCKETS, registers });
    const loaded = () => [...host.models.values()].flatMap((m) => (m.status.state === "ready" ? [{ name: m.manifest.name, stats: m.status.batcher.stats() }] : []));
    new Gauge({
      name: "eir_inference_queue_rows",
      help: "Rows queued now, by model.",
      labelNames: ["model"],
      registers,
      collect() {
        for (const { name, stats } of loaded()) this.set({ model: name }, stats.queuedRows);
      },
    });
    // The schedulers count refusals themselves; the counter follows their totals.
    const seen = new Map<string, number>();
    new Counter({
      name: "eir_inference_rejections_total",
      help: "Requests refused at admission (queue_full: the queue is full; late: it would miss its deadline) or expired in the queue, by model and reason.",
      labelNames: ["model", "reason"],
      registers,
      collect() {
        for (const { name, stats } of loaded()) {
          for (const [reason, total] of [["queue_full", stats.rejectedFull], ["late", stats.rejectedLate], ["expired", stats.expired + stats.expiredRunning]] as const) {
            const key = `${name}\n${reason}`;
            this.inc({ model: name, reason }, total - (seen.get(key) ?? 0));
            seen.set(key, total);
          }
        }
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "eir_" });
  }

  /** Records an answered inference request. */
  observe({ model, status, totalMs, served }: AnsweredRequest): void {
    this.requests.inc({ model, status: String(status) });
    this.duration.observe({ model }, totalMs / 1000);
    if (!served) return;
    this.queue.observe({ model }, served.queueMs / 1000);
    this.compute.observe({ model }, served.inferMs / 1000);
    this.batchSize.observe({ model }, served.batchRows);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
