/**
 * The gauges the edge exposes per model beside the inference metrics: its SLO, its live plan (what
 * the controller published) and its queue, as metric families for /metrics:
 *
 *   eir_inference_queue_rows{model}              rows queued now, over the buffer shards and direct isolates
 *   eir_slo_seconds{model,percentile}            the latency target the planner plans for
 *   eir_plan_version{model}                      version of the published plan (+1 per applied change)
 *   eir_plan_placement{model,placement}          1 for the plan's placement (direct, edge, origin)
 *   eir_plan_max_batch_rows{model}               most rows per batch
 *   eir_plan_window_seconds{model}               longest wait of a batch's oldest request for company
 *   eir_plan_shards{model}                       buffer shards
 *   eir_plan_stream_shards{model}                stream shards new streams spread over
 *   eir_plan_pool_replicas{model}                origin replicas the plan needs (0 at the edge)
 */
import type { PublishedPlan } from "../control/plan";
import type { ModelManifest } from "../models/manifest";
import { gaugeFamily, type MetricFamily } from "./inference-metrics";

/** The gauge families of one model. */
/** The SLO of a model or pipeline (`eir_slo_seconds`, labelled with its percentile). */
export function sloGauge({ name: model, slo }: Pick<ModelManifest, "name" | "slo">): MetricFamily {
  return gaugeFamily("eir_slo_seconds", "The model's latency SLO: `percentile` percent of requests within this many s.", [{ labels: { model, percentile: String(Math.round(slo.percentile * 1000) / 10) }, value: slo.ms / 1000 }]);
}

export function modelGauges(manifest: Pick<ModelManifest, "name" | "slo">, published: PublishedPlan, queuedRows: number): MetricFamily[] {
  const model = manifest.name;
  const { plan } = published;
  const one = (value: number, labels: Record<string, string> = {}) => [{ labels: { model, ...labels }, value }];
  return [
    gaugeFamily("eir_inference_queue_rows", "Rows queued now, by model (over its buffer shards and direct isolates, as they last reported).", one(queuedRows)),
    sloGauge(manifest),
    gaugeFamily("eir_plan_version", "Version of the model's published plan (one more per applied change).", one(published.version)),
    gaugeFamily("eir_plan_placement", "1 for where the model's plan runs it (direct: in the Worker; edge: edge buffers; origin: the origin pool).", one(1, { placement: plan.placement })),
    gaugeFamily("eir_plan_max_batch_rows", "Most rows one batch holds, in the model's plan.", one(plan.maxBatch)),
    gaugeFamily("eir_plan_window_seconds", "Longest wait of a batch's oldest request for company, in the model's plan, s.", one(plan.windowMs / 1000)),
    gaugeFamily("eir_plan_shards", "Buffer shards the model's requests spread over, in its plan.", one(plan.shards)),
    gaugeFamily("eir_plan_stream_shards", "Stream shards the model's new streams spread over, in its plan.", one(plan.streamShards)),
    gaugeFamily("eir_plan_pool_replicas", "Origin replicas the model's plan needs (0 at the edge).", one(plan.poolSize)),
  ];
}
