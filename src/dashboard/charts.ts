/**
 * The dashboard's two kinds of small uPlot chart: lines over time (rates, quantiles, gauges, step
 * lines for the plan) and bars over categories (batch sizes). Each sits in a <figure> whose caption
 * names it with its unit, and records on the figure how many points it drew (`data-points`), which
 * the browser test reads. DOM glue; the numbers come from model-series.ts.
 */
import uPlot from "uplot";
import type { Point } from "./model-series";

/** Plot height in CSS pixels (the legend comes below). */
const HEIGHT_PX = 170;

/** One line of a time chart. */
export interface LineSpec {
  label: string;
  stroke: string;
  /** Dashed (e.g. the SLO). */
  dash?: number[];
  /** A step line: the value holds until the next point (plans, gauges). */
  isStep?: boolean;
  /** "y" (left axis, default) or "y2" (right axis). */
  scale?: "y" | "y2";
  /** A reference (e.g. the SLO): drawn, but not counted in the chart's points. */
  isReference?: boolean;
}

/** What a time chart shows. */
export interface TimeChartSpec {
  name: string;
  title: string;
  /** The left axis's unit, e.g. "req/s". */
  unit: string;
  /** The right axis's unit, when some line uses scale "y2". */
  unit2?: string;
  lines: LineSpec[];
}

/** A chart in the page. */
export interface Chart {
  /** Points drawn by the last update: non-null values of the lines but references, or non-empty bars. */
  readonly points: number;
  resize(): void;
}

/** A y range from 0 (or below, for negative values) with some headroom; 0..1 with nothing to show. */
const fromZero: uPlot.Range.Function = (_u, min, max) => {
  const top = Number.isFinite(max) && max > 0 ? max * 1.15 : 1;
  return [Number.isFinite(min) ? Math.min(0, min) : 0, top];
};

/** The figure holding a chart, appended to `parent`: a caption with the unit, then the plot. */
function figure(parent: HTMLElement, name: string, title: string, unit: string): { root: HTMLElement; plot: HTMLElement } {
  const root = document.createElement("figure");
  root.className = "chart";
  root.dataset.chart = name;
  root.dataset.points = "0";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const unitSpan = document.createElement("span");
  unitSpan.className = "unit";
  unitSpan.textContent = unit;
  caption.append(" ", unitSpan);
  const plot = document.createElement("div");
  root.append(caption, plot);
  parent.append(root);
  return { root, plot };
}

const widthOf = (element: HTMLElement) => Math.max(200, element.clientWidth);

/** An axis in the theme's colours; `label` names its unit (none for time). */
const axis = (label: string | undefined, extra: uPlot.Axis = {}): uPlot.Axis => ({ ...(label && { label, labelSize: 18 }), size: 48, stroke: "#374151", grid: { stroke: "#e5e7eb", width: 1 }, ticks: { stroke: "#d1d5db", width: 1 }, ...extra });

/** A chart of `spec.lines` over time, appended to `parent`; `update` takes epoch seconds and one column per line. */
export function timeChart(parent: HTMLElement, spec: TimeChartSpec): Chart & { update(timesS: number[], columns: Point[][]): void } {
  const { root, plot } = figure(parent, spec.name, spec.title, spec.unit2 ? `${spec.unit} · ${spec.unit2}` : spec.unit);
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  const series: uPlot.Series[] = [{}, ...spec.lines.map((line) => ({ label: line.label, stroke: line.stroke, width: 1.5, scale: line.scale ?? "y", ...(line.dash && { dash: line.dash }), ...(line.isStep && stepped && { paths: stepped }) }))];
  const axes = [axis(undefined, { size: 30 }), axis(spec.unit), ...(spec.unit2 ? [axis(spec.unit2, { side: 1, scale: "y2", grid: { show: false } })] : [])];
  const chart = new uPlot({ width: widthOf(plot), height: HEIGHT_PX, series, axes, scales: { x: { time: true }, y: { range: fromZero }, y2: { range: fromZero } }, legend: { live: true }, cursor: { drag: { x: false, y: false } } }, [[], ...spec.lines.map(() => [])], plot);
  let points = 0;
  return {
    get points() {
      return points;
    },
    update(timesS, columns) {
      chart.setData([timesS, ...columns]);
      points = columns.reduce((sum, column, i) => sum + (spec.lines[i]?.isReference ? 0 : column.filter((v) => v !== null && Number.isFinite(v)).length), 0);
      root.dataset.points = String(points);
    },
    resize: () => chart.setSize({ width: widthOf(plot), height: HEIGHT_PX }),
  };
}

/** A bar chart of counts by category, appended to `parent`. */
export function barChart(parent: HTMLElement, name: string, title: string, unit: string, stroke: string): Chart & { update(labels: string[], counts: number[]): void } {
  const { root, plot } = figure(parent, name, title, unit);
  let labels: string[] = [];
  const bars = uPlot.paths.bars?.({ size: [0.7, 48] });
  const chart = new uPlot(
    {
      width: widthOf(plot),
      height: HEIGHT_PX,
      series: [{ label: "rows", value: (_u, v) => (v === null ? "" : (labels[v] ?? "")) }, { label: unit, stroke, fill: `${stroke}99`, width: 1, ...(bars && { paths: bars }), points: { show: false } }],
      axes: [axis("rows in the batch", { splits: () => labels.map((_, i) => i), values: (_u, splits) => splits.map((i) => labels[i] ?? ""), grid: { show: false } }), axis(unit)],
      scales: { x: { time: false, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] }, y: { range: fromZero } },
      cursor: { drag: { x: false, y: false } },
    },
    [[], []],
    plot,
  );
  let points = 0;
  return {
    get points() {
      return points;
    },
    update(nextLabels, counts) {
      labels = nextLabels;
      chart.setData([labels.map((_, i) => i), counts]);
      points = counts.filter((n) => n > 0).length;
      root.dataset.points = String(points);
    },
    resize: () => chart.setSize({ width: widthOf(plot), height: HEIGHT_PX }),
  };
}
