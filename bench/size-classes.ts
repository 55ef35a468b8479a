/**
 * `npm run bench -- size-classes [--quick]`: size classes for ppocr-rec (MBS) on a width mix drawn
 * from real text-line crops (bench/lib/text-line-mix.ts), three policies: exact-width buffers (each
 * width its own class: the runtime without size classes), one pad-to-max buffer (every line padded
 * to the widest of the mix) and the planner's classes (src/planner/size-classes.ts: planned for the
 * highest rate, with batches formed under load, loadedFormationMs; in the simulation also formed
 * over the window only, and with each request's padding bounded). For each:
 *
 * - padding waste (padded columns / the requests' own columns) and how many lines read differently
 *   padded than alone (greedy CTC, onnxruntime-node);
 * - real: s(W, k) measured on the edge (workerd) and fitted; the planner's classes for that fit;
 *   the highest Poisson rate at the SLO (p99 <= 2000 ms, <= 1 % failed; one repetition of STEP_S
 *   seconds per step, two failing steps end a sweep) against a real `wrangler dev` edge per policy
 *   (binary tensors, CONTROL_MODE static, the policy in MODEL_OVERRIDES);
 * - simulated (bench/lib/size-class-sim.ts: the runtime's Scheduler on a fake clock), clearly
 *   apart: the measured edge fit (a check on the real sweep), and an assumed GPU profile
 *   s = GPU_BASE_MS + perColumnMs * k * W with the planner's classes for it, over several
 *   perColumnMs (the profile is an assumption, not a measurement: no GPU here).
 *
 * The edge runs from a snapshot of this checkout (wrangler dev restarts on any source change).
 * Writes bench/reports/size-classes.{json,md,svg}.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { readManifest } from "../gpu-origin/read-manifest";
import { post } from "../src/cli/loopback-http";
import { ROOT, startEdge, type Started } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { ctcSymbols, greedyCtcDecode } from "../src/models/ctc";
import { classWidthOf } from "../src/batching/size-classes";
import type { ModelManifest } from "../src/models/manifest";
import { evaluateSizeClasses, highestRateSizeClasses, loadedFormationMs, type SizeClassProblem, type WidthCount, type WidthServiceMs } from "../src/planner/size-classes";
import type { TextLine } from "../test/fixtures/text-lines";
import { openLoop, seededRandom } from "./lib/open-loop";
import { highestSimulatedRate, type SimResult } from "./lib/size-class-sim";
import { median, quantile, round } from "./lib/stats";
import { writeReport } from "./lib/size-class-report";
import { lineSpecs, recRequestBody, renderLines } from "./lib/text-line-mix";
import { fitWidthService, measureWidthService, serviceOf } from "./lib/width-service";

const MODEL = "ppocr-rec";
const LINES = 300;
const SEED = 1;
/** Lines whose reading is compared padded against alone (onnxruntime-node, one at a time). */
const ACCURACY_LINES = 100;
const SERVICE_WIDTHS = [64, 128, 256, 512, 768, 1024, 1280];
const SERVICE_BATCHES = [1, 2, 4, 8];
const SERVICE_REPEATS = 3;
/** Each edge is sent requests one after another for this long before it is measured. */
const WARM_UP_MS = 20_000;
const RATES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14];
const STEP_S = 20;
/** The assumed GPU profile: a fixed cost per batch, and a cost per padded column of each row (several). */
const GPU_BASE_MS = 5;
const GPU_PER_COLUMN_MS = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008];
/** The GPU profile the headline uses (ms per column per row: 1000 columns cost 1 ms, ~1/70 of one CPU thread's). */
const GPU_HEADLINE_PER_COLUMN_MS = 0.001;
const TARGET_RATIO = 1.5;
/** The padding bound of the "planned, padding bounded" policy: at most this share of a request's own width (chosen before measuring: a round quarter). */
const MAX_PAD_RATIO = 0.25;
/** Padding (share of a line's own width) at which readings are compared with the line alone. */
const PAD_CURVE = [0.1, 0.25, 0.5, 1, 2];
/** Simulated seconds per rate. */
const SIM_S = 120;

/** A policy: exact, pad-to-max, planned, "planned, padding bounded" (or, in the readings, a plan by its profile). */
interface Policy {
  name: string;
  /** Class widths; undefined: every width its own class. */
  widths?: number[];
}

/** Runs the suite. */
export async function main({ quick, reuseReal }: { quick: boolean; reuseReal: boolean }): Promise<void> {
  const manifest = readManifest(join(ROOT, "models"), MODEL);
  const { maxBatch, windowMs } = manifest.batching;
  const maxWidth = manifest.inputs[0]!.maxShape![3]!;
  const sloMs = manifest.slo.ms;
  const lines = await renderLines(lineSpecs(quick ? 60 : LINES, SEED), maxWidth);
  const mix = lines.map((l) => l.width);
  const histogram = histogramOf(mix);
  const widest = Math.max(...mix);
  const padToMax: Policy = { name: "pad-to-max", widths: widest === maxWidth ? [maxWidth] : [widest, maxWidth] };
  const base = { histogram, maxWidth, maxBatch, formationMs: windowMs };

  // Real: s(W, k) on the edge, the planner's classes for it, and a sweep per policy (or, with --reuse-real, the last report's).
  const real: Record<string, any> = reuseReal ? reusedReal(base, manifest) : await measureReal(lines, base, manifest, padToMax, quick);

  // Simulated, with the assumed GPU profile: the planner with batches formed over the window only, and under load.
  const gpu = GPU_PER_COLUMN_MS.map((perColumnMs) => {
    const serviceMs: WidthServiceMs = (w, k) => GPU_BASE_MS + perColumnMs * k * w;
    const formationMsAt = loadedFormation(manifest, serviceMs);
    const windowed = highestRateSizeClasses({ ...base, serviceMs });
    const planned = highestRateSizeClasses({ ...base, serviceMs }, { formationMsAt });
    const bounded = highestRateSizeClasses({ ...base, serviceMs, maxPadRatio: MAX_PAD_RATIO }, { formationMsAt });
    const policies: Policy[] = [{ name: "exact" }, padToMax, { name: "planned (window)", widths: windowed.plan.widths }, { name: "planned", widths: planned.plan.widths }, { name: "planned, padding bounded", widths: bounded.plan.widths }];
    return { perColumnMs, windowedWidths: windowed.plan.widths, plannedWidths: planned.plan.widths, boundedWidths: bounded.plan.widths, predicted: Object.fromEntries(policies.map((p) => [p.name, round(highestRateSizeClasses({ ...base, serviceMs }, { widths: widthsOf(p, histogram, maxWidth), formationMsAt }).ratePerS)])), simulated: simulatePolicies(policies, mix, serviceMs, manifest, 50, quick ? 30 : SIM_S), policies };
  });

  const allPolicies: Policy[] = [{ name: "exact" }, padToMax, { name: "planned (edge fit)", widths: real.plannedWidths }, ...gpu.flatMap((g) => [{ name: `planned (window) (GPU ${g.perColumnMs})`, widths: g.windowedWidths }, { name: `planned (GPU ${g.perColumnMs})`, widths: g.plannedWidths }, { name: `planned, padding <= ${MAX_PAD_RATIO * 100} % (GPU ${g.perColumnMs})`, widths: g.boundedWidths }])];
  const padding = Object.fromEntries(allPolicies.map((p) => [p.name, round(evaluateSizeClasses({ ...base, ratePerS: 1, serviceMs: () => 1 }, widthsOf(p, histogram, maxWidth)).paddingWaste, 3)]));
  const distinct = allPolicies.filter((p, i) => p.widths && allPolicies.findIndex((q) => String(q.widths) === String(p.widths)) === i);
  const accuracy = await readingChanges(lines.slice(0, quick ? 10 : ACCURACY_LINES), distinct);
  const report = { maxPadRatio: MAX_PAD_RATIO, suite: "size-classes", measuredAt: new Date().toISOString(), machine: machine(), model: MODEL, sloMs, maxBatch, windowMs, stepS: STEP_S, rates: RATES, mix: { lines: lines.length, seed: SEED, quantiles: [0, 0.1, 0.5, 0.9, 1].map((q) => [q, quantile(mix, q)]), meanWidth: round(mix.reduce((a, b) => a + b, 0) / mix.length), distinctWidths: histogram.length, histogram }, padding, accuracy, real, gpu: { baseMs: GPU_BASE_MS, headlinePerColumnMs: GPU_HEADLINE_PER_COLUMN_MS, runs: gpu }, targetRatio: TARGET_RATIO };
  writeReport(report);
}

/** The real part: s(W, k) on an edge, the planner's classes for its fit, and each policy's sweep on its own edge (from a snapshot of the checkout). */
async function measureReal(lines: TextLine[], base: Omit<SizeClassProblem, "serviceMs" | "ratePerS">, manifest: ModelManifest, padToMax: Policy, quick: boolean): Promise<Record<string, unknown>> {
  const { histogram, maxWidth } = base;
  const mix = lines.map((l) => l.width);
  const sloMs = manifest.slo.ms;
  const real: Record<string, unknown> = {};
  const snapshot = snapshotCheckout();
  try {
    const progress = startProgress("size-classes: service", SERVICE_WIDTHS.length * SERVICE_BATCHES.length);
    const exactEdge = await startPolicyEdge(snapshot.root, { name: "exact" }, 8841);
    let service;
    try {
      await warmUp(`${exactEdge.url}/v2/models/${MODEL}/infer`, lines.map((l) => recRequestBody(l.data, 1, l.width)), quick ? 3_000 : WARM_UP_MS);
      service = await measureWidthService(`${exactEdge.url}/v2/models/${MODEL}/infer`, quick ? [128, 512, 1280] : SERVICE_WIDTHS, SERVICE_BATCHES, quick ? 1 : SERVICE_REPEATS, (label) => progress.step(label));
      progress.stop();
      const fit = fitWidthService(service);
      const formationMsAt = loadedFormation(manifest, serviceOf(fit));
      const planned = highestRateSizeClasses({ ...base, serviceMs: serviceOf(fit) }, { formationMsAt });
      const policies: Policy[] = [{ name: "exact" }, padToMax, { name: "planned", widths: planned.plan.widths }];
      const isPlannedExact = histogram.every((h) => planned.plan.widths.includes(h.width));
      real.service = service;
      real.fit = fit;
      real.plannedWidths = planned.plan.widths;
      real.isPlannedExact = isPlannedExact;
      real.predicted = Object.fromEntries(policies.map((p) => [p.name, round(highestRateSizeClasses({ ...base, serviceMs: serviceOf(fit) }, { widths: widthsOf(p, histogram, maxWidth), formationMsAt }).ratePerS)]));
      real.sweeps = { exact: await sweep(exactEdge, lines, sloMs, "exact", quick) };
      real.simulated = simulatePolicies(policies, mix, serviceOf(fit), manifest, 0.5, quick ? 30 : SIM_S);
      await exactEdge.stop(2_000);
      for (const policy of policies.slice(1)) {
        if (policy.name === "planned" && isPlannedExact) continue; // the same buffers as exact: not run twice
        const edge = await startPolicyEdge(snapshot.root, policy, 8842 + policies.indexOf(policy));
        try {
          (real.sweeps as Record<string, unknown>)[policy.name] = await sweep(edge, lines, sloMs, policy.name, quick);
        } finally {
          await edge.stop(2_000);
        }
      }
      real.policies = policies;
    } finally {
      await exactEdge.stop(2_000);
    }
  } finally {
    snapshot.remove();
  }
  return real;
}

/** The last report's real part, its plan and predictions redone from its fit; refused when the plan now differs from the one its sweeps ran. */
function reusedReal(base: Omit<SizeClassProblem, "serviceMs" | "ratePerS">, manifest: ModelManifest): Record<string, any> {
  const real = JSON.parse(readFileSync(join(ROOT, "bench", "reports", "size-classes.json"), "utf8")).real;
  const serviceMs = serviceOf(real.fit);
  const formationMsAt = loadedFormation(manifest, serviceMs);
  const planned = highestRateSizeClasses({ ...base, serviceMs }, { formationMsAt }).plan.widths;
  if (String(planned) !== String(real.plannedWidths)) throw new Error("the planner now picks other classes for the measured fit than the sweeps ran: run without --reuse-real");
  real.predicted = Object.fromEntries((real.policies as Policy[]).map((p) => [p.name, round(highestRateSizeClasses({ ...base, serviceMs }, { widths: widthsOf(p, base.histogram, base.maxWidth), formationMsAt }).ratePerS)]));
  return real;
}

/** The planner's formation time under load for this manifest and service model (src/planner/size-classes.ts loadedFormationMs). */
function loadedFormation(manifest: ModelManifest, serviceMs: WidthServiceMs): (ratePerS: number) => number {
  const { maxBatch, maxQueueRows, windowMs } = manifest.batching;
  const bounds = { sloMs: manifest.slo.ms, maxQueueRows, windowMs, longestBatchMs: serviceMs(manifest.inputs[0]!.maxShape![3]!, maxBatch) };
  return (ratePerS) => loadedFormationMs(bounds, ratePerS);
}

/** The edge for one policy, from the snapshot. */
function startPolicyEdge(root: string, policy: Policy, port: number): Promise<Started> {
  const batching = policy.widths ? { sizeClasses: { widths: policy.widths } } : {};
  return startEdge({ port, root, vars: { CONTROL_MODE: "static", MODEL_OVERRIDES: JSON.stringify({ [MODEL]: { placement: "edge", pinned: ["placement"], batching } }) } });
}

/** Class widths of a policy over the histogram (exact: every observed width, then maxWidth). */
function widthsOf(policy: Policy, histogram: WidthCount[], maxWidth: number): number[] {
  if (policy.widths) return policy.widths;
  const widths = histogram.map((h) => h.width);
  return widths.at(-1) === maxWidth ? widths : [...widths, maxWidth];
}

function histogramOf(widths: number[]): WidthCount[] {
  const counts = new Map<number, number>();
  for (const w of widths) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts].map(([width, count]) => ({ width, count })).sort((a, b) => a.width - b.width);
}

/** One rate step of a real sweep: what a simulated run reports (but the server's busy share), and whether it met the SLO. */
interface StepReport extends Omit<SimResult, "busyShare"> {
  passes: boolean;
}

/** Rising Poisson rates of requests drawn from the mix; two failing steps in a row end it. */
async function sweep(edge: Started, lines: Awaited<ReturnType<typeof renderLines>>, sloMs: number, label: string, quick: boolean): Promise<{ steps: StepReport[]; bestPerS: number }> {
  const url = `${edge.url}/v2/models/${MODEL}/infer`;
  const bodies = lines.map((l) => recRequestBody(l.data, 1, l.width));
  await warmUp(url, bodies, quick ? 3_000 : WARM_UP_MS);
  const steps: StepReport[] = [];
  let misses = 0;
  let bestPerS = 0;
  const rates = quick ? RATES.filter((_, i) => i % 2 === 0) : RATES;
  const progress = startProgress(`size-classes: ${label}`, rates.length);
  for (const ratePerS of rates) {
    if (misses >= 2) break;
    progress.step(`${ratePerS}/s`);
    const pick = seededRandom(ratePerS);
    const stepS = quick ? STEP_S / 4 : STEP_S;
    const result = await openLoop({ url, body: "", bodyAt: () => bodies[Math.floor(pick() * bodies.length)]!, ratePerS, count: Math.round(ratePerS * stepS), maxDurationMs: stepS * 1000 + 15_000, seed: 11 + ratePerS });
    const failed = result.sent - result.ok;
    const step = { ratePerS, sent: result.sent, failed, p50Ms: round(median(result.latenciesMs)), p99Ms: round(quantile(result.latenciesMs, 0.99)), meanBatch: round(result.batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, result.batchSizes.length)), passes: quantile(result.latenciesMs, 0.99) <= sloMs && failed <= 0.01 * result.sent };
    steps.push(step);
    if (step.passes) {
      bestPerS = ratePerS;
      misses = 0;
    } else misses++;
  }
  progress.stop();
  return { steps, bestPerS };
}

/** Sends requests one after another for `durationMs`: V8 runs WebAssembly from its baseline tier until the hot kernels tier up. */
async function warmUp(url: string, bodies: Array<{ body: Uint8Array<ArrayBuffer>; headers: Record<string, string> }>, durationMs: number): Promise<void> {
  const endMs = performance.now() + durationMs;
  for (let i = 0; performance.now() < endMs; i++) await post(url, bodies[i % bodies.length]!.body, bodies[i % bodies.length]!.headers, 60_000);
}

/** Each policy's highest simulated rate at the SLO (the runtime's scheduler, manifest limits, deadlines). */
function simulatePolicies(policies: Policy[], mix: number[], serviceMs: WidthServiceMs, manifest: ReturnType<typeof readManifest>, startPerS: number, durationS: number) {
  const { maxBatch, windowMs, maxQueueRows, adaptiveWindow } = manifest.batching;
  const deadlineMs = manifest.maxLatencyMs ?? 4 * manifest.slo.ms;
  return Object.fromEntries(
    policies.map((p) => {
      const { bestPerS, runs } = highestSimulatedRate({ mix, ...(p.widths && { classWidths: p.widths }), serviceMs, durationS, seed: 5, maxBatch, windowMs, maxQueueRows, deadlineMs, adaptiveWindow }, manifest.slo.ms, startPerS, 1.05);
      const best = runs.find((r) => r.ratePerS === bestPerS);
      return [p.name, { bestPerS: round(bestPerS, 1), atBest: best && { p99Ms: round(best.p99Ms), failed: best.failed, sent: best.sent, meanBatch: round(best.meanBatch), busyShare: round(best.busyShare, 3) } }];
    }),
  );
}

interface Readings {
  lines: number;
  /** Lines whose reading padded differs from alone. */
  changed: number;
  /** Lines read exactly as rendered: alone at their own width, and padded. */
  correctAlone: number;
  correctPadded: number;
  examples: string[];
}

/**
 * How padding changes what the lines read (greedy CTC, onnxruntime-node, each line alone): per
 * policy, each line padded to its class; and per share of padding in PAD_CURVE.
 */
async function readingChanges(lines: Awaited<ReturnType<typeof renderLines>>, policies: Policy[]): Promise<{ policies: Record<string, Readings>; curve: Array<{ padRatio: number } & Readings> }> {
  const symbols = ctcSymbols(readFileSync(join(ROOT, "models", MODEL, "ppocr_keys_v1.txt"), "utf8"));
  const session = await ort.InferenceSession.create(join(ROOT, "models", MODEL, "model.onnx"), { intraOpNumThreads: 1 });
  const readAt = async (l: (typeof lines)[number], width: number) => {
    let data = l.data;
    if (width !== l.width) {
      data = new Float32Array(3 * 48 * width);
      for (let r = 0; r < 3 * 48; r++) data.set(l.data.subarray(r * l.width, (r + 1) * l.width), r * width);
    }
    const output = Object.values(await session.run({ x: new ort.Tensor("float32", data, [1, 3, 48, width]) }))[0]!;
    return greedyCtcDecode(output.data as Float32Array, l.width / 8, symbols).text;
  };
  const alone: string[] = [];
  for (const l of lines) alone.push(await readAt(l, l.width));
  const correctAlone = lines.filter((l, i) => alone[i] === l.text).length;
  const compare = async (widthOf: (l: (typeof lines)[number]) => number): Promise<Readings> => {
    const entry: Readings = { lines: lines.length, changed: 0, correctAlone, correctPadded: 0, examples: [] };
    for (const [i, l] of lines.entries()) {
      const width = widthOf(l);
      const text = width === l.width ? alone[i]! : await readAt(l, width);
      if (text === l.text) entry.correctPadded++;
      if (text === alone[i]) continue;
      entry.changed++;
      if (entry.examples.length < 3) entry.examples.push(`${JSON.stringify(alone[i])} -> ${JSON.stringify(text)} (width ${l.width} -> ${width})`);
    }
    return entry;
  };
  const progress = startProgress("size-classes: readings", policies.length + PAD_CURVE.length);
  const byPolicy: Record<string, Readings> = {};
  for (const policy of policies) {
    progress.step(policy.name);
    byPolicy[policy.name] = await compare((l) => classWidthOf({ widths: policy.widths! }, l.width));
  }
  const curve = [];
  for (const padRatio of PAD_CURVE) {
    progress.step(`padding ${padRatio}`);
    curve.push({ padRatio, ...(await compare((l) => Math.min(1280, Math.ceil((l.width * (1 + padRatio)) / 8) * 8))) });
  }
  progress.stop();
  await session.release();
  return { policies: byPolicy, curve };
}

/** A copy of the checkout's tracked and new files (not node_modules) that the edge runs from, so edits elsewhere do not restart it. */
function snapshotCheckout(): { root: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), "size-classes-"));
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT }).toString().split("\0").filter(Boolean);
  execFileSync("tar", ["-cf", join(root, "files.tar"), "--ignore-failed-read", ...files], { cwd: ROOT, maxBuffer: 1 << 26 });
  execFileSync("tar", ["-xf", "files.tar"], { cwd: root });
  rmSync(join(root, "files.tar"));
  for (const linked of ["node_modules", "dist", "worker-configuration.d.ts"]) symlinkSync(resolve(ROOT, linked), join(root, linked));
  for (const model of ["ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad"]) symlinkSync(resolve(ROOT, "models", model, "model.onnx"), join(root, "models", model, "model.onnx"));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

function machine() {
  return { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
}
