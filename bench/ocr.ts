/**
 * `npm run bench -- ocr [--quick]`: the OCR pipeline (`ppocr`, InferLine) against `npm start`'s
 * stack (the edge under `wrangler dev`, gpu-origin replicas serving the three models, CONTROL_MODE
 * static so the plan under test stays put):
 *
 * 1. Accuracy: a rendered test set with known text (bench/ocr/test-images.ts: single lines and
 *    page-like images) read by this pipeline (POST /v1/ocr) and by a peer running the same model
 *    files (@gutenye/ocr-node, bench/ocr/peer.ts); character error rate by kind (bench/ocr/cer.ts).
 * 2. The mix: what the pages are to the pipeline, measured from their answers (lines per page,
 *    each line's rec width, det input pixels, the Worker's decode and post-processing time).
 * 3. Calibration (src/planner/pipeline-calibration.ts): each page alone with cls and rec at the
 *    origin, then at the edge, fits each stage's line, handling and off-server extra to this stack as
 *    it runs now; a probe under load (every stage at the origin) measures how much the host's shared
 *    cores slow the servers (hostContention).
 * 4. The plan: planPipeline on that mix with the calibrated models, at most one shard and one
 *    replica per stage (one machine: every shard shares workerd's thread), at the highest rate of a
 *    grid it finds a plan for (the planned rate); InferLine's even-split baseline beside it, and the
 *    rate the profiles alone would plan. A plan must meet PLAN_SLO_SHARE (80 %) of the SLO's ms on
 *    a long sample (the headroom the controller leaves in every new plan), and the SLO in
 *    WINDOW_SHARE of WINDOWS samples as long as a load step's repetition (sloWindows): a p95 over
 *    a hundred or so images moves with their arrivals, and a plan that holds on average misses in
 *    bursty windows.
 * 5. Latency: the plan applied (MODEL_OVERRIDES). Each page alone against its prediction; that run
 *    calibrates the plan's placements again on the stack under test, and the rate up to which the
 *    plan stays feasible on that calibration is the rate kept. Open-loop Poisson load of the
 *    pages at 0.5, 0.75, 1 and 1.25 x that rate; the measured end-to-end p95 against two predictions
 *    for the same arrivals and pages (predictPipeline): the forecast (that calibration and the
 *    contention model) and the prediction at the speed each stage's servers measured during the
 *    repetition (calibrateSpeed), which the host's drift cannot throw off.
 *
 * Writes bench/reports/ocr.{json,md,svg}. Loopback only; every load step is bounded in count and time.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, ROOT } from "../src/cli/processes";
import { header, post } from "../src/cli/loopback-http";
import { startStack, type Stack } from "../src/cli/stack";
import { PLAN_SLO_SHARE } from "../src/control/replan";
import { CATALOG } from "../src/models/catalog";
import { detInput } from "../src/ocr/det-input";
import { decodeImage } from "../src/ocr/image";
import { PIPELINES } from "../src/ocr/pipeline-manifest";
import { type CalibrationRun, type ContentionCalibration, type ContentionProbe, meetsPipelineSlo, type PipelineConfig, type PipelineCpu, type PipelineImage, type PipelineModels, type PipelinePlan, type PipelinePrediction, type PipelineStage, type StageCalibration, calibrateContention, calibratePipeline, calibrateSpeed, calibrationConfig, PIPELINE_STAGES, pipelineOverrides, planPipeline, ppocrStageModels, predictPipeline, SloWindows } from "../src/planner/pipeline";
import { openLoop, seededRandom } from "./lib/open-loop";
import { quantile, round } from "./lib/stats";
import { PALETTE, renderFigure } from "./lib/svg-plot";
import { accuracyMarkdown, measureAccuracy, type AccuracyReport } from "./ocr/accuracy";
import { createPeer } from "./ocr/peer";
import { ocrTestSet, type OcrTestImage } from "./ocr/test-images";

const PIPELINE = PIPELINES.get("ppocr")!;
const RATE_GRID = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2];
const LOAD_FACTORS = [0.5, 0.75, 1, 1.25];
const REC_HEIGHT = 48;
/** Times each page is sent alone in a calibration run. */
const CALIBRATION_REPEATS = 3;
/** The contention probe: pages at this rate (Poisson), this many, every stage at the origin. */
const PROBE_RATE_PER_S = 0.6;
const PROBE_PAGES = 48;
/**
 * The SLO over measurement windows (planPipeline's sloWindows): a load step's percentile is read
 * over its own images, so plans and the rate kept must hold the SLO's ms in this share of WINDOWS
 * Poisson samples as long as one repetition of a step (a repetition starts from an idle stack, and
 * a burst in it loads the host while it lasts: a longer window dilutes the burst's host load).
 */
const WINDOWS = 40;
const WINDOW_SHARE = 0.95;

interface OcrAnswer {
  lines: Array<{ text: string; score: number; box: number[][] }>;
}

/** What one page is to the pipeline, measured from its answer. */
interface PageShape {
  id: string;
  detPixels: number;
  /** Each line's width at height 48 (before rounding and the 320 floor, which the planner applies). */
  lineWidths: number[];
  /** Decode + det input + DB boxes + crops in the Worker, ms (Server-Timing decode + boxes). */
  cpuMs: number;
}

/** Starts the stack with `overrides` as MODEL_OVERRIDES and `replicas` origin replicas (each serving the three stages' models). */
async function ocrStack(overrides: object, replicas: number): Promise<Stack> {
  return startStack({ replicas, maxReplicas: replicas, port: await freePort(), originPort: await freePort(), originArgs: ["--models", Object.values(PIPELINE.stages).join(",")], vars: { CONTROL_MODE: "static", MODEL_OVERRIDES: JSON.stringify(overrides) } });
}

async function stopStack(stack: Stack): Promise<void> {
  await stack.stop();
  rmSync(join(ROOT, ".wrangler", `state-${new URL(stack.edge.url).port}`), { recursive: true, force: true });
}

/** Reads a PNG through POST /v1/ocr. */
async function readPage(url: string, png: Uint8Array): Promise<{ answer: OcrAnswer; timing: Record<string, number> }> {
  const answer = await post(`${url}/v1/ocr`, png, { "content-type": "application/octet-stream" }, 60_000);
  if (answer.status !== 200) throw new Error(`POST /v1/ocr: ${answer.status} ${answer.body.toString().slice(0, 200)}`);
  const timing = Object.fromEntries([...(header(answer, "server-timing") ?? "").matchAll(/(\w+);dur=([\d.]+)/g)].map(([, name, ms]) => [name!, Number(ms)]));
  return { answer: JSON.parse(answer.body.toString()) as OcrAnswer, timing };
}

/** A page's shape: det input pixels from its size, line widths from the answer's boxes, Worker time from Server-Timing. */
function pageShape(image: OcrTestImage, answer: OcrAnswer, timing: Record<string, number>): PageShape {
  const det = detInput(decodeImage(image.png, { maxPixels: PIPELINE.image.maxPixels }), PIPELINE.image.detLimitSideLen);
  const side = ([x0, y0]: number[], [x1, y1]: number[]) => Math.hypot(x1! - x0!, y1! - y0!);
  const lineWidths = answer.lines.map(({ box: [a, b, c] }) => Math.ceil(REC_HEIGHT * (side(a!, b!) / Math.max(1, side(b!, c!)))));
  return { id: image.id, detPixels: det.width * det.height, lineWidths, cpuMs: (timing.decode ?? 0) + (timing.boxes ?? 0) };
}

/** Least squares cpuMs + cpuPerLineMs * lines over the pages (slope floored at 0). */
function fitCpu(pages: PageShape[]): { cpuMs: number; cpuPerLineMs: number } {
  const xs = pages.map((p) => p.lineWidths.length);
  const ys = pages.map((p) => p.cpuMs);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const slope = sxx > 0 ? Math.max(0, xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / sxx) : 0;
  return { cpuMs: Math.max(0, my - slope * mx), cpuPerLineMs: slope };
}

/** Poisson arrivals (ms) at `ratePerS`, seeded. */
function poissonArrivals(ratePerS: number, count: number, seed: number): number[] {
  const random = seededRandom(seed);
  let t = 0;
  return Array.from({ length: count }, () => (t += (-Math.log(1 - random()) / ratePerS) * 1000));
}

/** Page i % pages at each arrival, as the planner sees it. */
function pagesAt(arrivalsMs: number[], shapes: PageShape[]): PipelineImage[] {
  return arrivalsMs.map((arrivalMs, i) => ({ arrivalMs, detPixels: shapes[i % shapes.length]!.detPixels, lineWidths: shapes[i % shapes.length]!.lineWidths }));
}

/** Sends page i % pages at each arrival (open loop) to POST /v1/ocr; bounded by the last arrival plus a minute. */
function sendPages(edgeUrl: string, pages: OcrTestImage[], ratePerS: number, arrivalsMs: number[]): ReturnType<typeof openLoop> {
  return openLoop({ url: `${edgeUrl}/v1/ocr`, body: new Uint8Array(0), ratePerS, arrivalsMs, count: arrivalsMs.length, maxDurationMs: arrivalsMs.at(-1)! + 60_000, bodyAt: (i) => ({ body: new Uint8Array(pages[i % pages.length]!.png) as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/octet-stream" } }) });
}

interface LoadStep {
  factor: number;
  ratePerS: number;
  sent: number;
  ok: number;
  errors: Record<string, number>;
  measuredP95Ms: number;
  measuredP50Ms: number;
  predictedP95Ms: number;
  predictedP50Ms: number;
  errorPct: number;
  /** p95 predicted with each repetition's stages at the speed their servers measured during it (calibrateSpeed), and its error. */
  atSpeedP95Ms: number;
  atSpeedErrorPct: number;
  /** Per stage, the median over the repetitions of the measured slowdown against the on-stack calibration (calibrateSpeed). */
  slowdowns: Record<PipelineStage, number>;
  /** Each repetition's p95, measured, predicted for its own arrivals, and at its measured speed. */
  repeats: Array<{ measuredP95Ms: number; predictedP95Ms: number; atSpeedP95Ms: number }>;
  /** Mean compute (the batch's run on the origin, per request) of det and rec, ms: how the kernels slow as the cores fill. */
  originComputeMs: Record<string, number>;
  /** Per stage, p50 ms: measured (Server-Timing: decode + boxes as "cpu", det, cls, rec) and predicted (the simulation's stage latencies). */
  stagesP50Ms: Record<string, { measured: number; predicted: number }>;
}

/** Per model, requests and the sum of eir_inference_compute_duration_seconds (ms) over the /metrics of `urls`. */
async function computeSums(urls: string[]): Promise<Record<string, { requests: number; computeMs: number }>> {
  const totals: Record<string, { requests: number; computeMs: number }> = {};
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const [, part, model, value] of text.matchAll(/^eir_inference_compute_duration_seconds_(sum|count)\{model="([^"]+)"\} ([\d.e+-]+)$/gm)) {
      const total = (totals[model!] ??= { requests: 0, computeMs: 0 });
      if (part === "sum") total.computeMs += Number(value) * 1000;
      else total.requests += Number(value);
    }
  }
  return totals;
}

/** `after` minus `before`, per model. */
function sumsSince(before: Record<string, { requests: number; computeMs: number }>, after: Record<string, { requests: number; computeMs: number }>): Record<string, { requests: number; computeMs: number }> {
  return Object.fromEntries(Object.entries(after).map(([model, a]) => [model, { requests: a.requests - (before[model]?.requests ?? 0), computeMs: a.computeMs - (before[model]?.computeMs ?? 0) }]));
}

/**
 * Pages sent at `ratePerS` with `arrivalsMs`, and per stage how long their batches held the stage's
 * servers (the edge's eir_inference_compute_duration_seconds: the Durable Object's run, or at the
 * origin the batch's round trip): with the arrivals and `config`, a ContentionProbe.
 */
async function sendMeasured(edgeUrl: string, pages: OcrTestImage[], shapes: PageShape[], config: PipelineConfig, ratePerS: number, arrivalsMs: number[]): Promise<{ result: Awaited<ReturnType<typeof openLoop>>; probe: ContentionProbe }> {
  const before = await computeSums([edgeUrl]);
  const result = await sendPages(edgeUrl, pages, ratePerS, arrivalsMs);
  const since = sumsSince(before, await computeSums([edgeUrl]));
  const servers: ContentionProbe["servers"] = {};
  for (const stage of PIPELINE_STAGES) {
    const held = since[PIPELINE.stages[stage]];
    if (held) servers[stage] = { requests: held.requests, heldMs: held.computeMs };
  }
  return { result, probe: { config, images: pagesAt(arrivalsMs, shapes), servers } };
}

/**
 * Each page sent alone CALIBRATION_REPEATS times on `stack` (running `config`): a calibration run
 * (the Worker's stage times; the kernel where each stage runs and, at the origin, the edge's round
 * trip as the time the server was held) and each page's median end-to-end latency.
 */
async function aloneRun(stack: Stack, pages: OcrTestImage[], shapes: PageShape[], config: PipelineConfig): Promise<{ run: CalibrationRun; medianMs: number[] }> {
  const sums = async () => ({ origin: await computeSums(stack.origins().map((r) => r.url)), edge: await computeSums([stack.edge.url]) });
  const before = await sums();
  const measured = shapes.map((shape) => ({ image: { detPixels: shape.detPixels, lineWidths: shape.lineWidths }, stageMs: { det: [] as number[], cls: [] as number[], rec: [] as number[] } }));
  const totalsMs = pages.map(() => [] as number[]);
  for (let k = 0; k < CALIBRATION_REPEATS; k++) {
    for (const [i, p] of pages.entries()) {
      const t0 = performance.now();
      const { timing } = await readPage(stack.edge.url, p.png);
      totalsMs[i]!.push(performance.now() - t0);
      for (const stage of PIPELINE_STAGES) measured[i]!.stageMs[stage].push(timing[stage] ?? NaN);
    }
  }
  const after = await sums();
  const since = { origin: sumsSince(before.origin, after.origin), edge: sumsSince(before.edge, after.edge) };
  const servers: CalibrationRun["servers"] = {};
  for (const stage of PIPELINE_STAGES) {
    const model = PIPELINE.stages[stage];
    const kernel = since[config[stage].placement][model];
    if (kernel) servers[stage] = { ...kernel, ...(config[stage].placement === "origin" && since.edge[model] && { heldMs: since.edge[model].computeMs }) };
  }
  return { run: { config, pages: measured, servers }, medianMs: totalsMs.map((ms) => quantile(ms, 0.5)) };
}

/**
 * The stage models as this stack runs now: each page sent alone CALIBRATION_REPEATS times with cls and
 * rec at the origin, then at the edge; the Worker's stage times (Server-Timing) and the servers'
 * metrics (the origin replicas' for origin stages, the edge's for edge stages) into calibratePipeline.
 * With every stage at the origin, a probe under load follows (PROBE_PAGES pages at PROBE_RATE_PER_S):
 * how much longer the servers were held than at full speed gives the host's contention
 * (calibrateContention), as the stages share this machine's cores.
 */
async function calibrate(pages: OcrTestImage[], shapes: PageShape[], models: PipelineModels, cpu: PipelineCpu): Promise<ReturnType<typeof calibratePipeline> & { contention: ContentionCalibration }> {
  const runs: CalibrationRun[] = [];
  let probe: ContentionProbe | undefined;
  for (const placement of ["origin", "edge"] as const) {
    const config = calibrationConfig(models, placement);
    const stack = await ocrStack(pipelineOverrides(config, models), 1);
    try {
      for (const p of pages) await readPage(stack.edge.url, p.png); // warm the sessions and the path
      const { run } = await aloneRun(stack, pages, shapes, config);
      runs.push(run);
      console.log(`  calibration, cls and rec at the ${placement}: ${JSON.stringify(run.servers)}`);
      if (placement === "origin") {
        const measured = await sendMeasured(stack.edge.url, pages, shapes, config, PROBE_RATE_PER_S, poissonArrivals(PROBE_RATE_PER_S, PROBE_PAGES, 5));
        const { result } = measured;
        if (result.ok !== result.sent) throw new Error(`contention probe: ${result.ok} of ${result.sent} answered: ${JSON.stringify(result.errors)}`);
        probe = measured.probe;
        console.log(`  contention probe at ${PROBE_RATE_PER_S}/s: ${JSON.stringify(probe.servers)}`);
      }
    } finally {
      await stopStack(stack);
    }
  }
  const calibrated = calibratePipeline(models, cpu, runs);
  const contention = calibrateContention(calibrated.models, cpu, probe!);
  return { models: { ...calibrated.models, hostContention: contention.hostContention }, stages: calibrated.stages, contention };
}

/** One repetition of a load step: what was measured, the forecast, and the prediction at the speed its servers measured. */
interface StepRun {
  result: Awaited<ReturnType<typeof openLoop>>;
  /** With the on-stack calibration and the host contention model, made before the steps. */
  prediction: PipelinePrediction;
  /** With each stage's line at the speed its servers measured during this repetition (calibrateSpeed). */
  atSpeed: PipelinePrediction;
  slowdowns: Record<PipelineStage, number>;
}

/**
 * A load step from its repetitions: p50 and p95 over all their images, measured, forecast and at
 * the measured speed (each repetition's own arrivals simulated), and each repetition's p95s (the
 * run-to-run spread).
 */
function loadStep(factor: number, ratePerS: number, runs: StepRun[], percentile: number, originComputeMs: Record<string, number>): LoadStep {
  const p95Of = (r: (typeof runs)[number]["result"], latencies: number[]) => (r.ok === r.sent ? quantile(latencies, percentile) : Infinity);
  const measured = runs.flatMap((r) => r.result.latenciesMs);
  const predicted = runs.flatMap((r) => Array.from(r.prediction.latenciesMs));
  const sent = runs.reduce((n, r) => n + r.result.sent, 0);
  const ok = runs.reduce((n, r) => n + r.result.ok, 0);
  const errors: Record<string, number> = {};
  for (const { result } of runs) for (const [k, v] of Object.entries(result.errors)) errors[k] = (errors[k] ?? 0) + v;
  const measuredP95Ms = ok === sent ? quantile(measured, percentile) : Infinity;
  const predictedP95Ms = quantile(predicted, percentile);
  const atSpeedP95Ms = quantile(runs.flatMap((r) => Array.from(r.atSpeed.latenciesMs)), percentile);
  const errorPct = (predictedMs: number) => round((100 * (predictedMs - measuredP95Ms)) / measuredP95Ms, 1);
  const timing: Record<string, number[]> = {};
  for (const { result } of runs) for (const [k, v] of Object.entries(result.serverTimingMs)) (timing[k] ??= []).push(...v);
  const stageMeasured = (name: string) => round(quantile(timing[name] ?? [NaN], 0.5), 0);
  const cpu = (timing.decode ?? []).map((d, i) => d + (timing.boxes?.[i] ?? 0));
  const stagePredicted = (stage: "det" | "cls" | "rec") => round(quantile(runs.map((r) => r.prediction.stages[stage].latencyMs.p50), 0.5), 0);
  return {
    factor,
    ratePerS: round(ratePerS, 3),
    sent,
    ok,
    errors,
    measuredP95Ms: round(measuredP95Ms, 0),
    measuredP50Ms: round(quantile(measured, 0.5), 0),
    predictedP95Ms: round(predictedP95Ms, 0),
    predictedP50Ms: round(quantile(predicted, 0.5), 0),
    errorPct: errorPct(predictedP95Ms),
    atSpeedP95Ms: round(atSpeedP95Ms, 0),
    atSpeedErrorPct: errorPct(atSpeedP95Ms),
    slowdowns: Object.fromEntries(PIPELINE_STAGES.map((stage) => [stage, round(quantile(runs.map((r) => r.slowdowns[stage]), 0.5), 3)])) as Record<PipelineStage, number>,
    repeats: runs.map((r) => ({ measuredP95Ms: round(p95Of(r.result, r.result.latenciesMs), 0), predictedP95Ms: round(r.prediction.percentileMs, 0), atSpeedP95Ms: round(r.atSpeed.percentileMs, 0) })),
    stagesP50Ms: {
      cpu: { measured: round(quantile(cpu.length ? cpu : [NaN], 0.5), 0), predicted: NaN },
      ...Object.fromEntries((["det", "cls", "rec"] as const).map((stage) => [stage, { measured: stageMeasured(stage), predicted: stagePredicted(stage) }])),
    },
    originComputeMs,
  };
}

function planTable(label: string, plan: PipelinePlan | null): string {
  if (!plan) return `| ${label} | no plan | | | | | | |\n`;
  const c = plan.config;
  const stage = (s: keyof typeof c) => `${c[s].placement}, B${c[s].maxBatch} W${c[s].windowMs} ms, ${c[s].placement === "origin" ? `${c[s].poolSize} replica(s)` : `${c[s].shards} shard(s)`}`;
  return `| ${label} | ${stage("det")} | ${stage("cls")} | ${stage("rec")} | ${round(plan.sloLatencyMs, 0)} | ${plan.windowShare ?? "-"} | ${plan.meetsSlo ? "yes" : "**no**"} | ${round(plan.costUsdPerHour, 4)} |\n`;
}

/** Runs the OCR benchmark and writes its report. */
export async function main({ quick = false, reuseAccuracy = false, pagesPerStep = 96, repeats = 1 }: { quick?: boolean; reuseAccuracy?: boolean; pagesPerStep?: number; repeats?: number } = {}): Promise<void> {
  const started = Date.now();
  const set = await ocrTestSet({ seed: 1, lines: quick ? 12 : 40, pages: quick ? 4 : 8 });
  const pages = set.filter((image) => image.kind === "page");
  console.log(`ocr: ${set.length} test images (${pages.length} pages)`);

  // 1-2. Accuracy and the mix, under the manifests' own batching (or the last run's, with --reuse-accuracy).
  const saved = join(ROOT, "bench", "reports", "ocr-accuracy.json");
  let accuracy: AccuracyReport;
  let pageShapes: PageShape[];
  if (reuseAccuracy) {
    ({ accuracy, pageShapes } = JSON.parse(readFileSync(saved, "utf8")) as { accuracy: AccuracyReport; pageShapes: PageShape[] });
  } else {
    const stack = await ocrStack({}, 1);
    const shapes = new Map<string, PageShape>();
    const peer = await createPeer();
    try {
      const edge = async (png: Uint8Array) => {
        const { answer, timing } = await readPage(stack.edge.url, png);
        const image = set.find((i) => i.png === png);
        if (image?.kind === "page") shapes.set(image.id, pageShape(image, answer, timing));
        return answer.lines.map((l) => l.text);
      };
      accuracy = await measureAccuracy({ edge, peer: async (png) => (await peer.recognise(png)).map((l) => l.text) }, set, { onImage: (system, row) => process.stdout.write(`\r  accuracy: ${system} ${row.id}   `) });
      process.stdout.write("\n");
    } finally {
      await peer.close();
      await stopStack(stack);
    }
    pageShapes = pages.map((p) => shapes.get(p.id)!);
    writeFileSync(saved, JSON.stringify({ accuracy, pageShapes }) + "\n");
  }
  const cpu = fitCpu(pageShapes);
  for (const p of pageShapes) console.log(`  ${p.id}: det ${p.detPixels} px, ${p.lineWidths.length} lines of width ${p.lineWidths.join(" ")}, Worker ${round(p.cpuMs, 1)} ms`);
  const profiled = ppocrStageModels(CATALOG, PIPELINE.stages);
  // 3. The stage models calibrated on this stack as it runs now (src/planner/pipeline-calibration.ts).
  const calibration = await calibrate(pages, pageShapes, profiled, cpu);
  console.log(`  host contention ${round(calibration.contention.hostContention, 3)}: the probe's servers held ${round(calibration.contention.slowdown, 3)}x their full-speed time at ${round(calibration.contention.busyCores, 2)} cores busy`);
  for (const c of calibration.stages) console.log(`  ${c.stage} at the ${c.placement}: service x${round(c.serviceScale, 3)}, handling ${round(c.handlingMs, 1)} ms, extra ${round(c.measuredExtraMs, 1)} ms; alone p50 ${round(c.stageP50Ms.measured, 0)} ms measured, ${round(c.stageP50Ms.uncalibrated, 0)} -> ${round(c.stageP50Ms.calibrated, 0)} predicted`);
  const models = calibration.models;
  const slo = PIPELINE.slo;
  // Plans leave the controller's headroom (src/control/replan.ts): they meet this share of the SLO's ms.
  const planSlo = { ...slo, ms: slo.ms * PLAN_SLO_SHARE };

  // 4. The plan: the highest grid rate with a plan on this machine (one shard per stage, one replica).
  const loadCount = quick ? 24 : pagesPerStep;
  const sampleAt = (ratePerS: number, count: number, seed: number): PipelineImage[] =>
    pagesAt(poissonArrivals(ratePerS, count, seed), pageShapes);
  const windowsAt = (ratePerS: number) => Array.from({ length: WINDOWS }, (_, k) => sampleAt(ratePerS, loadCount, 1000 + k));
  /** The highest grid rate with a plan under `stageModels` that meets planSlo. */
  const plannedWith = (stageModels: PipelineModels, label: string) => {
    let found: { ratePerS: number; result: ReturnType<typeof planPipeline> } | undefined;
    for (const ratePerS of RATE_GRID) {
      const result = planPipeline({ models: stageModels, slo: planSlo, cpu, images: sampleAt(ratePerS, 1000, 7), limits: { maxShards: 1, maxPoolSize: 1 }, sloWindows: { samples: windowsAt(ratePerS), share: WINDOW_SHARE, ms: slo.ms } });
      if (result.plan) console.log(`  ${label} plan at ${ratePerS}/s: ${result.plan.meetsSlo ? "meets" : "misses"} (p95 ${round(result.plan.sloLatencyMs, 0)} ms, windows within the SLO ${result.plan.windowShare ?? "-"}): ${JSON.stringify(result.plan.stages)}`);
      else console.log(`  no ${label} plan at ${ratePerS}/s: ${result.reason}`);
      if (!result.plan?.meetsSlo) break;
      found = { ratePerS, result };
    }
    return found;
  };
  const planned = plannedWith(models, "calibrated");
  if (!planned) throw new Error(`no plan meets the SLO even at ${RATE_GRID[0]} images/s`);
  const plannedProfiled = plannedWith(profiled, "profiled");
  const plan = planned.result.plan!;

  // 5. Latency under the plan, against its prediction for the same arrivals and pages.
  const stack = await ocrStack(plan.stages, Math.max(1, plan.poolSize));
  const steps: LoadStep[] = [];
  const alone: Array<{ id: string; lines: number; measuredMs: number; predictedMs: number; onStackMs: number }> = [];
  let onStack: { stages: StageCalibration[]; ratePerS: number; models: PipelineModels; windowShares: Array<{ ratePerS: number; share: number }> };
  try {
    for (const p of pages) await readPage(stack.edge.url, p.png); // warm the sessions and the path
    // Each page by itself (no queueing) against the calibrated models' prediction for it alone; the
    // same run calibrates the plan's placements again on the stack under test (the machine's speed
    // moves within minutes), and the load steps run at the rate that plan keeps on that calibration.
    const { run, medianMs } = await aloneRun(stack, pages, pageShapes, plan.config);
    const fresh = calibratePipeline(profiled, cpu, [run]);
    const stackModels: PipelineModels = { ...fresh.models, hostContention: models.hostContention };
    const loneMs = (m: PipelineModels, shape: PageShape) => predictPipeline({ images: [{ arrivalMs: 0, detPixels: shape.detPixels, lineWidths: shape.lineWidths }], models: m, config: plan.config, cpu, percentile: slo.percentile }).latencyMs.p50;
    for (const [i, p] of pages.entries()) alone.push({ id: p.id, lines: pageShapes[i]!.lineWidths.length, measuredMs: round(medianMs[i]!, 0), predictedMs: round(loneMs(models, pageShapes[i]!), 0), onStackMs: round(loneMs(stackModels, pageShapes[i]!), 0) });
    console.log(`  pages alone (measured / predicted / on-stack calibration): ${alone.map((a) => `${a.id} ${a.measuredMs}/${a.predictedMs}/${a.onStackMs}`).join(", ")}`);
    // The rate kept: the highest grid rate where the plan meets planSlo on a long sample and the SLO in WINDOW_SHARE of the windows.
    const windowShares = RATE_GRID.map((ratePerS) => ({ ratePerS, share: new SloWindows(windowsAt(ratePerS), stackModels, cpu, slo).share(plan.config) }));
    const keeps = RATE_GRID.filter((ratePerS, i) => windowShares[i]!.share >= WINDOW_SHARE && meetsPipelineSlo(predictPipeline({ images: sampleAt(ratePerS, 1000, 7), models: stackModels, config: plan.config, cpu, percentile: slo.percentile, warmupImages: 50 }), planSlo));
    onStack = { stages: fresh.stages, ratePerS: keeps.at(-1) ?? RATE_GRID[0]!, models: stackModels, windowShares };
    console.log(`  on the stack under test the plan keeps ${Math.round(PLAN_SLO_SHARE * 100)} % of the SLO, and the SLO in ${WINDOW_SHARE * 100} % of the windows, up to ${onStack.ratePerS}/s; windows within the SLO: ${windowShares.map((w) => `${w.ratePerS}/s ${w.share}`).join(", ")}`);
    for (const [stepIndex, factor] of LOAD_FACTORS.entries()) {
      const ratePerS = onStack.ratePerS * factor;
      const computeBefore = await computeSums(stack.origins().map((r) => r.url));
      // Each repetition has arrivals of its own; the step pools their latencies (measured and predicted).
      const runs: StepRun[] = [];
      for (let repeat = 0; repeat < repeats; repeat++) {
        const arrivalsMs = poissonArrivals(ratePerS, loadCount, 11 + stepIndex + 100 * repeat);
        const { result, probe } = await sendMeasured(stack.edge.url, pages, pageShapes, plan.config, ratePerS, arrivalsMs);
        const speed = calibrateSpeed(onStack.models, cpu, probe);
        const predict = (m: PipelineModels) => predictPipeline({ images: probe.images, models: m, config: plan.config, cpu, percentile: slo.percentile });
        runs.push({ result, prediction: predict(onStack.models), atSpeed: predict(speed.models), slowdowns: speed.slowdowns });
      }
      const computed = sumsSince(computeBefore, await computeSums(stack.origins().map((r) => r.url)));
      const originComputeMs = Object.fromEntries(Object.entries(computed).map(([model, c]) => [model, round(c.computeMs / Math.max(1, c.requests), 1)]));
      const step = loadStep(factor, ratePerS, runs, slo.percentile, originComputeMs);
      steps.push(step);
      console.log(`  ${step.ratePerS}/s: measured p95 ${step.measuredP95Ms} ms, predicted ${step.predictedP95Ms} ms (${step.errorPct} %), at the step's measured speed ${step.atSpeedP95Ms} ms (${step.atSpeedErrorPct} %, slowdowns ${JSON.stringify(step.slowdowns)}), per repetition ${step.repeats.map((r) => `${r.measuredP95Ms}/${r.predictedP95Ms}/${r.atSpeedP95Ms}`).join(", ")}, ${step.ok}/${step.sent} ok`);
    }
  } finally {
    await stopStack(stack);
  }

  const report = { generatedAt: new Date().toISOString(), quick, slo, cpu, pages: pageShapes, plannedRatePerS: planned.ratePerS, profiledPlannedRatePerS: plannedProfiled?.ratePerS ?? 0, calibration: calibration.stages, contention: calibration.contention, onStack: { ratePerS: onStack!.ratePerS, stages: onStack!.stages, windowShares: onStack!.windowShares }, plan: { config: plan.config, sloLatencyMs: plan.sloLatencyMs, windowShare: plan.windowShare, costUsdPerHour: plan.costUsdPerHour, stages: plan.stages }, baseline: planned.result.baseline.plan && { config: planned.result.baseline.plan.config, sloLatencyMs: planned.result.baseline.plan.sloLatencyMs, meetsSlo: planned.result.baseline.plan.meetsSlo, windowShare: planned.result.baseline.plan.windowShare, costUsdPerHour: planned.result.baseline.plan.costUsdPerHour }, steps, alone, accuracy: Object.fromEntries(Object.entries(accuracy.systems).map(([name, s]) => [name, { cer: s.cer, meanMs: s.meanMs }])), durationS: Math.round((Date.now() - started) / 1000) };
  const dir = join(ROOT, "bench", "reports");
  writeFileSync(join(dir, "ocr.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(join(dir, "ocr.svg"), latencyFigure(steps, slo.ms));
  writeFileSync(join(dir, "ocr.md"), markdown(report, plan, planned.result.baseline.plan, accuracy, steps, alone));
  console.log(`ocr: wrote bench/reports/ocr.{json,md,svg} in ${report.durationS} s`);
}

function latencyFigure(steps: LoadStep[], sloMs: number): string {
  const point = (f: (s: LoadStep) => number) => steps.map((s) => [s.ratePerS, Number.isFinite(f(s)) ? f(s) : NaN] as [number, number]);
  return renderFigure({
    title: "ppocr end-to-end p95 (pages): measured against the planner's prediction",
    xLabel: "images/s (Poisson)",
    xMaxS: Math.max(...steps.map((s) => s.ratePerS)) * 1.1,
    xTicks: steps.map((s) => s.ratePerS),
    panels: [
      {
        yLabel: "p95 (ms)",
        series: [
          { name: "measured", color: PALETTE[0]!, points: point((s) => s.measuredP95Ms), shape: "points" },
          { name: "forecast", color: PALETTE[1]!, points: point((s) => s.predictedP95Ms), shape: "points", dash: "6 3" },
          { name: "at the measured speed", color: PALETTE[2]!, points: point((s) => s.atSpeedP95Ms), shape: "points", dash: "2 2" },
        ],
        hLines: [{ y: sloMs, label: `SLO ${sloMs} ms`, color: PALETTE[3]! }],
      },
    ],
  });
}

type Report = { slo: { percentile: number; ms: number }; cpu: { cpuMs: number; cpuPerLineMs: number }; pages: PageShape[]; plannedRatePerS: number; profiledPlannedRatePerS: number; calibration: StageCalibration[]; contention: ContentionCalibration; onStack: { ratePerS: number; stages: StageCalibration[]; windowShares: Array<{ ratePerS: number; share: number }> }; durationS: number; quick: boolean };

function markdown(report: Report, plan: PipelinePlan, baseline: PipelinePlan | null, accuracy: Awaited<ReturnType<typeof measureAccuracy>>, steps: LoadStep[], alone: Array<{ id: string; lines: number; measuredMs: number; predictedMs: number; onStackMs: number }>): string {
  const pct = `p${Math.round(report.slo.percentile * 100)}`;
  const lines = report.pages.map((p) => p.lineWidths.length);
  const within = steps.filter((s) => s.factor <= 1);
  return `# OCR pipeline (ppocr): accuracy against a peer, and the end-to-end SLO

\`npm run bench -- ocr${report.quick ? " --quick" : ""}\` (bench/ocr.ts), ${report.durationS} s. The stack of \`npm start\`: the edge under \`wrangler dev\` and gpu-origin replicas serving the three models (CPU, no GPU here), all on this machine's 2 cores; CONTROL_MODE static so the plan under test stays put.

## Accuracy

Character error rate on rendered images with known text (bench/ocr/test-images.ts, seed 1), read by this pipeline (\`POST /v1/ocr\`) and by [@gutenye/ocr-node](https://www.npmjs.com/package/@gutenye/ocr-node) 1.4.8 running the same PP-OCRv4 det and rec files (it has no angle classifier). Primary metric: order-free CER (bench/ocr/cer.ts: each reference line matched in the prediction; reading order and line grouping, which the two systems decide differently, are not charged).

${accuracyMarkdown(accuracy, { baseline: "peer", worst: 8 })}

## The pages as the planner sees them

${report.pages.length} page images; lines per page ${Math.min(...lines)}–${Math.max(...lines)} (mean ${round(lines.reduce((a, b) => a + b, 0) / lines.length, 1)}); Worker time per page (decode, det input, DB boxes, crops) fitted as ${round(report.cpu.cpuMs, 1)} ms + ${round(report.cpu.cpuPerLineMs, 2)} ms per line.

## The stage models, calibrated on this stack

The profiles (models/*/profile.json) time the kernel once, on a quiet machine. Before planning, each page is sent alone ${CALIBRATION_REPEATS} times with cls and rec at the origin, then at the edge (det always at the origin; windows 0, a request a batch), and calibratePipeline (src/planner/pipeline-calibration.ts) fits, per stage and placement: the profile's line scaled by the servers' measured compute; the handling per request, how long the scheduler's server was held beyond the kernel (at the origin the edge's round trip of a batch: the transfer both ways and the replica's decoding and encoding), on the server; and the median off-server rest beyond the default overheads (the Worker building and reading the tensors, the hop).

| stage | placement | service scale | handling per request (ms) | off-server extra (ms) | requests measured / predicted | alone p50: measured / profile / calibrated (ms) |
|---|---|---:|---:|---:|---:|---|
${report.calibration.map((c) => `| ${c.stage} | ${c.placement} | ${round(c.serviceScale, 3)} | ${round(c.handlingMs, 1)} | ${round(c.measuredExtraMs, 1)} | ${c.requests.measured} / ${c.requests.predicted} | ${round(c.stageP50Ms.measured, 0)} / ${round(c.stageP50Ms.uncalibrated, 0)} / ${round(c.stageP50Ms.calibrated, 0)} |`).join("\n")}

The stages share this machine's 2 cores (workerd, wrangler's proxy, the origin replicas, the load generator), so under load every server slows. With every stage at the origin, ${PROBE_PAGES} pages at ${PROBE_RATE_PER_S}/s (Poisson) held the servers ${round(report.contention.slowdown, 3)}x as long as the calibrated lines predict at full speed, while the model keeps ${round(report.contention.busyCores, 2)} cores busy: host contention c = ${round(report.contention.hostContention, 3)} (calibrateContention). The planner and the predictions below slow every service time by 1 / (1 - c U), U the cores a sample keeps busy (PipelineModels.hostContention).

## The plan

SLO: ${pct} <= ${report.slo.ms} ms end to end. planPipeline (src/planner/pipeline.ts) at the highest rate of the grid ${RATE_GRID.join(", ")} images/s with a plan on this machine (at most one shard and one origin replica per stage) that meets ${Math.round(PLAN_SLO_SHARE * 100)} % of the SLO's ms on a long sample (1000 pages; ${report.slo.ms * PLAN_SLO_SHARE} ms: PLAN_SLO_SHARE, the headroom the controller leaves in every new plan) and the SLO itself in ${WINDOW_SHARE * 100} % of ${WINDOWS} measurement windows, each a Poisson sample as long as one repetition of a load step below, simulated alone (planPipeline's sloWindows: a step's ${pct} is read over its own images, and a plan that holds on average misses in the bursty windows), with the calibrated stage models: **${report.plannedRatePerS} images/s** (with the profiles alone: ${report.profiledPlannedRatePerS || "none"} images/s). InferLine's baseline plans each stage alone for a third of that.

| plan | det | cls | rec | predicted ${pct}, long sample (ms) | windows within the SLO | feasible | cost ($/h) |
|---|---|---|---|---:|---:|---|---:|
${planTable("joint (InferLine)", plan)}${planTable("even split", baseline)}
## Each page alone, against its prediction

The service model without queueing: each page sent by itself under the plan (median of ${CALIBRATION_REPEATS}), against the calibrated models' prediction for that page alone. The same run calibrates the plan's placements again on the stack under test (last column: that calibration's prediction), because this shared machine's speed moves within minutes; the load steps below are predicted with it, at the rate up to which the plan stays feasible on it (${Math.round(PLAN_SLO_SHARE * 100)} % of the SLO on the long sample, the SLO in ${WINDOW_SHARE * 100} % of the windows): **${report.onStack.ratePerS} images/s** (planned: ${report.plannedRatePerS}). Windows within the SLO on this calibration: ${report.onStack.windowShares.map((w) => `${w.ratePerS}/s ${w.share}`).join(", ")}.

| page | lines | measured (ms) | predicted (ms) | error | on-stack calibration (ms) |
|---|---:|---:|---:|---:|---:|
${alone.map((a) => `| ${a.id} | ${a.lines} | ${a.measuredMs} | ${a.predictedMs} | ${round((100 * (a.predictedMs - a.measuredMs)) / a.measuredMs, 1)} % | ${a.onStackMs} |`).join("\n")}

On-stack calibration: ${report.onStack.stages.map((c) => `${c.stage} at the ${c.placement}: service x${round(c.serviceScale, 3)}, handling ${round(c.handlingMs, 1)} ms, extra ${round(c.measuredExtraMs, 1)} ms`).join("; ")}.

## Latency under the plan, against its prediction

Open-loop Poisson arrivals of the pages (page i % ${report.pages.length}), ${steps[0]?.repeats.length ?? 1} repetition(s) of ${steps[0] ? steps[0].sent / steps[0].repeats.length : 0} images per step, each with arrivals of its own; the predictions simulate the same arrivals and pages (predictPipeline). p50 and ${pct} are over all of a step's images; each repetition's ${pct} shows the run-to-run spread. Two predictions:
- **forecast**: with the on-stack calibration above and the host contention model, made before the steps (what the planner knew when it planned);
- **at the measured speed**: with each stage's line slowed (or sped up) by what its servers measured during that very repetition against the full-speed prediction for its arrivals (calibrateSpeed, src/planner/pipeline-calibration.ts; the edge's server time per stage: the Durable Object's run, or the origin batch's round trip). It tests the queueing, batching and fan-out model given the speed this shared host ran at, which moves from minute to minute; the running system's controller likewise plans from the service times its buffers report.

| rate (images/s) | x the rate kept | ok / sent | measured p50 (ms) | measured ${pct} (ms) | forecast ${pct} (ms), error | at the measured speed ${pct} (ms), error | measured slowdown: det, cls, rec | ${pct} per repetition, measured / forecast / at speed (ms) | stage p50s, measured / forecast (ms): Worker, det, cls, rec | origin compute per request (ms): det, rec |
|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|
${steps.map((s) => `| ${s.ratePerS} | ${s.factor} | ${s.ok} / ${s.sent}${Object.keys(s.errors).length ? ` (${Object.entries(s.errors).map(([k, v]) => `${v} x ${k}`).join(", ")})` : ""} | ${s.measuredP50Ms} | ${s.measuredP95Ms} | ${s.predictedP95Ms}, ${s.errorPct} % | ${s.atSpeedP95Ms}, ${s.atSpeedErrorPct} % | ${PIPELINE_STAGES.map((k) => s.slowdowns[k]).join(", ")} | ${s.repeats.map((r) => `${r.measuredP95Ms} / ${r.predictedP95Ms} / ${r.atSpeedP95Ms}`).join("; ")} | ${s.stagesP50Ms.cpu!.measured}; ${["det", "cls", "rec"].map((k) => `${s.stagesP50Ms[k]!.measured} / ${s.stagesP50Ms[k]!.predicted}`).join("; ")} | ${s.originComputeMs["ppocr-det"] ?? "-"}, ${s.originComputeMs["ppocr-rec"] ?? "-"} |`).join("\n")}

Up to the rate the plan keeps on the stack under test: ${pct} within the SLO in ${within.filter((s) => s.measuredP95Ms <= report.slo.ms).length} of ${within.length} steps; prediction within 20 %: at the measured speed in ${within.filter((s) => Math.abs(s.atSpeedErrorPct) <= 20).length} of ${within.length}, forecast in ${within.filter((s) => Math.abs(s.errorPct) <= 20).length} of ${within.length}.

![measured and predicted p95](ocr.svg)
`;
}
