/**
 * GET /metrics in workerd: after a test's traffic, the Prometheus text parses, the counters and
 * histograms hold exactly that traffic (expected values derived from the answers themselves: status
 * codes, X-Batch-Size and Server-Timing), a model name a client made up is no label, the totals are
 * stored by the model's controller (so they outlive isolates and evictions), and the JSON view has
 * the same families. Plus the Analytics Engine data point's layout.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import type { ModelController } from "../../src/control/model-controller";
import { analyticsPoint } from "../../src/edge/request-metrics";
import { LATENCY_BUCKETS_S, type MetricFamily } from "../../src/observability/inference-metrics";
import { infer } from "./helpers";

const MODEL = "ppocr-cls";
const ROW = { name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data: new Array<number>(3 * 48 * 192).fill(0) };

type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> };

async function scrape() {
  const response = await SELF.fetch("http://edge.test/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, families: new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f])) };
}
type Scrape = Awaited<ReturnType<typeof scrape>>;

/** A counter's or gauge's value through the parser. */
const value = (s: Scrape, name: string, labels: Record<string, string>) => Number(s.families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);
/** A labelled histogram's series read from its line (the parser keeps only unlabelled histograms' count and sum). */
const series = (s: Scrape, name: string, le?: string) => Number(new RegExp(`^${name}\\{${le === undefined ? "" : `le="${le.replace("+", "\\+")}",`}model="${MODEL}"\\} (\\S+)$`, "m").exec(s.text)?.[1] ?? 0);
const timing = (response: Response, part: string) => Number(new RegExp(`${part};dur=([\\d.]+)`).exec(response.headers.get("server-timing") ?? "")?.[1]);

describe("GET /metrics", () => {
  it("counts a test's traffic by status, in histograms whose buckets the answers predict, without labelling unknown names", async () => {
    // A warm session first: a cold first batch holds the buffer long enough for the rest of the
    // burst to be queued when the answers report, and the queue gauge shows what a report last saw.
    await infer(MODEL, { inputs: [ROW] }).then((r) => r.arrayBuffer());
    const before = await scrape();
    const ok = await Promise.all(Array.from({ length: 6 }, () => infer(MODEL, { inputs: [ROW] })));
    const bad = [await infer(MODEL, "{not json"), await infer(MODEL, { inputs: [{ ...ROW, shape: [1, 3, 48, 191] }] })];
    const unknown = await infer("no-such-model", { inputs: [ROW] });
    expect(ok.map((r) => r.status)).toEqual(new Array(6).fill(200));
    expect(bad.map((r) => r.status)).toEqual([400, 400]);
    expect(unknown.status).toBe(404);
    await Promise.all([...ok, ...bad, unknown].map((r) => r.arrayBuffer()));
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    expect(delta("eir_inference_requests_total", { model: MODEL, status: "200" })).toBe(6);
    expect(delta("eir_inference_requests_total", { model: MODEL, status: "400" })).toBe(2);
    expect(after.text).not.toContain("no-such-model");
    expect(after.families.get("eir_inference_request_duration_seconds")?.type).toBe("HISTOGRAM");
    const seriesDelta = (name: string, le?: string) => series(after, name, le) - series(before, name, le);
    // Every request of the model is held; only those that ran have queue, compute and batch-size samples.
    expect(seriesDelta("eir_inference_request_duration_seconds_count")).toBe(8);
    for (const histogram of ["eir_inference_queue_duration_seconds", "eir_inference_compute_duration_seconds", "eir_inference_batch_size"]) {
      expect([histogram, seriesDelta(`${histogram}_count`), seriesDelta(`${histogram}_bucket`, "+Inf")]).toEqual([histogram, 6, 6]);
    }
    // Batch sizes as the answers tell them: the sum, and each bucket's cumulative count.
    const batchRows = ok.map((r) => Number(r.headers.get("x-batch-size")));
    expect(seriesDelta("eir_inference_batch_size_sum")).toBe(batchRows.reduce((a, b) => a + b, 0));
    for (const le of [1, 2, 4, 8, 16]) expect([le, seriesDelta("eir_inference_batch_size_bucket", String(le))]).toEqual([le, batchRows.filter((rows) => rows <= le).length]);
    // Queue waits (whole ms in workerd's clock) as Server-Timing tells them, bucket by bucket.
    const queueS = ok.map((r) => timing(r, "queue") / 1000);
    for (const le of LATENCY_BUCKETS_S) expect([le, seriesDelta("eir_inference_queue_duration_seconds_bucket", String(le))]).toEqual([le, queueS.filter((s) => s <= le + 1e-9).length]);
    // The SLO and the plan, from the model's manifest (this project's workers tests run CONTROL_MODE static).
    expect(value(after, "eir_slo_seconds", { model: MODEL, percentile: "99" })).toBe(30);
    expect(value(after, "eir_plan_max_batch_rows", { model: MODEL })).toBe(4);
    expect(value(after, "eir_plan_placement", { model: MODEL, placement: "edge" })).toBe(1);
    expect(value(after, "eir_inference_queue_rows", { model: MODEL })).toBe(0);
    // Every reason has a series from zero, for every served model.
    expect(after.families.get("eir_inference_rejections_total")?.metrics.filter((m) => m.labels?.model === "silero-vad").map((m) => m.labels?.reason).sort()).toEqual(["cancelled", "expired", "late", "queue_full"]);
  });

  it("keeps the totals in the model controller's storage, and serves the same families as JSON", async () => {
    await infer(MODEL, { inputs: [ROW] }).then((r) => r.arrayBuffer());
    const response = await SELF.fetch("http://edge.test/metrics", { headers: { accept: "application/json" } });
    const json = (await response.json()) as { atMs: number; metrics: MetricFamily[] };
    const requests = (families: MetricFamily[]) => families.find((f) => f.name === "eir_inference_requests_total")!.values.find((v) => v.labels.model === MODEL && v.labels.status === "200")!.value;
    expect(requests(json.metrics)).toBeGreaterThanOrEqual(1);
    const namespace = env.MODEL_CONTROLLER as DurableObjectNamespace<ModelController>;
    const stored = await runInDurableObject(namespace.get(namespace.idFromName(MODEL)), (_, state) => state.storage.kv.get<MetricFamily[]>("metrics"));
    expect(requests(stored!)).toBe(requests(json.metrics));
    const text = await scrape();
    expect(value(text, "eir_inference_requests_total", { model: MODEL, status: "200" })).toBe(requests(json.metrics));
  });
});

describe("analyticsPoint", () => {
  it("lays a request out in the metrics' names and base units", () => {
    const point = analyticsPoint({ model: "m", status: 200, totalMs: 12, served: { batchRows: 3, queueMs: 4, inferMs: 6 }, placement: "edge" });
    expect(point).toEqual({ indexes: ["m"], blobs: ["m", "200", "edge", ""], doubles: [0.012, 0.004, 0.006, 3] });
    expect(analyticsPoint({ model: "m", status: 503, totalMs: 5, rejection: "late" })).toEqual({ indexes: ["m"], blobs: ["m", "503", "", "late"], doubles: [0.005, 0, 0, 0] });
  });
});
