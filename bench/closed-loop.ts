/**
 * `npm run bench -- closed-loop [--quick] [--policies a,b] [--workloads trace,step] [--phase-s 60] [--trace-s 180] [--origin-provider timed|cpu]`:
 * does the closed control loop keep the SLO for less than a static pool? Against the stack
 * `npm start` runs (startStack: wrangler dev, gpu-origin replicas under the local scaler, the pool
 * agent), it replays two open-loop workloads on one edge model (ppocr-cls) and one origin-placed
 * model (ppocr-det at 640x640, which its manifest pins to the origin), both at once on one edge:
 *   - trace: a slice of the Azure LLM conversation trace (bench/data), time-compressed and thinned
 *     to a mean rate this machine serves;
 *   - step: Poisson arrivals at 1x for a phase, 3x for a phase, 0.5x for a phase;
 * under four policies: the static manifest with a pool sized for the mean load, with a pool sized
 * for the peak, the reactive rule (Ray Serve's defaults) and the closed loop. Pools are sized as
 * ceil(rate * perRowMs / 1000 / 0.7), perRowMs being what one replica takes a row through the whole
 * stack, measured first (calibrate: full batches, one replica). The replicas run on the `timed`
 * provider by default (gpu-origin/timed-backend.ts, a stand-in accelerator: each batch takes the
 * profiled origin time on a timer and answers the real model's outputs, so replicas, like machines
 * of their own, add capacity instead of sharing this host's cores); `--origin-provider cpu` runs
 * them on onnxruntime's CPU provider instead. While a run goes the pool size is sampled every 500 ms
 * and each model's plan every 2 s. Writes bench/reports/<stem>.{json,md} and one SVG per model and
 * workload (bench/reports/<stem>-<model>-<workload>.svg), the stem being `closed-loop` (timed) or
 * `closed-loop-cpu`.
 * Bounded: every sender stops at its last arrival and waits at most the model's deadline.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { header, post } from "../src/cli/loopback-http";
import { ROOT } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { startStack, type Stack } from "../src/cli/stack";
import { costPerHour } from "../src/planner/cost-model";
import { DEFAULT_PRICES } from "../src/planner/prices";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../src/protocol/oip-binary";
import { seededFloats } from "../test/fixtures/model-inputs";
import { seededRandom } from "./lib/open-loop";
import { attainment, attainmentPerMinute, type DecisionRecord, latencyQuantile, type PoolSample, poolChanges, replicaSeconds, type RequestRecord, rollingPerSecond, stepResponse, type StepResponse } from "./lib/slo-metrics";
import { renderFigure, type Series } from "./lib/svg-plot";
import { round } from "./lib/stats";

const PORT = 8830;
const ORIGIN_PORT = 8840;
/** Utilisation a static pool is sized for. */
const SIZING_UTILISATION = 0.7;
const POOL_SAMPLE_MS = 500;
const PLAN_SAMPLE_MS = 2000;
const MAX_REPLICAS = 4;
/**
 * ppocr-cls's placement pinned to the edge (ppocr-det's manifest pins it to the origin): the benchmark
 * compares pool sizing and batching for one edge and one origin model (unpinned, the closed loop moves cls).
 */
const OVERRIDES = { "ppocr-cls": { pinned: ["placement"] } };

export type Policy = "static-mean" | "static-peak" | "reactive" | "closed-loop";
export type Workload = "trace" | "step";
const POLICIES: Policy[] = ["static-mean", "static-peak", "reactive", "closed-loop"];
const COLORS: Record<Policy, string> = { "static-mean": "#1f77b4", "static-peak": "#2ca02c", reactive: "#ff7f0e", "closed-loop": "#d62728" };

interface ModelCase {
  model: "ppocr-cls" | "ppocr-det";
  placement: "edge" | "origin";
  shape: number[];
  /** UINT8: pixels the model normalises itself (manifest fromUint8), a quarter of FP32's bytes through the edge. */
  datatype: "FP32" | "UINT8";
  /** Step workload's 1x rate, per s; the trace's mean rate, per s. */
  stepBasePerS: number;
  traceMeanPerS: number;
}

const MODELS: ModelCase[] = [
  { model: "ppocr-cls", placement: "edge", shape: [1, 3, 48, 192], datatype: "FP32", stepBasePerS: 5, traceMeanPerS: 6 },
  { model: "ppocr-det", placement: "origin", shape: [1, 3, 640, 640], datatype: "UINT8", stepBasePerS: 2.5, traceMeanPerS: 3.5 },
];

interface Manifest {
  slo: { percentile: number; ms: number };
  maxLatencyMs?: number;
  batching: { windowMs: number };
}

const readJson = <T>(...path: string[]) => JSON.parse(readFileSync(resolve(ROOT, ...path), "utf8")) as T;
const manifestOf = (model: string) => readJson<Manifest>("models", model, "manifest.json");
const fitOf = (model: string, runtime: "edge" | "origin") => readJson<{ runtimes: Record<string, { fit: { baseMs: number; perItemMs: number } }> }>("models", model, "profile.json").runtimes[runtime]!.fit;

/** Replicas a static pool needs for `ratePerS` of a model served at `perRowMs` a row. */
const replicasFor = (ratePerS: number, perRowMs: number) => Math.max(1, Math.ceil((ratePerS * perRowMs) / 1000 / SIZING_UTILISATION));

/** Requests the calibration sends, and how many at once (ppocr-det's maxBatch: full batches). */
const CALIBRATION_REQUESTS = 40;
const CALIBRATION_IN_FLIGHT = 8;

/**
 * What one replica takes per ppocr-det row through the whole stack (the edge, the hop, the replica),
 * ms: the time `CALIBRATION_REQUESTS` one-row requests take with CALIBRATION_IN_FLIGHT in flight on a
 * static pool of one, over their number. The profile's line is the session alone; the edge and the
 * replica add the tensors' way (here about half as much again), which a static pool must be sized for.
 */
async function calibratePerRowMs(provider: OriginProvider): Promise<number> {
  const stack = await startCleanStack(1, 1, { CONTROL_MODE: "static" }, provider);
  try {
    const origin = MODELS.find((m) => m.placement === "origin")!;
    const payload = payloadOf(origin);
    const url = `${stack.edge.url}/v2/models/${origin.model}/infer`;
    for (let i = 0; i < 3; i++) await post(url, payload.body, payload.headers, 30_000);
    let next = 0;
    const startMs = performance.now();
    await Promise.all(
      Array.from({ length: CALIBRATION_IN_FLIGHT }, async () => {
        while (next++ < CALIBRATION_REQUESTS) {
          const answer = await post(url, payload.body, payload.headers, 30_000);
          if (answer.status !== 200) throw new Error(`calibration: ${origin.model} answered ${answer.status}`);
        }
      }),
    );
    return (performance.now() - startMs) / CALIBRATION_REQUESTS;
  } finally {
    await stack.stop();
  }
}

/**
 * The stack on PORT with `replicas` (up to `maxReplicas`) replicas serving ppocr-det on `provider`,
 * from a clean edge: the controllers persist their plans in wrangler's local state (see the report).
 */
function startCleanStack(replicas: number, maxReplicas: number, vars: Record<string, string>, provider: OriginProvider): Promise<Stack> {
  rmSync(resolve(ROOT, ".wrangler", `state-${PORT}`), { recursive: true, force: true });
  return startStack({ replicas, maxReplicas, port: PORT, originPort: ORIGIN_PORT, vars, originArgs: ["--models", "ppocr-det", "--provider", provider] });
}

/** Poisson arrivals (s) at piecewise-constant rates. */
function stepArrivals(basePerS: number, phaseS: number, seed: number): number[] {
  const random = seededRandom(seed);
  const out: number[] = [];
  [1, 3, 0.5].forEach((factor, i) => {
    let t = i * phaseS;
    for (;;) {
      t += -Math.log(1 - random()) / (basePerS * factor);
      if (t >= (i + 1) * phaseS) break;
      out.push(t);
    }
  });
  return out;
}

/** The trace slice (minutes 14-41 of the hour: a rise to the busiest stretch, then a fall), compressed to `durationS` and thinned to `meanPerS`. */
function traceArrivals(meanPerS: number, durationS: number, seed: number): number[] {
  const all = readFileSync(resolve(ROOT, "bench", "data", "azure-llm-2023-conv-arrivals-ms.txt"), "utf8").trim().split("\n").map(Number);
  const fromMs = 14 * 60_000;
  const toMs = 41 * 60_000;
  const slice = all.filter((t) => t >= fromMs && t < toMs).map((t) => ((t - fromMs) / (toMs - fromMs)) * durationS);
  const keep = Math.min(1, (meanPerS * durationS) / slice.length);
  const random = seededRandom(seed);
  return slice.filter(() => random() < keep);
}

/** Mean and peak (largest 10 s window) rates of arrivals over `durationS`, per s. */
function rates(arrivalsS: number[], durationS: number): { meanPerS: number; peakPerS: number } {
  let peak = 0;
  for (let t = 0; t + 10 <= durationS; t += 1) peak = Math.max(peak, arrivalsS.filter((a) => a >= t && a < t + 10).length / 10);
  return { meanPerS: arrivalsS.length / durationS, peakPerS: peak };
}

/** A one-row binary request that asks for binary outputs too (ppocr-det answers 1.6 MB of FP32 a row: JSON would swamp the edge's one thread). */
function payloadOf({ shape, datatype }: ModelCase): Payload {
  const floats = seededFloats(shape.reduce((a, b) => a * b, 1), 7);
  const data = datatype === "UINT8" ? Uint8Array.from(floats, (v) => Math.floor(v * 256)) : floats;
  const packed = packBinary({ parameters: { binary_data_output: true }, inputs: [{ name: "x", datatype, shape, parameters: { binary_data_size: data.byteLength } }] }, [{ name: "x", datatype, shape, data }]);
  return { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
}

interface Payload {
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/** Sends one POST per arrival, open loop, recording each outcome. */
async function replay(url: string, payload: Payload, arrivalsS: number[], startMs: number, deadlineMs: number): Promise<RequestRecord[]> {
  const records: RequestRecord[] = [];
  const pending: Promise<void>[] = [];
  for (const sentS of arrivalsS) {
    const scheduledMs = startMs + sentS * 1000;
    const waitMs = scheduledMs - performance.now();
    if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
    pending.push(
      post(url, payload.body, payload.headers, deadlineMs).then(
        (a) => void records.push({ sentS, status: a.status, latencyMs: performance.now() - scheduledMs, batchSize: Number(header(a, "x-batch-size") ?? 0) }),
        () => void records.push({ sentS, status: 0, latencyMs: performance.now() - scheduledMs, batchSize: 0 }),
      ),
    );
  }
  await Promise.all(pending);
  return records.sort((a, b) => a.sentS - b.sentS);
}

interface PlanSample {
  atS: number;
  version: number;
  plan: DecisionRecord["after"];
}

interface ModelRun {
  model: string;
  records: RequestRecord[];
  plans: PlanSample[];
  decisions: DecisionRecord[];
}

interface Run {
  policy: Policy;
  workload: Workload;
  durationS: number;
  replicas: number;
  maxReplicas: number;
  startupS: number;
  pool: PoolSample[];
  models: ModelRun[];
}

/** One policy on one workload: a fresh stack, both models' load at once, sampling, then stop. */
async function runOnce(policy: Policy, workload: Workload, arrivals: Map<string, number[]>, durationS: number, sizes: { nMean: number; nPeak: number }, provider: OriginProvider): Promise<Run> {
  const replicas = policy === "static-mean" ? sizes.nMean : policy === "static-peak" ? sizes.nPeak : 1;
  const maxReplicas = policy.startsWith("static") ? replicas : MAX_REPLICAS;
  const mode = policy.startsWith("static") ? "static" : policy;
  const t0 = performance.now();
  const stack = await startCleanStack(replicas, maxReplicas, { CONTROL_MODE: mode, MODEL_OVERRIDES: JSON.stringify(OVERRIDES) }, provider);
  const startupS = (performance.now() - t0) / 1000;
  try {
    const payloads = new Map(MODELS.map((m) => [m.model, payloadOf(m)]));
    const urlOf = (m: string) => `${stack.edge.url}/v2/models/${m}/infer`;
    // Warm the edge sessions and the hop before the clock starts (a first request loads the model).
    for (const m of MODELS) for (let i = 0; i < 3; i++) await post(urlOf(m.model), payloads.get(m.model)!.body, payloads.get(m.model)!.headers, 30_000).catch(() => undefined);
    const startMs = performance.now();
    const startEpochMs = Date.now();
    const atS = () => (performance.now() - startMs) / 1000;
    const pool: PoolSample[] = [{ atS: 0, size: stack.origins().length }];
    const plans = new Map<string, PlanSample[]>(MODELS.map((m) => [m.model, []]));
    let isRunning = true;
    const poolTimer = setInterval(() => pool.push({ atS: atS(), size: stack.origins().length }), POOL_SAMPLE_MS);
    const planLoop = (async () => {
      while (isRunning) {
        for (const m of MODELS) {
          const view = await fetchPlan(stack.edge.url, m.model);
          if (view) plans.get(m.model)!.push({ atS: atS(), version: view.version, plan: view.plan });
        }
        await new Promise((r) => setTimeout(r, PLAN_SAMPLE_MS));
      }
    })();
    const results = await Promise.all(MODELS.map((m) => replay(urlOf(m.model), payloads.get(m.model)!, arrivals.get(m.model)!, startMs, (manifestOf(m.model).maxLatencyMs ?? 4 * manifestOf(m.model).slo.ms) + 2000)));
    isRunning = false;
    clearInterval(poolTimer);
    await planLoop;
    pool.push({ atS: atS(), size: stack.origins().length });
    const models: ModelRun[] = [];
    for (const [i, m] of MODELS.entries()) {
      const view = await fetchPlan(stack.edge.url, m.model);
      const decisions = (view?.decisions ?? []).map((d) => ({ atS: (d.atMs - startEpochMs) / 1000, version: d.version, reason: d.reason, before: d.before, after: d.after, inputs: d.inputs, predicted: d.predicted })).reverse();
      models.push({ model: m.model, records: results[i]!, plans: plans.get(m.model)!, decisions });
    }
    return { policy, workload, durationS, replicas, maxReplicas, startupS, pool, models };
  } finally {
    await stack.stop();
  }
}

interface PlanViewJson {
  version: number;
  plan: DecisionRecord["after"];
  decisions: Array<{ atMs: number; version: number; reason: string; before: DecisionRecord["before"]; after: DecisionRecord["after"]; inputs?: unknown; predicted?: unknown }>;
}

async function fetchPlan(edgeUrl: string, model: string): Promise<PlanViewJson | undefined> {
  try {
    const response = await fetch(`${edgeUrl}/v2/models/${model}/plan`, { signal: AbortSignal.timeout(5000) });
    return response.ok ? ((await response.json()) as PlanViewJson) : undefined;
  } catch {
    return undefined;
  }
}

/** Where the replicas run their sessions: the stand-in accelerator (gpu-origin/timed-backend.ts) or the host's CPU. */
export type OriginProvider = "timed" | "cpu";

/** Options of `npm run bench -- closed-loop` (parsed in bench/index.ts). */
export interface ClosedLoopOptions {
  originProvider: OriginProvider;
  quick: boolean;
  policies?: Policy[];
  workloads?: Workload[];
  phaseS?: number;
  traceS?: number;
}

export async function main(options: ClosedLoopOptions): Promise<void> {
  const isQuick = options.quick;
  const phaseS = options.phaseS ?? (isQuick ? 20 : 60);
  const traceS = options.traceS ?? (isQuick ? 60 : 180);
  const policies = options.policies ?? POLICIES;
  const workloads: Workload[] = options.workloads ?? ["trace", "step"];
  const benchStartMs = Date.now();
  const originCase = MODELS.find((m) => m.placement === "origin")!;
  const profilePerRowMs = fitOf(originCase.model, "origin").perItemMs;
  const perRowMs = await calibratePerRowMs(options.originProvider);
  console.log(`one replica through the stack: ${perRowMs.toFixed(1)} ms a row (the profile's session alone: ${profilePerRowMs.toFixed(1)})`);
  const runs: Run[] = [];
  const workloadInfo: Record<string, unknown> = {};
  const progress = startProgress("closed-loop", workloads.length * policies.length);
  try {
    for (const workload of workloads) {
      const durationS = workload === "step" ? 3 * phaseS : traceS;
      const arrivals = new Map(MODELS.map((m, i) => [m.model, workload === "step" ? stepArrivals(m.stepBasePerS, phaseS, 11 + i) : traceArrivals(m.traceMeanPerS, traceS, 21 + i)]));
      const originRates = rates(arrivals.get(originCase.model)!, durationS);
      const sizes = { nMean: replicasFor(originRates.meanPerS, perRowMs), nPeak: replicasFor(originRates.peakPerS, perRowMs) };
      workloadInfo[workload] = { durationS, ...sizes, perRowMs: round(perRowMs, 2), profilePerRowMs: round(profilePerRowMs, 2), rates: Object.fromEntries(MODELS.map((m) => [m.model, { requests: arrivals.get(m.model)!.length, ...mapRound(rates(arrivals.get(m.model)!, durationS)) }])) };
      console.log(workload, JSON.stringify(workloadInfo[workload]));
      for (const policy of policies) {
        console.log(`-- ${workload} / ${policy}`);
        progress.step(`${workload} / ${policy} (${durationS} s)`);
        const run = await runOnce(policy, workload, arrivals, durationS, sizes, options.originProvider);
        runs.push(run);
        console.log(JSON.stringify(summarise(run, phaseS).map((s) => ({ model: s.model, attainment: s.attainment, p99Ms: s.p99Ms, replicaS: s.replicaSeconds, usdPerM: s.usdPerMillion, step: s.step }))));
        progress.tick();
      }
    }
  } finally {
    progress.stop();
  }
  const elapsedS = (Date.now() - benchStartMs) / 1000;
  writeReports(runs, phaseS, workloadInfo, { isQuick, elapsedS, argv: process.argv.slice(2), provider: options.originProvider });
}

const mapRound = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v, 2)]));

/** The figures of one model in one run. */
export interface Summary {
  policy: Policy;
  workload: Workload;
  model: string;
  sent: number;
  ok: number;
  attainment: number;
  attainmentPerMinute: number[];
  p99Ms: number;
  p99OkMs: number;
  replicaSeconds: number | null;
  usdPerMillion: number;
  poolChangesPerPhase?: number[];
  planChangesPerPhase?: number[];
  decisions: number;
  step?: StepResponse;
}

/** The metrics of every model in `run`. */
export function summarise(run: Run, phaseS: number): Summary[] {
  return run.models.map((m) => {
    const mc = MODELS.find((x) => x.model === m.model)!;
    const manifest = manifestOf(m.model);
    const isOrigin = mc.placement === "origin";
    const ok = m.records.filter((r) => r.status === 200);
    const replicaS = isOrigin ? replicaSeconds(run.pool, run.durationS) : null;
    const meanBatch = ok.length ? ok.reduce((s, r) => s + r.batchSize, 0) / ok.length : 1;
    const fit = fitOf(m.model, mc.placement);
    const serviceMs = fit.baseMs + fit.perItemMs * meanBatch;
    const ratePerS = m.records.length / run.durationS;
    const edge = costPerHour({ placement: mc.placement, ratePerS, shards: 1, poolSize: 0, meanBatch, meanOpenMs: manifest.batching.windowMs, meanServiceMs: serviceMs, meanInFlightMs: serviceMs }, DEFAULT_PRICES);
    const replicaUsd = ((replicaS ?? 0) * DEFAULT_PRICES.origin.usdPerHour) / 3600;
    const usdPerMillion = m.records.length ? edge.usdPerMillionRequests + (replicaUsd / m.records.length) * 1e6 : 0;
    const summary: Summary = {
      policy: run.policy,
      workload: run.workload,
      model: m.model,
      sent: m.records.length,
      ok: ok.length,
      attainment: round(attainment(m.records, manifest.slo.ms), 4),
      attainmentPerMinute: attainmentPerMinute(m.records, manifest.slo.ms, run.durationS).map((a) => round(a, 4)),
      p99Ms: round(latencyQuantile(m.records, 0.99), 1),
      p99OkMs: round(latencyQuantile(ok, 0.99), 1),
      replicaSeconds: replicaS === null ? null : round(replicaS, 1),
      usdPerMillion: round(usdPerMillion, 3),
      decisions: m.decisions.length,
    };
    if (run.workload === "step") {
      summary.poolChangesPerPhase = [0, 1, 2].map((i) => poolChanges(run.pool, i * phaseS, (i + 1) * phaseS));
      summary.planChangesPerPhase = [0, 1, 2].map((i) => m.decisions.filter((d) => d.atS >= i * phaseS && d.atS < (i + 1) * phaseS).length);
      summary.step = stepResponse(m.records, run.pool, m.decisions, phaseS, 2 * phaseS, manifest.slo.percentile, manifest.slo.ms, isOrigin);
    }
    return summary;
  });
}

/** How a report was made, beside its figures. */
interface ReportMeta {
  isQuick: boolean;
  elapsedS: number;
  argv: string[];
  provider: OriginProvider;
}

function writeReports(runs: Run[], phaseS: number, workloadInfo: Record<string, unknown>, meta: ReportMeta): void {
  const stem = meta.provider === "timed" ? "closed-loop" : `closed-loop-${meta.provider}`;
  const summaries = runs.flatMap((r) => summarise(r, phaseS));
  const reports = resolve(ROOT, "bench", "reports");
  const figures: string[] = [];
  for (const workload of new Set(runs.map((r) => r.workload))) {
    for (const mc of MODELS) {
      const these = runs.filter((r) => r.workload === workload);
      const manifest = manifestOf(mc.model);
      const durationS = these[0]!.durationS;
      const series = (f: (r: Run, m: ModelRun) => Array<[number, number]>): Series[] => these.map((r) => ({ name: r.policy, color: COLORS[r.policy], points: f(r, r.models.find((m) => m.model === mc.model)!) }));
      const rolling = new Map(these.map((r) => [r.policy, rollingPerSecond(r.models.find((m) => m.model === mc.model)!.records, durationS, 10, 0.95)]));
      const panels = [
        { yLabel: "sent per s", series: series((r) => rolling.get(r.policy)!.map((p) => [p.atS, p.ratePerS])).slice(0, 1).map((s) => ({ ...s, name: "offered", color: "#333" })) },
        mc.placement === "origin"
          ? { yLabel: "origin replicas", series: series((r) => r.pool.map((p) => [p.atS, p.size])), yMax: MAX_REPLICAS + 1 }
          : { yLabel: "plan maxBatch", series: series((_r, m) => m.plans.map((p) => [p.atS, p.plan.maxBatch])) },
        { yLabel: "rolling p95 (10 s), ms", series: series((r) => rolling.get(r.policy)!.map((p) => [p.atS, Number.isFinite(p.quantileMs) || Number.isNaN(p.quantileMs) ? p.quantileMs : 1e9])), hLines: [{ y: manifest.slo.ms, label: `SLO ${manifest.slo.ms} ms`, color: "#d62728" }], yMax: manifest.slo.ms * 3 },
      ];
      const name = `${stem}-${mc.model}-${workload}.svg`;
      const vLines = workload === "step" ? [{ x: phaseS, label: "3x" }, { x: 2 * phaseS, label: "0.5x" }] : [];
      writeFileSync(resolve(reports, name), renderFigure({ title: `${mc.model} (${mc.placement}), ${workload}`, xLabel: "time since the load started, s", xMaxS: durationS, panels, vLines }));
      figures.push(name);
    }
  }
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version };
  const raw = runs.map((r) => ({ ...r, models: r.models.map((m) => ({ model: m.model, decisions: m.decisions, plans: m.plans, requests: m.records.map((x) => [round(x.sentS, 3), x.status, round(x.latencyMs, 1)]) })) }));
  writeFileSync(resolve(reports, `${stem}.json`), JSON.stringify({ generatedAt: new Date().toISOString(), machine, ...meta, phaseS, workloads: workloadInfo, summaries, runs: raw }) + "\n");
  writeFileSync(resolve(reports, `${stem}.md`), markdown(summaries, runs, phaseS, workloadInfo, machine, meta, figures));
}

function markdown(summaries: Summary[], runs: Run[], phaseS: number, workloadInfo: Record<string, unknown>, machine: Record<string, unknown>, meta: ReportMeta, figures: string[]): string {
  const lines = [
    "# Closed-loop control benchmark",
    "",
    `Generated ${new Date().toISOString()} by \`npm run bench -- ${meta.argv.join(" ")}\`${meta.isQuick ? " (quick: short phases, a smoke run)" : ""}; took ${(meta.elapsedS / 60).toFixed(1)} min.`,
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}. Stack: startStack (wrangler dev + gpu-origin replicas under the local scaler + pool agent), CONTROL_MAX_SHARDS=1. Replicas: ${meta.provider === "timed" ? "`--provider timed`, the stand-in accelerator (gpu-origin/timed-backend.ts): each batch takes ppocr-det's profiled origin time on a timer and answers the real model's outputs (computed once per distinct row), so each replica adds capacity as a machine of its own would; a fake for the GPU this host lacks" : "`--provider " + meta.provider + "`: onnxruntime on this host's cores, which every replica shares with the edge and the load generator"}.`,
    "",
    "Models, both loaded at once on one edge: `ppocr-cls` at the edge (SLO p99 250 ms), `ppocr-det` on the origin (pinned there by its manifest; x [1,3,640,640] sent as UINT8 pixels, SLO p99 5000 ms, replicas run `--models ppocr-det`). Binary tensor bodies and binary outputs. ppocr-cls's placement is pinned to the edge by MODEL_OVERRIDES (unpinned, the closed loop moved it to the origin, which these replicas do not serve). ppocr-rec was tried first and dropped: at W=320 each row answers 1 MB of FP32 and costs the edge's single workerd thread about as much as the origin's kernel (~25 ms), so the edge, not the pool, saturates before a 3x step needs a second replica.",
    `Workloads: **trace** = Azure LLM conversation trace, minutes 14-41, compressed into the run and thinned to the mean rate; **step** = Poisson 1x / 3x / 0.5x, ${phaseS} s each.`,
    `Pool sizes for the static policies: ceil(rate x perRowMs / 1000 / 0.7), perRowMs = what one replica takes a row through the whole stack, measured first (${CALIBRATION_REQUESTS} one-row requests, ${CALIBRATION_IN_FLIGHT} in flight, on a static pool of one; profilePerRowMs = the session alone, models/ppocr-det/profile.json), mean = the run's mean rate, peak = its largest 10 s rate:`,
    "",
    "```json",
    JSON.stringify(workloadInfo, null, 1),
    "```",
    "",
    "Attainment = share of ALL sent requests answered 200 within the SLO ms (client-side latency from the scheduled send time). p99 counts failures as infinitely late (inf); p99 ok = over the 200s. Cost per million = replica-seconds x $" + DEFAULT_PRICES.origin.usdPerHour + "/h (src/planner/prices.json) + the cost model's edge items (Worker and DO requests, CPU, DO duration) at the run's rate and mean batch. For `ppocr-cls` the pool is not applicable (it serves at the edge; the same pool belongs to ppocr-det): `static-mean` and `static-peak` are both the static manifest for it, the reactive rule changes its shards (capped at 1 locally), the closed loop its batching.",
    "",
    "| model | workload | policy | pool start/max | sent | attainment | per minute | p99 ms | p99 ok ms | replica-s | $ / M req | decisions |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const s of summaries) {
    const run = runs.find((r) => r.policy === s.policy && r.workload === s.workload)!;
    const pool = s.model === "ppocr-det" ? `${run.replicas}/${run.maxReplicas}` : "n/a";
    lines.push(`| ${s.model} | ${s.workload} | ${s.policy} | ${pool} | ${s.sent} | ${(s.attainment * 100).toFixed(2)} % | ${s.attainmentPerMinute.map((a) => (a * 100).toFixed(1)).join(" / ")} | ${fmtMs(s.p99Ms)} | ${fmtMs(s.p99OkMs)} | ${s.replicaSeconds ?? "n/a"} | ${s.usdPerMillion} | ${s.decisions} |`);
  }
  lines.push("", "## Step response (3x step at t = " + phaseS + " s)", "", "| model | policy | first scale-up decision, s after step | pool reached it, s | replica start, s | SLO holds again (every later 10 s window within p99 SLO), s | pool changes per phase (1x/3x/0.5x) | plan changes per phase |", "|---|---|---|---|---|---|---|---|");
  for (const s of summaries.filter((x) => x.step)) {
    const st = s.step!;
    lines.push(`| ${s.model} | ${s.policy} | ${st.decisionS === null ? "none" : st.decisionS.toFixed(1)} | ${st.poolReachedS === null ? "-" : st.poolReachedS.toFixed(1)} | ${st.replicaStartS === null ? "-" : st.replicaStartS.toFixed(1)} | ${st.sloHoldsAgainS === null ? "never" : st.sloHoldsAgainS} | ${s.model === "ppocr-det" ? s.poolChangesPerPhase!.join("/") : "n/a"} | ${s.planChangesPerPhase!.join("/")} |`);
  }
  lines.push("", "## Targets", "", ...targets(summaries, runs, phaseS), "", "## Decisions of the adaptive policies", "");
  for (const run of runs.filter((r) => r.policy === "reactive" || r.policy === "closed-loop")) {
    for (const m of run.models) {
      lines.push(`- **${m.model}, ${run.workload}, ${run.policy}**: ${m.decisions.length ? "" : "none"}`);
      for (const d of m.decisions) lines.push(`  - t=${d.atS.toFixed(1)} s v${d.version}: pool ${d.before.poolSize}->${d.after.poolSize}, shards ${d.before.shards}->${d.after.shards}, maxBatch ${d.before.maxBatch}->${d.after.maxBatch}, window ${d.before.windowMs}->${d.after.windowMs} ms: ${d.reason}`);
    }
  }
  lines.push("", "## Plots", "", "Offered rate, pool size (ppocr-det) or the plan's maxBatch (ppocr-cls), and the rolling 10 s p95 (failures drawn at the top) against the SLO.", "");
  for (const f of figures) lines.push(`![${f}](${f})`, "");
  return lines.join("\n") + "\n";
}

function targets(summaries: Summary[], runs: Run[], phaseS: number): string[] {
  const out: string[] = [];
  const find = (model: string, workload: Workload, policy: Policy) => summaries.find((s) => s.model === model && s.workload === workload && s.policy === policy);
  for (const model of MODELS.map((m) => m.model)) {
    const closed = find(model, "trace", "closed-loop");
    if (closed) out.push(`- ${model}, trace, closed loop: attainment ${(closed.attainment * 100).toFixed(2)} % (target >= 99 %): **${closed.attainment >= 0.99 ? "met" : "missed"}**.`);
    const peak = find(model, "trace", "static-peak");
    if (closed && peak && model === "ppocr-det") out.push(`- ${model}, trace: closed-loop cost $${closed.usdPerMillion}/M vs peak-sized static $${peak.usdPerMillion}/M = ${(closed.usdPerMillion / peak.usdPerMillion).toFixed(2)}x (target <= 0.7x): **${closed.usdPerMillion <= 0.7 * peak.usdPerMillion ? "met" : "missed"}**.`);
    const step = find(model, "step", "closed-loop");
    if (step?.step) {
      const startS = step.step.replicaStartS ?? runs.find((r) => r.policy === "closed-loop" && r.workload === "step")!.startupS;
      const limitS = 10 + startS;
      const holds = step.step.sloHoldsAgainS;
      out.push(`- ${model}, step, closed loop: SLO holds again ${holds === null ? "never (within the 3x phase)" : `${holds} s after the step`} (target <= 10 s + one replica start ${startS.toFixed(1)} s = ${limitS.toFixed(1)} s): **${holds !== null && holds <= limitS ? "met" : "missed"}**.`);
      const steady = model === "ppocr-det" ? [step.poolChangesPerPhase![0]!, step.poolChangesPerPhase![2]!] : [step.planChangesPerPhase![0]!, step.planChangesPerPhase![2]!];
      const perMinute = steady.map((c) => c / (phaseS / 60));
      out.push(`- ${model}, step, closed loop, steady phases (1x, 0.5x): ${model === "ppocr-det" ? "pool" : "plan"} changes ${steady.join(", ")} in ${phaseS} s each (target <= 1 per minute): **${perMinute.every((c) => c <= 1) ? "met" : "missed"}**.`);
    }
  }
  return out;
}

function fmtMs(ms: number): string {
  return Number.isFinite(ms) ? String(ms) : "inf";
}
