/**
 * gpu-origin's Prometheus metrics (`GET /metrics`, the text exposition format, with prom-client):
 * the inference metrics every server of this project exposes (src/observability/inference-metrics.ts:
 * requests by status, request/queue/compute duration and batch-size histograms, rejections by
 * reason), plus
 *
 *   eir_inference_queue_rows{model}                    gauge: rows queued now
 *
 * and prom-client's default process metrics (CPU, memory, event loop lag) as `eir_process_*` and
 * `eir_nodejs_*`.
 */
import { Gauge, collectDefaultMetrics } from "prom-client";
import { InferenceMetrics, type AnsweredRequest } from "../src/observability/inference-metrics";
import type { ModelHost } from "./model-host";

export type { AnsweredRequest } from "../src/observability/inference-metrics";

/** The metrics of one gpu-origin process. */
export class OriginMetrics {
  private readonly inference = new InferenceMetrics();

  constructor(host: ModelHost) {
    const registers = [this.registry];
    for (const name of host.models.keys()) this.inference.declare(name);
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
    collectDefaultMetrics({ register: this.registry, prefix: "eir_" });
  }

  get registry() {
    return this.inference.registry;
  }

  /** Records an answered inference request. */
  observe(request: AnsweredRequest): void {
    this.inference.observe(request);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
