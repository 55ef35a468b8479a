/**
 * A small hand-written SVG plot writer for benchmark reports: panels stacked over one shared
 * x axis (time, an offered rate, a batch size, a predicted latency), several series per panel (step
 * lines for time series, straight lines with markers for measured points, unjoined markers for a
 * scatter, bars for a distribution), linear or logarithmic axes, optional horizontal reference lines
 * (an SLO) and a y = x line (predicted against measured). Pure: data in, SVG text out; no dependencies.
 */

/** One series: points (x in the figure's unit, y in the panel's); a y of NaN breaks a line. */
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /**
   * "step" (default): a value holds until the next point; "points": measured points joined by
   * straight lines; "markers": measured points, not joined (a scatter); "bars": a bar from the axis's
   * bottom up to each point (a distribution), the bar series of one panel side by side.
   */
  shape?: "step" | "points" | "markers" | "bars";
  /** An SVG stroke-dasharray for the line (e.g. "6 3"), to tell apart series of one colour. */
  dash?: string;
}

/** One panel of the figure. */
export interface Panel {
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines, e.g. the SLO. */
  hLines?: Array<{ y: number; label: string; color: string }>;
  /** Draws the line y = x, with this legend label (a prediction against a measurement: both axes in one unit, both linear or both log). */
  identityLine?: string;
  /** Lower bound of the y axis; default 0, or on a log axis the data's minimum rounded down to 1, 2 or 5 × 10^k. */
  yMin?: number;
  /** Upper bound of the y axis (values above are drawn at it); default the data's maximum. */
  yMax?: number;
  /** A logarithmic y axis (ticks at 1, 2 and 5 × 10^k), for values that span decades. */
  yLog?: boolean;
}

/** A figure: a title and stacked panels over x from xMinS (default 0) to xMaxS. */
export interface Figure {
  title: string;
  xLabel: string;
  xMaxS: number;
  /** Lower bound of the x axis; default 0, or on a log axis the data's minimum rounded down to 1, 2 or 5 × 10^k. */
  xMinS?: number;
  /** A logarithmic x axis. */
  xLog?: boolean;
  /** Where to put the x ticks (e.g. the batch sizes measured); default evenly spaced, or 1, 2 and 5 × 10^k on a log axis. */
  xTicks?: number[];
  panels: Panel[];
  /** Vertical markers, e.g. load steps, s. */
  vLines?: Array<{ x: number; label: string }>;
}

const WIDTH = 900;
const PANEL_HEIGHT = 170;
const LEFT = 70;
const TOP = 40;
const GAP = 30;
/** Approximate width of one legend character at font-size 11, px. */
const CHAR_PX = 6.2;

/** Renders `figure` as an SVG document. */
export function renderFigure(figure: Figure): string {
  // The legend is as wide as its longest name needs (160 to 320 px); the plot takes the rest.
  const longestName = Math.max(0, ...figure.panels.flatMap((p) => [...p.series.map((s) => s.name), p.identityLine ?? ""].map((name) => name.length)));
  const right = Math.min(320, Math.max(160, Math.ceil(40 + CHAR_PX * longestName)));
  const plotWidth = WIDTH - LEFT - right;
  const height = TOP + figure.panels.length * (PANEL_HEIGHT + GAP) + 30;
  const xMin = figure.xMinS ?? (figure.xLog ? niceFloor(Math.min(figure.xMaxS, ...figure.panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([px]) => px))).filter((v) => v > 0))) : 0);
  const x = scale(xMin, figure.xMaxS, LEFT, LEFT + plotWidth, figure.xLog);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14">${escape(figure.title)}</text>`,
  ];
  figure.panels.forEach((panel, i) => {
    const top = TOP + i * (PANEL_HEIGHT + GAP);
    const values = panel.series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
    const refs = (panel.hLines ?? []).map((l) => l.y);
    const yMax = niceCeil(panel.yMax ?? Math.max(1e-9, ...values, ...refs) * 1.05);
    const yMin = panel.yMin ?? (panel.yLog ? niceFloor(Math.min(yMax, ...[...values, ...refs].filter((v) => v > 0))) : 0);
    const y = scale(yMin, yMax, top + PANEL_HEIGHT, top, panel.yLog);
    out.push(`<rect x="${LEFT}" y="${top}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`);
    const yTicks = panel.yLog ? logTicks(yMin, yMax) : [0, 1, 2, 3, 4].map((k) => yMin + ((yMax - yMin) * k) / 4);
    for (const v of yTicks) {
      out.push(`<line x1="${LEFT - 4}" x2="${LEFT + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`, `<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    out.push(`<text transform="translate(16 ${top + PANEL_HEIGHT / 2}) rotate(-90)" text-anchor="middle">${escape(panel.yLabel)}</text>`);
    for (const v of figure.vLines ?? []) out.push(`<line x1="${x(v.x)}" x2="${x(v.x)}" y1="${top}" y2="${top + PANEL_HEIGHT}" stroke="#bbb" stroke-dasharray="3 3"/>`);
    for (const l of panel.hLines ?? []) {
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(l.y)}" y2="${y(l.y)}" stroke="${l.color}" stroke-dasharray="6 3"/>`, `<text x="${LEFT + plotWidth - 4}" y="${y(l.y) - 4}" text-anchor="end" fill="${l.color}">${escape(l.label)}</text>`);
    }
    const [from, to] = [Math.max(xMin, yMin), Math.min(figure.xMaxS, yMax)];
    if (panel.identityLine !== undefined && from < to) out.push(`<line x1="${x(from).toFixed(1)}" x2="${x(to).toFixed(1)}" y1="${y(from).toFixed(1)}" y2="${y(to).toFixed(1)}" stroke="#777" stroke-dasharray="6 3"/>`);
    const bars = panel.series.filter((s) => s.shape === "bars");
    const barPx = (0.8 * minGap(bars.flatMap((s) => s.points.map(([px]) => x(px))), plotWidth / 10)) / Math.max(1, bars.length);
    // The legend: per entry a sample centred at cy, then the name.
    const legendX = LEFT + plotWidth + 10;
    const legend = (j: number, sample: (cy: number) => string, name: string) => out.push(sample(top + 10 + j * 16), `<text x="${legendX + 22}" y="${top + 14 + j * 16}">${escape(name)}</text>`);
    const lineSample = (color: string, dash: string) => (cy: number) => `<line x1="${legendX}" x2="${legendX + 18}" y1="${cy}" y2="${cy}" stroke="${color}" stroke-width="2"${dash}/>`;
    panel.series.forEach((s, j) => {
      const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
      if (s.shape === "bars") {
        const offset = (bars.indexOf(s) - (bars.length - 1) / 2) * barPx - barPx / 2;
        for (const [px, py] of s.points) if (Number.isFinite(py)) out.push(`<rect x="${(x(px) + offset).toFixed(1)}" y="${y(py).toFixed(1)}" width="${barPx.toFixed(1)}" height="${(y(yMin) - y(py)).toFixed(1)}" fill="${s.color}"/>`);
        return legend(j, (cy) => `<rect x="${legendX + 4}" y="${cy - 5}" width="10" height="10" fill="${s.color}"/>`, s.name);
      }
      if (s.shape !== "markers") out.push(`<path d="${s.shape === "points" ? linePath(s.points, x, y) : stepPath(s.points, x, y)}" fill="none" stroke="${s.color}" stroke-width="1.5"${dash}/>`);
      const r = s.shape === "markers" ? 3.5 : 2.5;
      if (s.shape === "points" || s.shape === "markers") for (const [px, py] of s.points) if (Number.isFinite(py)) out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="${r}" fill="${s.color}"/>`);
      legend(j, s.shape === "markers" ? (cy) => `<circle cx="${legendX + 9}" cy="${cy}" r="${r}" fill="${s.color}"/>` : lineSample(s.color, dash), s.name);
    });
    if (panel.identityLine !== undefined) legend(panel.series.length, lineSample("#777", ` stroke-dasharray="6 3"`), panel.identityLine);
  });
  const bottom = TOP + figure.panels.length * (PANEL_HEIGHT + GAP) - GAP;
  for (const s of figure.xTicks ?? (figure.xLog ? logTicks(xMin, figure.xMaxS) : linearTicks(xMin, figure.xMaxS))) out.push(`<text x="${x(s)}" y="${bottom + 14}" text-anchor="middle">${fmt(s)}</text>`);
  for (const v of figure.vLines ?? []) out.push(`<text x="${x(v.x) + 3}" y="${TOP - 4}" fill="#777">${escape(v.label)}</text>`);
  out.push(`<text x="${LEFT + plotWidth / 2}" y="${bottom + 28}" text-anchor="middle">${escape(figure.xLabel)}</text>`, `</svg>`);
  return out.join("\n") + "\n";
}

/** Ten distinguishable series colours (matplotlib's tab10), for figures with more series than meaning-bearing colours. */
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** Maps [lo, hi] onto pixels [from, to], linearly or on a log scale; values outside are drawn at the nearer end. */
function scale(lo: number, hi: number, from: number, to: number, isLog = false): (v: number) => number {
  const f = isLog ? Math.log10 : (v: number) => v;
  const [fLo, fHi] = [f(lo), f(hi)];
  return (v) => from + ((f(Math.min(Math.max(v, lo), hi)) - fLo) / (fHi - fLo)) * (to - from);
}

/** About ten ticks from lo to hi, a 1, 2 or 5 × 10^k apart. */
function linearTicks(lo: number, hi: number): number[] {
  const step = niceCeil((hi - lo) / 10);
  const ticks: number[] = [];
  for (let s = Math.ceil(lo / step - 1e-9) * step + 0; s <= hi + 1e-9; s += step) ticks.push(s);
  return ticks;
}

/** The 1, 2 and 5 × 10^k from lo to hi: only the 10^k where that would give over ten, and 1, 1.5, 2, 3, 5 and 7 × 10^k where under five. */
function logTicks(lo: number, hi: number): number[] {
  const decades: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) decades.push(10 ** k);
  const at = (mantissas: number[]) => decades.flatMap((d) => mantissas.map((m) => Number((m * d).toPrecision(2)))).filter((v) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9));
  const ticks = at([1, 2, 5]);
  return ticks.length > 10 ? at([1]) : ticks.length < 5 ? at([1, 1.5, 2, 3, 5, 7]) : ticks;
}

/** The smallest gap between distinct pixel positions (`fallback` when there are fewer than two). */
function minGap(pixels: number[], fallback: number): number {
  const sorted = [...new Set(pixels)].sort((a, b) => a - b);
  return Math.min(fallback, ...sorted.slice(1).map((p, i) => p - sorted[i]!));
}

/** A straight-line path through the points; NaN y values break it. */
function linePath(points: Array<[number, number]>, x: (s: number) => number, y: (v: number) => number): string {
  return path(points, x, y, (X, Y) => `L${X},${Y}`);
}

/** A step path through the points; NaN y values break it. */
function stepPath(points: Array<[number, number]>, x: (s: number) => number, y: (v: number) => number): string {
  return path(points, x, y, (X, Y) => `H${X}V${Y}`);
}

/** A path through the points, joined by `segment`; NaN y values break it. */
function path(points: Array<[number, number]>, x: (s: number) => number, y: (v: number) => number, segment: (X: string, Y: string) => string): string {
  const parts: string[] = [];
  let isDrawing = false;
  for (const [px, py] of points) {
    if (Number.isNaN(py)) {
      isDrawing = false;
      continue;
    }
    const X = x(px).toFixed(1);
    const Y = y(py).toFixed(1);
    parts.push(isDrawing ? segment(X, Y) : `M${X},${Y}`);
    isDrawing = true;
  }
  return parts.join("") || "M0,0";
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above v (an axis's upper end). */
export function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 2.5, 5, 10].find((m) => m * p >= v - 1e-12) ?? 10) * p;
}

/** The largest 1, 2 or 5 × 10^k at or below v (a log axis's lower end). */
export function niceFloor(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([5, 2, 1].find((m) => m * p <= v + 1e-12) ?? 1) * p;
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1 ? String(Number(v.toPrecision(2))) : v.toFixed(v < 10 ? 1 : 0);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
