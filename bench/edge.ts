/**
 * `npm run bench -- edge [--baseline <git rev>] [--quick] [--platform workerd]`: the edge hot path,
 * for ppocr-cls and silero-vad, all on loopback under `wrangler dev` (or, with `--platform workerd`,
 * each Worker's deploy bundle on plain workerd: no dev proxy in front, bench/lib/plain-workerd.ts),
 * side by side in one run:
 *
 * - the kernel limit: back-to-back session.run in workerd at batch 1 and at the model's maxBatch;
 * - the platform ceiling: the highest rate the local stack (load generator, wrangler's proxy,
 *   workerd) sustains within the model's SLO for a no-op Worker sent the same request bodies;
 * - policies: the planner's plan (placement, maxBatch, window from the profile's kernel line and
 *   the paths' overheads measured on the stack under test first, as `npm run profile` measures
 *   them: src/cli/request-overhead.ts measureEdgePaths; the planner's own choice), buffered with batching (the manifest's "edge" plan) and buffered without (maxBatch 1),
 *   each swept over rising Poisson rates with REPEATS repetitions per step: a rate passes when most
 *   repetitions meet the SLO (p99 within it, at most 1 % failed); the highest passing rate is
 *   reported as a share of min(kernel limit, platform ceiling), with the per-repetition spread;
 * - platform + kernel: the same sweep for the profile Worker, which reads the body and runs the model
 *   once at batch 1 (none of the runtime): the most a runtime running each request alone could reach;
 * - light-load overhead: p50 minus the no-op's p50 (same body, interleaved) minus raw batch-1 time,
 *   and p50 minus platform + kernel's p50 (the runtime's own);
 * - CPU per request by process at a moderate rate: the no-op, the planned path, the buffered path
 *   and, with --baseline, the buffered path of another revision (a git worktree of it);
 * - the batch window's precision in an idle buffer.
 *
 * The controller runs in static mode (CONTROL_MODE=static) so that a policy stays what it is named,
 * and request log lines are off (LOG_REQUESTS=false), as `npm start` has them.
 * Writes bench/reports/edge.{json,md,svg} (edge-workerd.* on plain workerd).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readManifest } from "../gpu-origin/read-manifest";
import { cheapestPlan } from "../src/control/replan";
import { cpuMs, isDevProxy, processTree } from "../src/cli/process-cpu";
import { ROOT, startEdge, type Started } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import type { ModelManifest } from "../src/models/manifest";
import { type EdgePathOverheads, measureEdgePaths, type RequestOverhead } from "../src/cli/request-overhead";
import { profileOverhead, profileServiceLine } from "../src/models/profile";
import { toMarkovianArrival } from "../src/planner/arrival";
import { binaryBody } from "../test/fixtures/model-inputs";
import { openLoop, type LoadResult } from "./lib/open-loop";
import { edgeStarterOn, reportNameOn, type Platform } from "./lib/plain-workerd";
import { median, quantile, round } from "./lib/stats";
import { renderFigure } from "./lib/svg-plot";

const MODELS = ["ppocr-cls", "silero-vad"] as const;
type Model = (typeof MODELS)[number];

/** Load steps (requests/s); a sweep stops after two failing steps in a row. */
const RATES: Record<Model, number[]> = {
  "ppocr-cls": [40, 80, 120, 160, 200, 240, 280, 320, 360, 400, 480, 560, 640, 800, 1000],
  "silero-vad": [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500, 2000],
};
/** Repetitions of each load step (their spread is reported). */
const REPEATS = 3;
/** Each repetition sends this many seconds of requests (at most STEP_MAX_REQUESTS: 1.5 s at 2000/s). */
const STEP_S = 3;
const STEP_MAX_REQUESTS = 3_000;
/**
 * Arrivals go on this long after each repetition's measured ones, unmeasured (openLoop tailMs): a
 * step's last requests then find the company they would mid-stream, where before the last partial
 * batch of a step waited out a long planned window alone (at 200/s, 8 of 600 requests waiting
 * 360 ms failed the step's p99) - an end of the benchmark, not of the traffic it stands for.
 */
const STEP_TAIL_MS = 500;
const LIGHT_LOAD_REQUESTS = 120;
const LIGHT_LOAD_GAP_MS = 100;
const WARM_UP_REQUESTS = 200;
/** Rate at which CPU per request is accounted (well below saturation), and for how many requests. */
const CPU_RATE: Record<Model, number> = { "ppocr-cls": 40, "silero-vad": 100 };
const CPU_REQUESTS = 600;
/** The no-op Worker's Durable Object RPC probes (src/edge/noop-worker.ts): an empty call, the tensor as nested objects, the body as one ArrayBuffer. */
const RPC_PROBES = ["empty", "tensor", "buffer"] as const;
/** Share of min(kernel limit, platform ceiling) the planned policy should reach (the issue's target). */
const TARGET_SHARE = 0.8;

/** One-row requests in the binary tensor extension (JSON would cost the cls request ~6 ms to parse). */
const bodies: Record<Model, ReturnType<typeof binaryBody>> = {
  "ppocr-cls": binaryBody("x", [1, 3, 48, 192], 11),
  "silero-vad": binaryBody("input", [1, 512], 12),
};

const manifestOf = (name: string): ModelManifest => readManifest(join(ROOT, "models"), name);
const profileOf = (name: string): unknown => JSON.parse(readFileSync(join(ROOT, "models", name, "profile.json"), "utf8"));

/** A Worker to start: this checkout's edge with vars, a bench worker, or another checkout's edge. */
interface Target {
  label: string;
  vars?: Record<string, string>;
  script?: string;
  root?: string;
}

interface StepReport {
  ratePerS: number;
  /** The plan applied for this step (planned policy). */
  plan?: string;
  /** Per repetition. */
  p50Ms: number[];
  p99Ms: number[];
  failed: number[];
  meanBatch: number[];
  meets: boolean[];
  /** Most repetitions met the SLO. */
  passes: boolean;
}

interface Sweep {
  steps: StepReport[];
  /** Highest passing rate (majority of repetitions), and per repetition. */
  bestPerS: number;
  bestPerRepeatPerS: number[];
}

let nextPort = 8791;

/** Where the Workers run: under wrangler dev (npm start's), or their deploy bundles on plain workerd (the runtime Cloudflare runs, without the dev proxy). */
let platform: Platform = "wrangler-dev";

/**
 * Starts `target` on the run's platform. Request log lines are off, as `npm start` has them: under
 * wrangler dev each line crosses the inspector to wrangler's Node process (~3 ms of its CPU and ~1 ms
 * of the dev proxy's per request, on the same two cores), which the no-op Worker would not pay.
 */
async function withEdge<T>(target: Target, run: (edge: Started) => Promise<T>): Promise<T> {
  const edge = await edgeStarterOn(platform)({ port: nextPort++, ...(target.script && { script: target.script }), ...(target.root && { root: target.root }), vars: { CONTROL_MODE: "static", LOG_REQUESTS: "false", ...target.vars } });
  try {
    return await run(edge);
  } finally {
    await edge.stop(2_000);
  }
}

const inferUrl = (edge: Started, model: Model, query = "") => `${edge.url}/v2/models/${model}/infer${query}`;

/** Warms a fresh Worker: V8 runs WebAssembly from its baseline tier until the hot kernels tier up. */
async function warmUp(edge: Started, model: Model): Promise<void> {
  for (let i = 0; i < WARM_UP_REQUESTS; i++) await (await fetch(inferUrl(edge, model), { method: "POST", ...bodies[model] })).arrayBuffer();
}

function meetsSlo(result: LoadResult, sloMs: number): boolean {
  return quantile(result.latenciesMs, 0.99) <= sloMs && result.sent - result.ok <= result.sent * 0.01;
}

/**
 * Sweeps rising rates, REPEATS repetitions per step; stops after two failing steps in a row.
 * `prepare` (the planned policy) sets up each step and says what it applied.
 */
async function sweep(edge: Started, model: Model, sloMs: number, label: string, prepare?: (ratePerS: number) => Promise<string>): Promise<Sweep> {
  await warmUp(edge, model);
  const steps: StepReport[] = [];
  let misses = 0;
  const progress = startProgress(`${label} ${model}`, RATES[model].length * REPEATS);
  try {
    for (const ratePerS of RATES[model]) {
      const plan = await prepare?.(ratePerS);
      const step: StepReport = { ratePerS, ...(plan && { plan }), p50Ms: [], p99Ms: [], failed: [], meanBatch: [], meets: [], passes: false };
      for (let r = 0; r < REPEATS; r++) {
        progress.step(`${ratePerS}/s, repetition ${r + 1}`);
        const count = Math.min(STEP_MAX_REQUESTS, Math.round(ratePerS * STEP_S));
        const result = await openLoop({ url: inferUrl(edge, model), ...bodies[model], ratePerS, count, tailMs: STEP_TAIL_MS, maxDurationMs: STEP_S * 1000 + 10_000, seed: 7 + r });
        step.p50Ms.push(round(median(result.latenciesMs)));
        step.p99Ms.push(round(quantile(result.latenciesMs, 0.99)));
        step.failed.push(result.sent - result.ok);
        step.meanBatch.push(round(result.batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, result.batchSizes.length)));
        step.meets.push(meetsSlo(result, sloMs));
        await new Promise((done) => setTimeout(done, 300));
        progress.tick();
      }
      step.passes = step.meets.filter(Boolean).length * 2 > REPEATS;
      steps.push(step);
      console.log(`  ${label} ${model} ${ratePerS}/s${plan ? ` (${plan})` : ""}: p99 ${step.p99Ms.join(" / ")} ms, batch ${step.meanBatch.join(" / ")}${step.passes ? "" : " (misses SLO)"}`);
      misses = step.passes ? 0 : misses + 1;
      if (misses >= 2) break;
    }
  } finally {
    progress.stop();
  }
  const best = (passes: (s: StepReport) => boolean) => Math.max(0, ...steps.filter(passes).map((s) => s.ratePerS));
  return { steps, bestPerS: best((s) => s.passes), bestPerRepeatPerS: Array.from({ length: REPEATS }, (_, r) => best((s) => s.meets[r]!)) };
}

/** Light load, interleaved with the no-op Worker (same body): p50 of each, and the server's own timing. */
async function lightLoad(edge: Started, noop: Started, kernel: Started, model: Model): Promise<{ p50Ms: number; noopP50Ms: number; kernelP50Ms: number; serverTotalP50Ms: number; serverInferP50Ms: number }> {
  const ms: number[] = [];
  const noopMs: number[] = [];
  const kernelMs: number[] = [];
  const total: number[] = [];
  const infer: number[] = [];
  const timed = async (target: Started, into: number[]) => {
    await new Promise((done) => setTimeout(done, LIGHT_LOAD_GAP_MS));
    const t = performance.now();
    const response = await fetch(inferUrl(target, model), { method: "POST", ...bodies[model] });
    await response.arrayBuffer();
    into.push(performance.now() - t);
    return response;
  };
  for (let i = 0; i < LIGHT_LOAD_REQUESTS; i++) {
    // The three take turns, the order rotating so that none always follows the same one.
    const turns: Array<() => Promise<unknown>> = [
      () => timed(noop, noopMs),
      () => timed(kernel, kernelMs),
      async () => {
        const timing = (await timed(edge, ms)).headers.get("server-timing") ?? "";
        total.push(Number(/total;dur=([\d.]+)/.exec(timing)?.[1]));
        infer.push(Number(/infer;dur=([\d.]+)/.exec(timing)?.[1]));
      },
    ];
    for (let k = 0; k < turns.length; k++) await turns[(i + k) % turns.length]!();
  }
  return { p50Ms: round(median(ms)), noopP50Ms: round(median(noopMs)), kernelP50Ms: round(median(kernelMs)), serverTotalP50Ms: round(median(total)), serverInferP50Ms: round(median(infer)) };
}

/** CPU ms per request in each process of the stack at CPU_RATE, net of each process's idle CPU; and the batch time per request the Worker reported. */
async function cpuPerRequest(edge: Started, model: Model, query = ""): Promise<{ byProcess: Record<string, number>; inferPerRequestMs: number }> {
  await warmUp(edge, model);
  const processes = processTree(edge.process.pid!).filter((p) => /workerd|wrangler/.test(p.command));
  const labelOf = (command: string) => (command.includes("workerd") ? (isDevProxy(command, new URL(edge.url).port) ? "dev proxy (workerd)" : "runtime (workerd)") : "wrangler (Node)");
  const idleStart = processes.map((p) => cpuMs(p.pid));
  const idleAt = performance.now();
  await new Promise((done) => setTimeout(done, 3_000));
  const idlePerMs = processes.map((p, i) => (cpuMs(p.pid) - idleStart[i]!) / (performance.now() - idleAt));
  const before = processes.map((p) => cpuMs(p.pid));
  const self = process.cpuUsage();
  const startAt = performance.now();
  const result = await openLoop({ url: inferUrl(edge, model, query), ...bodies[model], ratePerS: CPU_RATE[model], count: CPU_REQUESTS, maxDurationMs: 60_000, seed: 3 });
  const elapsedMs = performance.now() - startAt;
  const usage = process.cpuUsage(self);
  const byProcess: Record<string, number> = { "load generator (Node)": round((usage.user + usage.system) / 1000 / result.ok) };
  processes.forEach((p, i) => {
    const label = labelOf(p.command);
    byProcess[label] = round((byProcess[label] ?? 0) + Math.max(0, cpuMs(p.pid) - before[i]! - idlePerMs[i]! * elapsedMs) / result.ok);
  });
  const inferMs = result.serverTimingMs.infer ?? [];
  const inferPerRequestMs = inferMs.reduce((sum, ms, i) => sum + ms / (result.batchSizes[i] ?? 1), 0) / Math.max(1, result.ok);
  return { byProcess, inferPerRequestMs: round(inferPerRequestMs) };
}

async function rawTimes(raw: Started, model: string, batch: number, iters: number, repeat: number): Promise<number[]> {
  const response = await fetch(`${raw.url}/raw?model=${model}&batch=${batch}&iters=${iters}&repeat=${repeat}`);
  return ((await response.json()) as { ms: number[] }).ms;
}

/** Window error of an idle buffer: silero-vad with a 5 ms window and no adaptive release, at 20 requests/s. */
async function windowPrecision(): Promise<{ windowMs: number; ratePerS: number; samples: number; p50: number; p99: number; max: number }> {
  const windowMs = 5;
  return withEdge({ label: "window", vars: { MODEL_OVERRIDES: JSON.stringify({ "silero-vad": { batching: { windowMs, adaptiveWindow: false } } }) } }, async (edge) => {
    await openLoop({ url: inferUrl(edge, "silero-vad"), ...bodies["silero-vad"], ratePerS: 20, count: 300, maxDurationMs: 30_000, seed: 5 });
    const stats = (await (await fetch(`${edge.url}/v2/models/silero-vad/stats`)).json()) as { model_stats: Array<{ shards: Array<{ windowErrorMs: number[] }> }> };
    const errors = stats.model_stats[0]!.shards.flatMap((s) => s.windowErrorMs);
    return { windowMs, ratePerS: 20, samples: errors.length, p50: round(median(errors)), p99: round(quantile(errors, 0.99)), max: round(Math.max(...errors)) };
  });
}

/** Each model's edge paths' overheads, measured on the stack under test before its planned policy runs. */
const measuredPaths: Partial<Record<Model, EdgePathOverheads>> = {};

/**
 * The planner's plan for `model` at `ratePerS` (Poisson) from its profile's kernel lines and the
 * overheads measured on this stack, on one machine (one shard, no origin); where it has none (the rate is beyond what its profile says one server
 * takes), its plan at the highest rate it can plan, in 5 % steps down.
 */
function plannedAt(model: Model, ratePerS: number): NonNullable<ReturnType<typeof cheapestPlan>> {
  for (let rate = ratePerS; rate > 0.1; rate *= 0.95) {
    const choice = planAt(model, rate);
    if (choice) return choice;
  }
  throw new Error(`the planner has no plan for ${model}`);
}

function planAt(model: Model, ratePerS: number) {
  const manifest = manifestOf(model);
  const profile = profileOf(model) as { runtimes: { edge: object } };
  const paths = measuredPaths[model];
  const choice = cheapestPlan(toMarkovianArrival({ kind: "poisson", ratePerS }), {
    manifest,
    service: { edge: profileServiceLine(profile, "edge"), origin: profileServiceLine(profile, "origin") },
    ...profileOverhead(paths ? { ...profile, runtimes: { ...profile.runtimes, edge: { ...profile.runtimes.edge, ...paths } } } : profile),
    originNetworkMs: 1,
    hasOrigin: false,
    pins: {},
    limits: { maxShards: 1, maxPoolSize: 1 },
  });
  return choice;
}

/** What the report keeps of one path's measured overheads. */
const pathSummary = (o: RequestOverhead) => ({ latencyMs: round(o.latencyMs), cpuMs: round(o.cpuMs), batchCpuMs: round(o.batchCpuMs), cpuRatePerS: o.cpuRatePerS });

/** The operator token the planned policy pins plans with (a var of its Worker only). */
const BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789";

/**
 * Pins the planner's plan for `ratePerS` on `edge` (static mode: pins are the plan), waits until
 * the Worker serves with it (readiness learns the plan and warms a direct session), and describes it.
 */
async function applyPlan(edge: Started, model: Model, ratePerS: number): Promise<string> {
  const { placement, maxBatch, windowMs, shards } = plannedAt(model, ratePerS).plan;
  const response = await fetch(`${edge.url}/v2/models/${model}/plan/pins`, { method: "PUT", headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ placement, maxBatch, windowMs, shards }) });
  if (!response.ok) throw new Error(`pinning the plan: ${response.status} ${await response.text()}`);
  // Plans are cached per isolate for up to a second; readiness refreshes the plan and warms a direct session.
  await new Promise((done) => setTimeout(done, 1_100));
  await (await fetch(`${edge.url}/v2/models/${model}/ready`)).arrayBuffer();
  for (let i = 0; i < 20; i++) await (await fetch(inferUrl(edge, model), { method: "POST", ...bodies[model] })).arrayBuffer();
  return `${placement}, maxBatch ${maxBatch}, window ${windowMs} ms`;
}

/** A git worktree of `rev` that can run its edge Worker (this checkout's node_modules, model weights and dev secrets). */
function baselineTree(rev: string): { root: string; commit: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), "edge-baseline-"));
  const commit = execFileSync("git", ["rev-parse", "--short", rev], { cwd: ROOT }).toString().trim();
  execFileSync("git", ["worktree", "add", "--detach", root, rev], { cwd: ROOT, stdio: "ignore" });
  symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
  for (const model of readdirSync(join(ROOT, "models"))) {
    const weights = join(ROOT, "models", model, "model.onnx");
    if (existsSync(weights) && existsSync(join(root, "models", model))) copyFileSync(weights, join(root, "models", model, "model.onnx"));
  }
  if (existsSync(join(ROOT, ".dev.vars"))) copyFileSync(join(ROOT, ".dev.vars"), join(root, ".dev.vars"));
  return { root, commit, remove: () => execFileSync("git", ["worktree", "remove", "--force", root], { cwd: ROOT, stdio: "ignore" }) };
}

/** Runs the edge benchmark and writes its report; options from `npm run bench -- edge` (bench/index.ts). */
export async function main(options: { baseline?: string; quick?: boolean; platform?: Platform } = {}): Promise<void> {
  platform = options.platform ?? "wrangler-dev";
  if (options.quick) for (const model of MODELS) RATES[model] = RATES[model].filter((_, i) => i % 2 === 1);
  const baseline = options.baseline ? baselineTree(options.baseline) : undefined;
  try {
    const limits: Record<string, { maxBatch: number; rawB1Ms: number; rawMaxBatchMs: number; kernelLimitPerS: number }> = {};
    await withEdge({ label: "raw", script: "src/edge/profile-worker.ts" }, async (raw) => {
      for (const model of MODELS) {
        const { maxBatch } = manifestOf(model).batching;
        const rawB1Ms = median(await rawTimes(raw, model, 1, 15, 10));
        const rawMaxBatchMs = median(await rawTimes(raw, model, maxBatch, 15, 2));
        limits[model] = { maxBatch, rawB1Ms: round(rawB1Ms), rawMaxBatchMs: round(rawMaxBatchMs), kernelLimitPerS: round((maxBatch / rawMaxBatchMs) * 1000, 1) };
        console.log(`raw ${model}: b1 ${rawB1Ms.toFixed(2)} ms, b${maxBatch} ${rawMaxBatchMs.toFixed(2)} ms → kernel limit ${limits[model]!.kernelLimitPerS}/s`);
      }
    });
    const report: Record<string, unknown> = {
      date: new Date().toISOString(),
      platform,
      machine: `2 shared cores; ${platform === "workerd" ? "each Worker's deploy bundle on plain workerd (no dev proxy)" : "wrangler dev (workerd)"} on 127.0.0.1; Node fetch client; one-row requests in the OIP binary tensor extension`,
      repeats: REPEATS,
      stepS: STEP_S,
      ...(baseline && { baseline: baseline.commit }),
      limits,
      models: {},
    };
    const noop: Target = { label: "no-op", script: "src/edge/noop-worker.ts" };
    const kernelWorker: Target = { label: "platform + kernel", script: "src/edge/profile-worker.ts" };
    for (const model of MODELS) {
      const { slo } = manifestOf(model);
      console.log(`${model}: platform ceiling (no-op Worker, same bodies)`);
      const ceiling = await withEdge(noop, (edge) => sweep(edge, model, slo.ms, "no-op"));
      const referencePerS = Math.min(limits[model]!.kernelLimitPerS, ceiling.bestPerS);
      // The best any runtime could do here: the platform plus the batch-1 kernel on the same thread, none of the runtime.
      console.log(`${model}: platform + kernel (profile Worker: the body read, one batch-1 run, a small answer)`);
      const kernelCeiling = await withEdge(kernelWorker, async (edge) => {
        await rawTimes(edge, model, 1, 1, 1); // warms the batch-1 session
        return sweep(edge, model, slo.ms, "platform + kernel");
      });
      // The paths' own costs on this stack (they differ between wrangler dev and plain workerd), then
      // the planner's own plan at the rate the target asks for (the planned policy re-plans at every step).
      console.log(`${model}: overheads of the buffered and direct paths on this stack`);
      const paths = await measureEdgePaths((options) => edgeStarterOn(platform)(options), nextPort++, model, bodies[model]);
      measuredPaths[model] = paths;
      const planned = plannedAt(model, TARGET_SHARE * referencePerS);
      const { placement, maxBatch, windowMs } = planned.plan;
      console.log(`${model}: planner at ${round(planned.predicted.ratePerS, 1)}/s (target ${round(TARGET_SHARE * referencePerS, 1)}/s): ${placement}, maxBatch ${maxBatch}, window ${windowMs} ms (predicted p99 ${round(planned.predicted.sloLatencyMs ?? NaN)} ms)`);
      const policies: Record<string, Target> = {
        planned: { label: "planned (the planner's plan for each rate)", vars: { ADMIN_TOKEN: BENCH_ADMIN_TOKEN } },
        buffered: { label: "buffered, batching", vars: { MODEL_OVERRIDES: JSON.stringify({ [model]: { placement: "edge" } }) } },
        unbatched: { label: "buffered, maxBatch 1", vars: { MODEL_OVERRIDES: JSON.stringify({ [model]: { placement: "edge", batching: { maxBatch: 1, maxRowsPerRequest: 1 } } }) } },
      };
      const results: Record<string, { sweep: Sweep; light?: Awaited<ReturnType<typeof lightLoad>>; cpu?: Awaited<ReturnType<typeof cpuPerRequest>> }> = {};
      await withEdge(noop, (noopEdge) => withEdge(kernelWorker, async (kernelEdge) => {
        await rawTimes(kernelEdge, model, 1, 1, 1); // warms the batch-1 session
        for (const [name, target] of Object.entries(policies)) {
          console.log(`${model}: ${target.label}`);
          results[name] = await withEdge(target, async (edge) => {
            await warmUp(edge, model);
            // The planned policy: light load and CPU under the plan for their rates, then the plan for each step's rate.
            if (name === "planned") await applyPlan(edge, model, 2);
            const light = name === "unbatched" ? undefined : await lightLoad(edge, noopEdge, kernelEdge, model);
            if (name === "planned") await applyPlan(edge, model, CPU_RATE[model]);
            const cpu = name === "unbatched" ? undefined : await cpuPerRequest(edge, model);
            return { sweep: await sweep(edge, model, slo.ms, name, name === "planned" ? (rate) => applyPlan(edge, model, rate) : undefined), ...(light && { light }), ...(cpu && { cpu }) };
          });
        }
      }));
      console.log(`${model}: CPU per request, no-op Worker${baseline ? ` and baseline ${baseline.commit}` : ""}`);
      // The hop alone: the no-op Worker plus one Durable Object RPC per request, by payload form.
      const [noopCpu, ...rpcCpu] = await withEdge(noop, async (edge) => {
        const results = [await cpuPerRequest(edge, model)];
        if (model === "ppocr-cls") for (const rpc of RPC_PROBES) results.push(await cpuPerRequest(edge, model, `?rpc=${rpc}`));
        return results;
      });
      const baselineCpu = baseline ? await withEdge({ label: "baseline", root: baseline.root, vars: { MODEL_OVERRIDES: JSON.stringify({ [model]: { placement: "edge" } }) } }, (edge) => cpuPerRequest(edge, model)) : undefined;
      const raw = limits[model]!;
      (report.models as Record<string, unknown>)[model] = {
        slo,
        ceiling,
        referencePerS,
        kernelCeiling,
        planned: planned.plan,
        plannedPrediction: planned.predicted,
        paths: { buffered: pathSummary(paths.requestOverhead), direct: pathSummary(paths.directOverhead) },
        policies: Object.fromEntries(
          Object.entries(results).map(([name, r]) => [
            name,
            {
              label: policies[name]!.label,
              ...r,
              shareOfReference: round(r.sweep.bestPerS / referencePerS),
              shareOfKernelCeiling: round(r.sweep.bestPerS / kernelCeiling.bestPerS),
              ...(r.light && { lightOverheadMs: round(r.light.p50Ms - r.light.noopP50Ms - raw.rawB1Ms), lightBeyondKernelMs: round(r.light.p50Ms - r.light.kernelP50Ms) }),
            },
          ]),
        ),
        cpu: { noop: noopCpu, ...(rpcCpu.length && { rpc: Object.fromEntries(RPC_PROBES.map((rpc, i) => [rpc, rpcCpu[i]!])) }), ...(baselineCpu && { baseline: baselineCpu }) },
      };
    }
    console.log("window precision (idle buffer)");
    report.windowErrorMs = await windowPrecision();
    writeReport(report);
  } finally {
    baseline?.remove();
  }
}

/** The runtime's CPU per request beyond the no-op Worker's and the batch time (the path's own cost). */
const pathCpuMs = (cpu: { byProcess: Record<string, number>; inferPerRequestMs: number }, noop: { byProcess: Record<string, number> }) =>
  round(cpu.byProcess["runtime (workerd)"]! - noop.byProcess["runtime (workerd)"]! - cpu.inferPerRequestMs);

/** Whether a sweep passed its last step (the highest rate tried): its best rate is then a lower bound. */
const passesTop = (sweep: Sweep) => sweep.steps.at(-1)?.passes === true;

/** Colours of the figure's series: the no-op ceiling and platform + kernel, then each policy. */
const CEILING_COLORS = ["#999999", "#333333"];
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/** Median of a step's repetitions (NaN when none has a value). */
const medianOf = (xs: Array<number | null>) => {
  const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)]! : NaN;
};

/** The report's figure: per model, p99 latency against the offered rate for each policy and the no-op ceiling (the SLO drawn), and the mean batch size. */
export function edgeFigure(report: Record<string, any>): string {
  const models = Object.entries(report.models as Record<string, any>);
  const ceilings = (m: any): Array<[string, Sweep]> => [["no-op (platform ceiling)", m.ceiling], ...(m.kernelCeiling ? [["platform + kernel", m.kernelCeiling] as [string, Sweep]] : [])];
  const policies = (m: any): Array<[string, Sweep]> => Object.values(m.policies as Record<string, any>).map((p): [string, Sweep] => [p.label, p.sweep]);
  const maxRate = Math.max(...models.flatMap(([, m]) => [...ceilings(m), ...policies(m)].flatMap(([, s]) => s.steps.map((step) => step.ratePerS))));
  const p99Series = (name: string, sweep: Sweep, color: string) => ({ name, color, shape: "points" as const, points: sweep.steps.map((s): [number, number] => [s.ratePerS, medianOf(s.p99Ms)]) });
  return renderFigure({
    title: `Edge: p99 latency and mean batch size against the offered rate (median of ${report.repeats} repetitions per step)`,
    xLabel: "offered rate (requests/s)",
    xMaxS: maxRate,
    panels: models.flatMap(([model, m]) => [
      {
        yLabel: `${model} p99 (ms)`,
        yMax: 3 * m.slo.ms,
        hLines: [{ y: m.slo.ms, label: `SLO ${m.slo.ms} ms`, color: "#d62728" }],
        series: [...ceilings(m).map(([name, sweep], i) => p99Series(name, sweep, CEILING_COLORS[i]!)), ...policies(m).map(([name, sweep], i) => p99Series(name, sweep, COLORS[i % COLORS.length]!))],
      },
      {
        yLabel: `${model} mean batch`,
        series: policies(m).map(([name, sweep], i) => ({ name, color: COLORS[i % COLORS.length]!, shape: "points" as const, points: sweep.steps.map((s): [number, number] => [s.ratePerS, medianOf(s.meanBatch)]) })),
      },
    ]),
  });
}

/** Writes edge.json, edge.md and the figure edge.svg (edge-workerd.* for a run on plain workerd) from a report (also `npx tsx -e` on a saved report to re-render). */
export function writeReport(report: Record<string, any>): void {
  const dir = resolve(ROOT, "bench", "reports");
  const file = reportNameOn("edge", report.platform);
  writeFileSync(resolve(dir, `${file}.json`), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(resolve(dir, `${file}.svg`), edgeFigure(report));
  const lines = [`# Edge benchmark (${report.date})`, "", `Machine: ${report.machine}. Each load step is repeated ${report.repeats} times (${report.stepS} s each, and ${STEP_TAIL_MS} ms more of arrivals not measured, so the last measured requests find company as mid-stream); a rate passes when most repetitions meet the SLO (p99 within it, at most 1 % failed). The controller is static, so each policy stays what it is named; request log lines are off (LOG_REQUESTS=false, as \`npm start\` has them).`, ""];
  lines.push(`![p99 latency and mean batch size against the offered rate, per policy](${file}.svg)`, "");
  lines.push("| model | raw b1 ms | raw max-batch ms | kernel limit /s |", "|---|---|---|---|");
  for (const [model, l] of Object.entries(report.limits as Record<string, any>)) lines.push(`| ${model} | ${l.rawB1Ms} | ${l.rawMaxBatchMs} (b${l.maxBatch}) | ${l.kernelLimitPerS} |`);
  for (const [model, m] of Object.entries(report.models as Record<string, any>)) {
    const raw = report.limits[model];
    lines.push("", `## ${model} (SLO p${m.slo.percentile * 100} ≤ ${m.slo.ms} ms)`, "");
    lines.push(`Platform ceiling (no-op Worker, same bodies, same stack): ${m.ceiling.bestPerS}/s (per repetition ${m.ceiling.bestPerRepeatPerS.join(", ")})${passesTop(m.ceiling) ? ", the highest step tried: the ceiling is at least that" : ""}. Reference = min(kernel limit ${raw.kernelLimitPerS}/s, ceiling) = ${m.referencePerS}/s.`, "");
    if (m.kernelCeiling) {
      lines.push(
        `Platform + kernel (the profile Worker: reads the body as the no-op does, runs the model once at batch 1 on inputs made once, answers a small JSON; none of the runtime): ${m.kernelCeiling.bestPerS}/s (per repetition ${m.kernelCeiling.bestPerRepeatPerS.join(", ")}${passesTop(m.kernelCeiling) ? "; the highest step tried" : ""}) = ${Math.round((m.kernelCeiling.bestPerS / m.referencePerS) * 100)} % of the reference. workerd runs a Worker's requests, its Durable Objects and its kernels on one thread, so the kernel's time adds to the platform's own per request: this is the most any runtime that runs each request at batch 1 here could reach. One thread's bound, 1 / (1 / kernel limit at batch 1 + 1 / ceiling) = ${round(1 / (1 / (1000 / raw.rawB1Ms) + 1 / m.ceiling.bestPerS), 1)}/s.`,
        "",
      );
    }
    const plannedAtPerS = Math.round(m.plannedPrediction.ratePerS);
    const targetPerS = Math.round(TARGET_SHARE * m.referencePerS);
    const { buffered, direct } = m.paths;
    lines.push(`The paths' own costs on this stack (measured first, as \`npm run profile\` does): CPU of the runtime beyond the kernel ${buffered.cpuMs} ms per request + ${buffered.batchCpuMs} ms per batch buffered (read at ${buffered.cpuRatePerS}/s), ${direct.cpuMs} ms per request direct (at ${direct.cpuRatePerS}/s); light-load latency outside the batch ${buffered.latencyMs} ms buffered, ${direct.latencyMs} ms direct. The planner serves a batch of k rows in s(k) + per-batch CPU + k × per-request CPU on the thread that runs it.`, "");
    lines.push(`The planner's plan at ${plannedAtPerS}/s${plannedAtPerS < targetPerS ? ` (the highest rate it plans for; the target, ${targetPerS}/s, is beyond what the profile's kernel and these costs say one thread takes)` : ""}: **${m.planned.placement}**, maxBatch ${m.planned.maxBatch}, window ${m.planned.windowMs} ms (predicted p${m.slo.percentile * 100} ${round(m.plannedPrediction.sloLatencyMs ?? NaN)} ms).`, "");
    lines.push("| policy | highest rate at SLO /s | per repetition | share of reference | share of platform + kernel | light-load p50 ms | no-op p50 ms | overhead ms | platform + kernel p50 ms | beyond platform + kernel ms |", "|---|---|---|---|---|---|---|---|---|---|");
    for (const p of Object.values(m.policies as Record<string, any>)) {
      lines.push(`| ${p.label} | ${p.sweep.bestPerS}${passesTop(p.sweep) ? " (the highest step tried)" : ""} | ${p.sweep.bestPerRepeatPerS.join(", ")} | ${Math.round(p.shareOfReference * 100)} % | ${p.shareOfKernelCeiling === undefined ? "–" : `${Math.round(p.shareOfKernelCeiling * 100)} %`} | ${p.light?.p50Ms ?? "–"} | ${p.light?.noopP50Ms ?? "–"} | ${p.lightOverheadMs ?? "–"} | ${p.light?.kernelP50Ms ?? "–"} | ${p.lightBeyondKernelMs ?? "–"} |`);
    }
    lines.push("", `Light-load overhead = p50 − no-op p50 − raw b1 (${raw.rawB1Ms} ms, back-to-back runs). Beyond platform + kernel = p50 − the profile Worker's p50 (its one batch-1 run at light load, as a request meets it): the runtime's own. ${LIGHT_LOAD_REQUESTS} requests to each of the three, taking turns, one in flight, ${LIGHT_LOAD_GAP_MS} ms apart.`, "");
    const cpuRows: Array<[string, any]> = [
      ["no-op Worker", m.cpu.noop],
      ...Object.entries((m.cpu.rpc ?? {}) as Record<string, any>).map(([rpc, cpu]): [string, any] => [`no-op Worker + one DO RPC (${rpc === "empty" ? "empty" : rpc === "tensor" ? "tensor as nested objects" : "body as one ArrayBuffer"})`, cpu]),
      ...Object.values(m.policies as Record<string, any>).filter((p) => p.cpu).map((p): [string, any] => [p.label, p.cpu]),
    ];
    if (m.cpu.baseline) cpuRows.push([`buffered, batching, baseline ${report.baseline}`, m.cpu.baseline]);
    const processes = Object.keys(m.cpu.noop.byProcess);
    lines.push(`CPU per request at ${CPU_RATE[model as Model]}/s (ms; net of each process's idle CPU). Path = runtime − no-op runtime − batch time per request.`, "");
    lines.push(`| path | ${processes.join(" | ")} | batch time per request | path |`, `|---|${processes.map(() => "---|").join("")}---|---|`);
    for (const [label, cpu] of cpuRows) lines.push(`| ${label} | ${processes.map((p) => cpu.byProcess[p] ?? "–").join(" | ")} | ${cpu.inferPerRequestMs} | ${label === "no-op Worker" ? "–" : pathCpuMs(cpu, m.cpu.noop)} |`);
    for (const [name, sweepOf] of [["no-op (ceiling)", m.ceiling], ...(m.kernelCeiling ? [["platform + kernel", m.kernelCeiling]] : []), ...Object.values(m.policies as Record<string, any>).map((p) => [p.label, p.sweep])] as Array<[string, Sweep]>) {
      const hasPlans = sweepOf.steps.some((s) => s.plan);
      lines.push("", `${name}:`, "", `| rate /s |${hasPlans ? " plan |" : ""} p50 ms | p99 ms | failed | mean batch | SLO |`, `|---|${hasPlans ? "---|" : ""}---|---|---|---|---|`);
      for (const s of sweepOf.steps) lines.push(`| ${s.ratePerS} |${hasPlans ? ` ${s.plan} |` : ""} ${s.p50Ms.join(" / ")} | ${s.p99Ms.join(" / ")} | ${s.failed.join(" / ")} | ${s.meanBatch.map((b) => (typeof b === "number" && Number.isFinite(b) ? b : "–")).join(" / ")} | ${s.passes ? "met" : "missed"} (${s.meets.filter(Boolean).length}/${s.meets.length}) |`);
    }
  }
  const w = report.windowErrorMs;
  lines.push("", "## Batch window precision", "", `silero-vad, ${w.windowMs} ms window, adaptive release off, ${w.ratePerS} requests/s: release time minus configured window end over ${w.samples} timer releases: p50 ${w.p50} ms, p99 ${w.p99} ms, max ${w.max} ms (workerd's clock ticks in whole ms).`);
  writeFileSync(resolve(dir, `${file}.md`), lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
