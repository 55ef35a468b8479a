/**
 * One model's part of the dashboard: a heading with the model's name, a line with its placement,
 * SLO and recent request count, and a grid of six charts (requests, latency quantiles with the SLO,
 * batch sizes, queued rows, rejections, plan and pool). A pipeline (ppocr) has no batches, queue or
 * plan of its own (its stages are models with sections of their own): its requests and end-to-end
 * latency against its SLO. Everything from the metrics reaches the DOM as text (textContent), never
 * as markup.
 */
import { barChart, timeChart } from "./charts";
import type { ChartName } from "./dashboard-state";
import type { ModelSeries } from "./model-series";

/** Colours of the light theme. */
const COLOUR = { blue: "#2563eb", red: "#dc2626", green: "#16a34a", orange: "#ea580c", purple: "#7c3aed", grey: "#6b7280", teal: "#0d9488" };

/** A model's section in the page. */
export interface ModelSection {
  update(series: ModelSeries): void;
  resize(): void;
  /** Points drawn by each chart at the last update. */
  points(): Record<ChartName, number>;
}

const last = <T>(values: readonly T[]): T | undefined => values[values.length - 1];

/** When the placement changed last, as "edge since 12:03:04" (or just the placement). */
function placementText(placement: ReadonlyArray<string | null>, timesS: readonly number[]): string {
  const now = last(placement);
  if (!now) return "placement unknown";
  let since = placement.length - 1;
  while (since > 0 && placement[since - 1] === now) since--;
  return since === 0 ? `placement ${now}` : `placement ${now} since ${new Date(timesS[since]! * 1000).toLocaleTimeString()}`;
}

/** Appends the section of `model` (or of a pipeline) to `parent`; `windowS` is the quantile and batch window, for the captions. */
export function modelSection(parent: HTMLElement, model: string, windowS: number, kind: "model" | "pipeline" = "model"): ModelSection {
  const section = document.createElement("section");
  section.className = "model";
  section.dataset.model = model;
  section.dataset.kind = kind;
  const heading = document.createElement("h2");
  heading.textContent = model;
  const meta = document.createElement("p");
  meta.className = "meta";
  const grid = document.createElement("div");
  grid.className = "grid";
  section.append(heading, meta, grid);
  parent.append(section);

  const requests = timeChart(grid, { name: "requests", title: "Requests", unit: "req/s", lines: [{ label: "all", stroke: COLOUR.blue }, { label: "non-2xx", stroke: COLOUR.red }] });
  const latency = timeChart(grid, {
    name: "latency",
    title: `Request duration, last ${windowS} s`,
    unit: "ms",
    lines: [
      { label: "p50", stroke: COLOUR.green },
      { label: "p95", stroke: COLOUR.orange },
      { label: "p99", stroke: COLOUR.red },
      { label: "SLO", stroke: COLOUR.grey, dash: [6, 4], isStep: true, isReference: true },
    ],
  });
  // A pipeline has no batches, queue or plan of its own: only the two charts above.
  const own = kind === "model" ? ownCharts(grid, windowS) : undefined;

  return {
    update(series) {
      const t = series.timesS;
      requests.update(t, [series.requestsPerS, series.non2xxPerS]);
      latency.update(t, [series.p50Ms, series.p95Ms, series.p99Ms, series.sloMs]);
      own?.update(series);
      const slo = last(series.sloMs);
      const where = own ? placementText(series.placement, t) : "pipeline, end to end (its stages are the models below)";
      meta.textContent = [where, slo == null ? "no SLO reported" : `${series.sloLabel} ${slo} ms`, `${series.requestsInHistory} requests seen`].join(" · ");
      section.dataset.requests = String(series.requestsInHistory);
    },
    resize() {
      requests.resize();
      latency.resize();
      own?.resize();
    },
    points() {
      return { requests: requests.points, latency: latency.points, ...(own?.points() ?? { batch: 0, queue: 0, rejections: 0, plan: 0 }) };
    },
  };
}

/** A model's charts besides requests and latency: batch sizes, queued rows, rejections, plan and pool. */
function ownCharts(grid: HTMLElement, windowS: number) {
  const batch = barChart(grid, "batch", `Batch sizes, requests in the last ${windowS} s`, "requests", COLOUR.purple);
  const queue = timeChart(grid, { name: "queue", title: "Queued rows", unit: "rows", lines: [{ label: "queued", stroke: COLOUR.teal, isStep: true }] });
  const rejections = timeChart(grid, {
    name: "rejections",
    title: "Rejections",
    unit: "/s",
    lines: [
      { label: "queue full", stroke: COLOUR.red },
      { label: "late", stroke: COLOUR.orange },
      { label: "expired", stroke: COLOUR.purple },
      { label: "cancelled", stroke: COLOUR.grey },
    ],
  });
  const plan = timeChart(grid, {
    name: "plan",
    title: "Plan and pool",
    unit: "count",
    unit2: "rows, ms",
    lines: [
      { label: "version", stroke: COLOUR.grey, isStep: true },
      { label: "shards", stroke: COLOUR.blue, isStep: true },
      { label: "pool replicas", stroke: COLOUR.green, isStep: true },
      { label: "max batch (rows)", stroke: COLOUR.purple, isStep: true, scale: "y2" },
      { label: "window (ms)", stroke: COLOUR.orange, isStep: true, scale: "y2" },
    ],
  });
  return {
    update(series: ModelSeries) {
      const t = series.timesS;
      batch.update(series.batch.labels, series.batch.counts);
      queue.update(t, [series.queueRows]);
      rejections.update(t, [series.rejectionsPerS.queue_full, series.rejectionsPerS.late, series.rejectionsPerS.expired, series.rejectionsPerS.cancelled]);
      plan.update(t, [series.plan.version, series.plan.shards, series.plan.poolReplicas, series.plan.maxBatchRows, series.plan.windowMs]);
    },
    resize() {
      for (const chart of [batch, queue, rejections, plan]) chart.resize();
    },
    points() {
      return { batch: batch.points, queue: queue.points, rejections: rejections.points, plan: plan.points };
    },
  };
}
