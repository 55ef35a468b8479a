/**
 * Service time of ppocr-rec by width and batch size, s(W, k): measured on a running edge (the
 * batch's `infer` entry of Server-Timing: session.run inside workerd, concat and split included),
 * and fitted as s = baseMs + perRowMs * k + perColumnMs * k * W by least squares. The fit is the
 * service model the size-class planner reads (src/planner/size-classes.ts).
 */
import { header, post, serverTimingMs } from "../../src/cli/loopback-http";
import type { WidthServiceMs } from "../../src/planner/size-classes";
import { seededFloats } from "../../test/fixtures/model-inputs";
import { recRequestBody } from "./text-line-mix";
import { median } from "./stats";

/** One measured (width, batch) point: the median of its repetitions, ms; undefined when the edge refused it (413: over its memory at that shape). */
export interface ServicePoint {
  width: number;
  batch: number;
  ms?: number;
  samplesMs: number[];
}

/** The fitted line s = baseMs + perRowMs * k + perColumnMs * k * W. */
export interface WidthServiceFit {
  baseMs: number;
  perRowMs: number;
  perColumnMs: number;
  rmseMs: number;
}

/** Measures every (width, batch) pair `repeats` times on the edge at `url` (a ppocr-rec infer URL). */
export async function measureWidthService(url: string, widths: number[], batches: number[], repeats: number, onStep?: (label: string) => void): Promise<ServicePoint[]> {
  const points: ServicePoint[] = [];
  for (const width of widths) {
    for (const batch of batches) {
      onStep?.(`width ${width}, batch ${batch}`);
      const { body, headers } = recRequestBody(seededFloats(batch * 3 * 48 * width, width + batch), batch, width);
      const samplesMs: number[] = [];
      let refused = false;
      for (let r = 0; r < repeats + 1 && !refused; r++) {
        const answer = await post(url, body, headers, 60_000);
        if (answer.status === 413) refused = true;
        else if (answer.status !== 200) throw new Error(`service probe at width ${width}, batch ${batch}: status ${answer.status}`);
        else if (r > 0 && Number(header(answer, "x-batch-size")) === batch) samplesMs.push(serverTimingMs(answer, "infer")); // the first run of a shape is a warm-up
      }
      points.push({ width, batch, ...(samplesMs.length && { ms: median(samplesMs) }), samplesMs });
    }
  }
  return points;
}

/** Least-squares fit of s = baseMs + perRowMs * k + perColumnMs * k * W to the measured points. */
export function fitWidthService(points: ServicePoint[]): WidthServiceFit {
  const rows = points.filter((p) => p.ms !== undefined).map((p) => ({ x: [1, p.batch, p.batch * p.width], y: p.ms! }));
  const a = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((s, r) => s + r.x[i]! * r.x[j]!, 0)));
  const b = [0, 1, 2].map((i) => rows.reduce((s, r) => s + r.x[i]! * r.y, 0));
  const [baseMs, perRowMs, perColumnMs] = solve3(a, b);
  const rmseMs = Math.sqrt(rows.reduce((s, r) => s + (baseMs + perRowMs * r.x[1]! + perColumnMs * r.x[2]! - r.y) ** 2, 0) / Math.max(1, rows.length));
  return { baseMs, perRowMs, perColumnMs, rmseMs };
}

/** The fit as the planner's service model (never below 0). */
export function serviceOf(fit: Omit<WidthServiceFit, "rmseMs">): WidthServiceMs {
  return (width, batch) => Math.max(0, fit.baseMs + fit.perRowMs * batch + fit.perColumnMs * batch * width);
}

/** Solves a 3x3 linear system by Gaussian elimination with partial pivoting. */
function solve3(a: number[][], b: number[]): [number, number, number] {
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < 3; col++) {
    let pivot = col;
    for (let r = col + 1; r < 3; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < 3; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c < 4; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return [m[0]![3]! / m[0]![0]!, m[1]![3]! / m[1]![1]!, m[2]![3]! / m[2]![2]!];
}
