/**
 * The inference metrics of the edge and of gpu-origin: one set of names, helps and buckets, named
 * after Triton's (nv_inference_*) with this project's `eir_` prefix and base units, kept with
 * prom-client's Registry, Counter and Histogram (imported one module at a time, so the same code runs
 * in workerd and in Node):
 *
 *   eir_inference_requests_total{model,status}         counter: inference requests by HTTP status
 *   eir_inference_request_duration_seconds{model}      histogram: time the server held a request
 *   eir_inference_queue_duration_seconds{model}        histogram: wait in the batch queue
 *   eir_inference_compute_duration_seconds{model}      histogram: the batch's run (concat, session.run, split)
 *   eir_inference_batch_size{model}                    histogram: rows of the batch each request ran in
 *   eir_inference_rejections_total{model,reason}       counter: refused at admission (queue_full, late),
 *                                                      expired at the deadline, or cancelled by the client
 *
 * Families also travel as prom-client's JSON (`getMetricsAsJSON`), and `mergeFamilies` sums them
 * series by series (prom-client's own "sum" aggregator): the edge adds each isolate's deltas into
 * totals that way, and renders totals with `renderFamilies`.
 */
import Counter from "prom-client/lib/counter.js";
import Histogram from "prom-client/lib/histogram.js";
import Registry from "prom-client/lib/registry.js";
import type { RejectionReason } from "../protocol/errors";

/** Buckets of the latency histograms, s: 1 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets of the batch-size histogram, rows. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const REJECTION_REASONS: RejectionReason[] = ["queue_full", "late", "expired", "cancelled"];

/** A metric family as prom-client's JSON has it. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  aggregator?: string;
  values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
}

/** One inference request as a server answered it. */
export interface AnsweredRequest {
  model: string;
  status: number;
  totalMs: number;
  /** When it ran in a batch. */
  served?: { batchRows: number; queueMs: number; inferMs: number };
  /** Why the scheduler did not run it, when it did not. */
  rejection?: RejectionReason;
}

/** The inference metrics of one server (or one isolate), in their own registry. */
export class InferenceMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"model" | "status">;
  private readonly duration: Histogram<"model">;
  private readonly queue: Histogram<"model">;
  private readonly compute: Histogram<"model">;
  private readonly batchSize: Histogram<"model">;
  private readonly rejections: Counter<"model" | "reason">;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({ name: "eir_inference_requests_total", help: "Inference requests by model and HTTP status.", labelNames: ["model", "status"], registers });
    this.duration = new Histogram({ name: "eir_inference_request_duration_seconds", help: "Time the server held an inference request, s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.queue = new Histogram({ name: "eir_inference_queue_duration_seconds", help: "Wait of a request in its model's batch queue, s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.compute = new Histogram({ name: "eir_inference_compute_duration_seconds", help: "Run of the batch a request was in (concat, session.run, split), s.", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers });
    this.batchSize = new Histogram({ name: "eir_inference_batch_size", help: "Rows of the batch each request ran in.", labelNames: ["model"], buckets: BATCH_BUCKETS, registers });
    this.rejections = new Counter({
      name: "eir_inference_rejections_total",
      help: "Requests the scheduler did not run, by model and reason: refused at admission (queue_full: the queue is full; late: it would miss its deadline), expired (deadline passed) or cancelled (the client went away).",
      labelNames: ["model", "reason"],
      registers,
    });
  }

  /** Starts `model`'s series at zero (Prometheus' advice: a series that exists before its first event). */
  declare(model: string): void {
    this.requests.inc({ model, status: "200" }, 0);
    for (const histogram of [this.duration, this.queue, this.compute, this.batchSize]) histogram.zero({ model });
    for (const reason of REJECTION_REASONS) this.rejections.inc({ model, reason }, 0);
  }

  /** Records an answered inference request. */
  observe({ model, status, totalMs, served, rejection }: AnsweredRequest): void {
    this.requests.inc({ model, status: String(status) });
    this.duration.observe({ model }, totalMs / 1000);
    if (rejection) this.rejections.inc({ model, reason: rejection });
    if (!served) return;
    this.queue.observe({ model }, served.queueMs / 1000);
    this.compute.observe({ model }, served.inferMs / 1000);
    this.batchSize.observe({ model }, served.batchRows);
  }

  /** The families recorded so far (prom-client's JSON). */
  async families(): Promise<MetricFamily[]> {
    return (await this.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
  }
}

/**
 * Sums families series by series (same name, same labels), as prom-client's "sum" aggregator does;
 * a family or series missing from one list counts as zeros there. Series keep the order in which
 * they first appear (a histogram's buckets, then _sum and _count, stay together). Linear in the
 * number of series: an isolate and a controller run it about once a second per model.
 */
export function mergeFamilies(...lists: MetricFamily[][]): MetricFamily[] {
  const merged = new Map<string, { family: MetricFamily; series: Map<string, Series> }>();
  for (const family of lists.flat()) {
    let entry = merged.get(family.name);
    if (!entry) merged.set(family.name, (entry = { family: { name: family.name, help: family.help, type: family.type, values: [] }, series: new Map() }));
    for (const value of family.values) {
      const key = seriesKey(value);
      const existing = entry.series.get(key);
      if (existing) existing.value += value.value;
      else {
        const copy = { ...value, labels: { ...value.labels } };
        entry.series.set(key, copy);
        entry.family.values.push(copy);
      }
    }
  }
  return [...merged.values()].map(({ family }) => family);
}

/** Families in the Prometheus text format (prom-client's writer), and its content type. */
export async function renderFamilies(families: MetricFamily[]): Promise<{ text: string; contentType: string }> {
  const registry = new Registry();
  // A registry renders anything with a name and a `get` that resolves to the family (as prom-client's own aggregation does).
  for (const family of families) registry.registerMetric({ ...family, get: async () => family } as never);
  return { text: await registry.metrics(), contentType: registry.contentType };
}

/** A gauge family from its series. */
export function gaugeFamily(name: string, help: string, values: MetricFamily["values"]): MetricFamily {
  return { name, help, type: "gauge", values };
}

type Series = MetricFamily["values"][number];

/** A series' identity: its name (a histogram's _bucket, _sum, _count) and its labels, in label-name order. */
function seriesKey({ metricName, labels }: Series): string {
  let key = metricName ?? "";
  for (const name of Object.keys(labels).sort()) key += `\u0000${name}=${labels[name]}`;
  return key;
}
