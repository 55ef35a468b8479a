/**
 * A synthetic edge `/metrics` for the dashboard's tests: the metric families of the edge's contract
 * kept in a prom-client registry, so its JSON is exactly `getMetricsAsJSON()`'s (finite `le` as
 * numbers, "+Inf" last, `_bucket`/`_sum`/`_count` series), driven by the test: requests,
 * rejections, queue and plan changes, and a restart (every counter back to zero).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** A model's plan as the gauges report it. */
export interface FixturePlan {
  version: number;
  shards: number;
  maxBatchRows: number;
  windowS: number;
  poolReplicas: number;
  placement: "direct" | "edge" | "origin";
}

/** The JSON body of `GET /metrics` with Accept: application/json. */
export interface MetricsBody {
  atMs: number;
  metrics: unknown[];
}

const LATENCY_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** A registry with the edge's families, and what a test does to them. */
export class MetricsFixture {
  private readonly registry = new Registry();
  private readonly requests = new Counter({ name: "eir_inference_requests_total", help: "requests", labelNames: ["model", "status"], registers: [this.registry] });
  private readonly duration = new Histogram({ name: "eir_inference_request_duration_seconds", help: "held", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  private readonly batch = new Histogram({ name: "eir_inference_batch_size", help: "rows", labelNames: ["model"], buckets: BATCH_BUCKETS, registers: [this.registry] });
  private readonly rejections = new Counter({ name: "eir_inference_rejections_total", help: "rejections", labelNames: ["model", "reason"], registers: [this.registry] });
  private readonly queueRows = new Gauge({ name: "eir_inference_queue_rows", help: "queued", labelNames: ["model"], registers: [this.registry] });
  private readonly slo = new Gauge({ name: "eir_slo_seconds", help: "slo", labelNames: ["model", "percentile"], registers: [this.registry] });
  private readonly plan = {
    version: new Gauge({ name: "eir_plan_version", help: "version", labelNames: ["model"], registers: [this.registry] }),
    shards: new Gauge({ name: "eir_plan_shards", help: "shards", labelNames: ["model"], registers: [this.registry] }),
    maxBatchRows: new Gauge({ name: "eir_plan_max_batch_rows", help: "rows", labelNames: ["model"], registers: [this.registry] }),
    windowS: new Gauge({ name: "eir_plan_window_seconds", help: "window", labelNames: ["model"], registers: [this.registry] }),
    poolReplicas: new Gauge({ name: "eir_plan_pool_replicas", help: "replicas", labelNames: ["model"], registers: [this.registry] }),
    placement: new Gauge({ name: "eir_plan_placement", help: "placement", labelNames: ["model", "placement"], registers: [this.registry] }),
  };

  /** Declares `model` with its SLO (percentile label, seconds) and plan; `slo` undefined leaves its SLO gauge out (a missing series). */
  configure(model: string, plan: FixturePlan, slo?: { percentile: string; seconds: number }): void {
    if (slo) this.slo.set({ model, percentile: slo.percentile }, slo.seconds);
    this.plan.version.set({ model }, plan.version);
    this.plan.shards.set({ model }, plan.shards);
    this.plan.maxBatchRows.set({ model }, plan.maxBatchRows);
    this.plan.windowS.set({ model }, plan.windowS);
    this.plan.poolReplicas.set({ model }, plan.poolReplicas);
    for (const placement of ["direct", "edge", "origin"] as const) this.plan.placement.set({ model, placement }, placement === plan.placement ? 1 : 0);
  }

  /** Records one answered request: its status, how long it was held (s) and its batch's rows (none for a refusal). */
  request(model: string, status: number, heldS: number, batchRows?: number): void {
    this.requests.inc({ model, status: String(status) });
    this.duration.observe({ model }, heldS);
    if (batchRows !== undefined) this.batch.observe({ model }, batchRows);
  }

  /** Records a rejection. */
  reject(model: string, reason: "queue_full" | "late" | "expired" | "cancelled"): void {
    this.rejections.inc({ model, reason });
  }

  /** Sets the rows queued now. */
  queue(model: string, rows: number): void {
    this.queueRows.set({ model }, rows);
  }

  /** A restart: every counter and histogram back to zero (gauges keep their values). */
  restart(): void {
    for (const metric of [this.requests, this.duration, this.batch, this.rejections]) metric.reset();
  }

  /** The body of `GET /metrics` (JSON) at `atMs`. */
  async body(atMs: number): Promise<MetricsBody> {
    return { atMs, metrics: await this.registry.getMetricsAsJSON() };
  }
}
