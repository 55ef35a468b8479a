/**
 * OCR accuracy of several systems on one test set (bench/ocr/test-images.ts): each system reads every
 * image (system after system, images in set order, one at a time, after one untimed warm-up read of
 * the first image), and each reading is scored against the ground truth with the four CER variants
 * of bench/ocr/cer.ts, the order-free one primary. Rates are pooled (summed edits / summed reference
 * characters) overall and per kind ("line", "page"); times are wall-clock per image, the system's
 * whole call (decode, detection, recognition). A system that throws on an image is scored as having
 * read nothing there (every reference character deleted) and the error is kept on the row.
 *
 * A system is `(png) => Promise<string[]>`: the lines it read, in its own order. Rendering:
 * `accuracyTable` (the summary, with each system's difference from a baseline such as "peer"),
 * `imageTable` (per image), `accuracyFigure` (an SVG via bench/lib/svg-plot.ts) and
 * `accuracyMarkdown` (all of it as one report section).
 */
import { type CerResult, imageCer, type ImageCer, pooled, referenceLength } from "./cer";
import type { OcrTestImage } from "./test-images";
import { median } from "../lib/stats";
import { PALETTE, renderFigure } from "../lib/svg-plot";

/** An OCR system under test: the lines it reads in a PNG. */
export type OcrSystem = (png: Uint8Array) => Promise<string[]>;

/** The kinds of test image, and "all". */
export type Kind = "all" | "line" | "page";
const KINDS: Kind[] = ["all", "line", "page"];

/** One image as one system read it. */
export interface ImageRow extends ImageCer {
  id: string;
  kind: "line" | "page";
  description: string;
  reference: string[];
  prediction: string[];
  ms: number;
  error?: string;
}

/** A statistic per kind of image. */
export type ByKind<T> = Record<Kind, T>;

/** One system's results. */
export interface SystemAccuracy {
  name: string;
  /** The primary metric (order-free CER), pooled. */
  cer: ByKind<CerResult>;
  lineMatched: ByKind<CerResult>;
  ordered: ByKind<CerResult>;
  spaceless: ByKind<CerResult>;
  /** Wall-clock per image: mean and median, ms. */
  meanMs: ByKind<number>;
  medianMs: ByKind<number>;
  /** Images on which the system threw. */
  failures: number;
  rows: ImageRow[];
}

/** Every system's results on one set. */
export interface AccuracyReport {
  images: ByKind<number>;
  referenceChars: ByKind<number>;
  /** By system name, in the order given. */
  systems: Record<string, SystemAccuracy>;
}

/** Options of measureAccuracy: a warm-up read (default on) and a callback per image read (progress). */
export interface MeasureOptions {
  warmUp?: boolean;
  onImage?: (system: string, row: ImageRow) => void;
}

const ofKind = <T extends { kind: "line" | "page" }>(items: readonly T[], kind: Kind) => (kind === "all" ? [...items] : items.filter((item) => item.kind === kind));
const byKind = <T>(f: (kind: Kind) => T): ByKind<T> => Object.fromEntries(KINDS.map((kind) => [kind, f(kind)])) as ByKind<T>;
const mean = (values: readonly number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN);

/** Reads `set` with every system and scores it (see the module doc). */
export async function measureAccuracy(systems: Record<string, OcrSystem>, set: readonly OcrTestImage[], { warmUp = true, onImage }: MeasureOptions = {}): Promise<AccuracyReport> {
  const report: AccuracyReport = {
    images: byKind((kind) => ofKind(set, kind).length),
    referenceChars: byKind((kind) => ofKind(set, kind).reduce((sum, image) => sum + referenceLength(image.lines), 0)),
    systems: {},
  };
  for (const [name, read] of Object.entries(systems)) {
    if (warmUp && set[0]) await read(set[0].png).catch(() => undefined);
    const rows: ImageRow[] = [];
    for (const image of set) {
      let prediction: string[] = [];
      let error: string | undefined;
      const start = performance.now();
      try {
        prediction = await read(image.png);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      const ms = performance.now() - start;
      const row: ImageRow = { id: image.id, kind: image.kind, description: image.description, reference: image.lines, prediction, ms, ...imageCer(image.lines, prediction), ...(error === undefined ? {} : { error }) };
      rows.push(row);
      onImage?.(name, row);
    }
    report.systems[name] = summarise(name, rows);
  }
  return report;
}

/** A system's pooled results from its rows. */
export function summarise(name: string, rows: ImageRow[]): SystemAccuracy {
  return {
    name,
    cer: byKind((kind) => pooled(ofKind(rows, kind).map((row) => row.orderFree))),
    lineMatched: byKind((kind) => pooled(ofKind(rows, kind).map((row) => row.lineMatched))),
    ordered: byKind((kind) => pooled(ofKind(rows, kind).map((row) => row.ordered))),
    spaceless: byKind((kind) => pooled(ofKind(rows, kind).map((row) => row.spaceless))),
    meanMs: byKind((kind) => mean(ofKind(rows, kind).map((row) => row.ms))),
    medianMs: byKind((kind) => {
      const ms = ofKind(rows, kind).map((row) => row.ms);
      return ms.length ? median(ms) : Number.NaN;
    }),
    failures: rows.filter((row) => row.error !== undefined).length,
    rows,
  };
}

/** A rate as a percentage with two decimals ("3.07 %"); "n/a" without reference characters. */
export const percent = (r: CerResult) => (r.referenceChars > 0 ? `${(100 * r.cer).toFixed(2)} %` : "n/a");
const msText = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(0) : "n/a");
const points = (a: CerResult, b: CerResult) => {
  const d = 100 * (a.cer - b.cer);
  return `${d >= 0 ? "+" : ""}${d.toFixed(2)}`;
};

/**
 * The summary table: per system the primary CER overall, on lines and on pages, the difference
 * from `baseline` in percentage points (when that system is in the report), the line-matched,
 * ordered and spaceless CER overall, and mean (median) ms per line and per page image.
 */
export function accuracyTable(report: AccuracyReport, baseline = "peer"): string {
  const base = report.systems[baseline];
  const rows = [
    `| system | CER (order-free) | lines | pages | vs ${baseline}, points | line-matched CER | ordered CER | spaces ignored | ms per line image, mean (median) | ms per page, mean (median) | failed |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of Object.values(report.systems)) {
    const versus = base && s !== base ? `${points(s.cer.all, base.cer.all)} (lines ${points(s.cer.line, base.cer.line)}, pages ${points(s.cer.page, base.cer.page)})` : "";
    rows.push(
      `| ${s.name} | ${percent(s.cer.all)} | ${percent(s.cer.line)} | ${percent(s.cer.page)} | ${versus} | ${percent(s.lineMatched.all)} | ${percent(s.ordered.all)} | ${percent(s.spaceless.all)} | ${msText(s.meanMs.line)} (${msText(s.medianMs.line)}) | ${msText(s.meanMs.page)} (${msText(s.medianMs.page)}) | ${s.failures} |`,
    );
  }
  return rows.join("\n") + "\n";
}

const cell = (text: string) => text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
const shorten = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/**
 * Per image: its id, kind and drawing, each system's order-free CER (edits / characters), and for
 * lines the text read by each system. `worst` keeps the images with the highest CER summed over systems.
 */
export function imageTable(report: AccuracyReport, { worst }: { worst?: number } = {}): string {
  const systems = Object.values(report.systems);
  if (systems.length === 0) return "";
  let ids = systems[0]!.rows.map((row) => row.id);
  const rowOf = (s: SystemAccuracy, id: string) => s.rows.find((row) => row.id === id)!;
  if (worst !== undefined) {
    const total = (id: string) => systems.reduce((sum, s) => sum + rowOf(s, id).orderFree.cer, 0);
    ids = [...ids].sort((a, b) => total(b) - total(a) || a.localeCompare(b)).slice(0, worst);
  }
  const lines = [
    `| image | drawn | reference | ${systems.map((s) => `${s.name}: CER (edits / chars) | ${s.name}: read`).join(" | ")} |`,
    `|---|---|---|${systems.map(() => "---:|---").join("|")}|`,
  ];
  for (const id of ids) {
    const first = rowOf(systems[0]!, id);
    const reference = first.kind === "line" ? first.reference.join(" / ") : `${first.reference.length} lines`;
    const read = (row: ImageRow) => (row.error !== undefined ? `error: ${row.error}` : row.kind === "line" ? row.prediction.join(" / ") : `${row.prediction.length} lines`);
    const cells = systems.map((s) => {
      const row = rowOf(s, id);
      return `${percent(row.orderFree)} (${row.orderFree.edits} / ${row.orderFree.referenceChars}) | ${cell(shorten(read(row), 80))}`;
    });
    lines.push(`| ${id} | ${cell(first.description)} | ${cell(shorten(reference, 80))} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

/** Per image, each system's order-free CER (bars) and time (markers), images in set order, a marker where the pages start. */
export function accuracyFigure(report: AccuracyReport, title = "OCR accuracy per test image"): string {
  const systems = Object.values(report.systems);
  const n = systems[0]?.rows.length ?? 0;
  const firstPage = systems[0]?.rows.findIndex((row) => row.kind === "page") ?? -1;
  return renderFigure({
    title,
    xLabel: "test image (lines, then pages)",
    xMinS: 0,
    xMaxS: n + 1,
    vLines: firstPage > 0 ? [{ x: firstPage + 0.5, label: "pages" }] : [],
    panels: [
      {
        yLabel: "CER, order-free (%)",
        series: systems.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length]!, shape: "bars" as const, points: s.rows.map((row, j): [number, number] => [j + 1, 100 * row.orderFree.cer]) })),
      },
      {
        yLabel: "ms per image",
        yLog: true,
        series: systems.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length]!, shape: "markers" as const, points: s.rows.map((row, j): [number, number] => [j + 1, Math.max(1, row.ms)]) })),
      },
    ],
  });
}

/** A report section: the set, the summary table and the worst images (`figure`: the SVG's file name, linked when given). */
export function accuracyMarkdown(report: AccuracyReport, { baseline = "peer", worst = 10, figure }: { baseline?: string; worst?: number; figure?: string } = {}): string {
  return [
    `Test set: ${report.images.line} line images (${report.referenceChars.line} characters) and ${report.images.page} page images (${report.referenceChars.page} characters). CER = edits / reference characters, pooled over images; order-free is primary (bench/ocr/cer.ts).`,
    "",
    accuracyTable(report, baseline),
    ...(figure ? [`![OCR accuracy per image](${figure})`, ""] : []),
    `Worst ${worst} images (highest CER summed over systems):`,
    "",
    imageTable(report, { worst }),
  ].join("\n");
}
