/**
 * A small hand-written SVG line-plot writer for benchmark reports: panels stacked over one shared
 * x axis (time, or e.g. an offered rate), several series per panel (step lines for time series,
 * straight lines with markers for measured points), optional horizontal reference lines (an SLO).
 * Pure: data in, SVG text out; no dependencies.
 */

/** One line: points (x in the figure's unit, y in the panel's); a y of NaN breaks the line. */
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** "step" (default): a value holds until the next point; "points": measured points joined by straight lines. */
  shape?: "step" | "points";
}

/** One panel of the figure. */
export interface Panel {
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines, e.g. the SLO. */
  hLines?: Array<{ y: number; label: string; color: string }>;
  /** Upper bound of the y axis (values above are drawn at it); default the data's maximum. */
  yMax?: number;
}

/** A figure: a title and stacked panels over x from 0 to xMaxS. */
export interface Figure {
  title: string;
  xLabel: string;
  xMaxS: number;
  panels: Panel[];
  /** Vertical markers, e.g. load steps, s. */
  vLines?: Array<{ x: number; label: string }>;
}

const WIDTH = 900;
const PANEL_HEIGHT = 170;
const LEFT = 70;
const RIGHT = 160;
const TOP = 40;
const GAP = 30;

/** Renders `figure` as an SVG document. */
export function renderFigure(figure: Figure): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const height = TOP + figure.panels.length * (PANEL_HEIGHT + GAP) + 30;
  const x = (s: number) => LEFT + (Math.min(Math.max(s, 0), figure.xMaxS) / figure.xMaxS) * plotWidth;
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
    const y = (v: number) => top + PANEL_HEIGHT - (Math.min(Math.max(v, 0), yMax) / yMax) * PANEL_HEIGHT;
    out.push(`<rect x="${LEFT}" y="${top}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      out.push(`<line x1="${LEFT - 4}" x2="${LEFT + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`, `<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    out.push(`<text transform="translate(16 ${top + PANEL_HEIGHT / 2}) rotate(-90)" text-anchor="middle">${escape(panel.yLabel)}</text>`);
    for (const v of figure.vLines ?? []) out.push(`<line x1="${x(v.x)}" x2="${x(v.x)}" y1="${top}" y2="${top + PANEL_HEIGHT}" stroke="#bbb" stroke-dasharray="3 3"/>`);
    for (const l of panel.hLines ?? []) {
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(l.y)}" y2="${y(l.y)}" stroke="${l.color}" stroke-dasharray="6 3"/>`, `<text x="${LEFT + plotWidth - 4}" y="${y(l.y) - 4}" text-anchor="end" fill="${l.color}">${escape(l.label)}</text>`);
    }
    panel.series.forEach((s, j) => {
      out.push(`<path d="${s.shape === "points" ? linePath(s.points, x, y) : stepPath(s.points, x, y)}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
      if (s.shape === "points") for (const [px, py] of s.points) if (Number.isFinite(py)) out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
      const ly = top + 14 + j * 16;
      out.push(`<line x1="${LEFT + plotWidth + 10}" x2="${LEFT + plotWidth + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`, `<text x="${LEFT + plotWidth + 32}" y="${ly}">${escape(s.name)}</text>`);
    });
  });
  const bottom = TOP + figure.panels.length * (PANEL_HEIGHT + GAP) - GAP;
  const tickS = niceCeil(figure.xMaxS / 10);
  for (let s = 0; s <= figure.xMaxS + 1e-9; s += tickS) out.push(`<text x="${x(s)}" y="${bottom + 14}" text-anchor="middle">${fmt(s)}</text>`);
  for (const v of figure.vLines ?? []) out.push(`<text x="${x(v.x) + 3}" y="${TOP - 4}" fill="#777">${escape(v.label)}</text>`);
  out.push(`<text x="${LEFT + plotWidth / 2}" y="${bottom + 28}" text-anchor="middle">${escape(figure.xLabel)}</text>`, `</svg>`);
  return out.join("\n") + "\n";
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

/** The smallest 1, 2 or 5 × 10^k at or above v. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 2.5, 5, 10].find((m) => m * p >= v - 1e-12) ?? 10) * p;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
