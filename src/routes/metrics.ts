/**
 * GET /metrics: the edge's Prometheus metrics (text exposition format, prom-client's writer), or
 * the same families as JSON with `Accept: application/json` (what the dashboard reads:
 * `{atMs, metrics: [prom-client's getMetricsAsJSON families]}`). Per served model, from its
 * controller: the inference metrics summed over every isolate and shard since the deployment
 * began (src/edge/request-metrics.ts), its SLO, its live plan and its queue
 * (src/observability/model-gauges.ts); per pipeline (`ppocr`), its end-to-end requests and their
 * duration (each stage's requests count under the stage's model too) and its SLO. Open, like the health probes: it carries model names and
 * traffic, no payloads (put it behind Cloudflare Access to keep it private).
 */
import { Hono } from "hono";
import { runtimeConfig } from "../config";
import { controllerOf } from "../control/model-controller";
import { flushRequestMetrics } from "../edge/request-metrics";
import { PIPELINES } from "../ocr/pipeline-manifest";
import { mergeFamilies, renderFamilies } from "../observability/inference-metrics";

/** Routes for /metrics. */
export const metricsRoutes = new Hono<{ Bindings: Env }>().get("/metrics", async (c) => {
  const config = runtimeConfig(c.env);
  await flushRequestMetrics(c.env);
  const names = [...config.models.keys(), ...PIPELINES.keys()];
  const families = mergeFamilies(...(await Promise.all(names.map((model) => controllerOf(c.env, model).metrics(model)))));
  if (c.req.header("accept")?.includes("application/json")) return c.json({ atMs: Date.now(), metrics: families });
  const { text, contentType } = await renderFamilies(families);
  return c.body(text, 200, { "Content-Type": contentType });
});
