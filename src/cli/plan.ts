/**
 * `npm run plan -- --problem FILE.json [--json] [--profile models/<name>/profile.json]`
 * `npm run plan -- --live URL --model NAME [--model NAME ...] [--json]`
 * `npm run plan -- --pipeline ppocr --rate IMAGES_PER_S [--sample N] [--seed N] [--json]`
 *
 * Reads a planning problem (format: src/planner/problem.ts), evaluates its `evaluate` list or
 * optimises, and prints a table (default) or JSON (`--json`). `--profile` fills the edge and origin
 * service times from a profile written by `npm run profile` where the problem does not give them.
 * `--live` prints what a running edge applies instead: each model's published plan, its predicted
 * and measured latency and cost, and the controller's recent decisions (GET /v2/models/{m}/plan).
 * `--pipeline` plans a pipeline of models with one end-to-end SLO (InferLine: src/planner/pipeline.ts)
 * at `--rate` images per second: per stage its placement, maxBatch, window, shards, replicas,
 * predicted stage p95 and utilisation, the pipeline's predicted latency at its SLO's percentile and
 * cost, the even-split baseline, and the MODEL_OVERRIDES that apply the plan. Its SLO comes from
 * models/<name>/pipeline.json, the image mix and CPU constants from PPOCR_PIPELINE_DEFAULTS.
 * Exit codes: 0 done; 1 no configuration meets the SLO (or the edge could not be read); 2 bad
 * arguments or a bad problem.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Plan, type Problem, parseProblem, solveProblem } from "../planner/index";
import { type PipelinePlan, type PipelineStage, PIPELINE_STAGES, planPipeline, ppocrStageModels, readPipelineSpec } from "../planner/pipeline";
import { type Command, cliProgram, httpUrl, integerIn, numberWhere, repeatable, USAGE_EXIT_CODE } from "./command";

class UsageError extends Error {}

/** The CLI (typed, so that TypeScript knows `program.error` does not return). */
const program: Command = cliProgram("plan", "Evaluates or optimises a planning problem (the cost/SLO planner), or shows the plans a running edge applies.")
  .usage("--problem FILE.json [--json] [--profile models/<name>/profile.json]\n       npm run plan -- --live URL --model NAME [--model NAME ...] [--json]\n       npm run plan -- --pipeline ppocr --rate IMAGES_PER_S [--sample N] [--seed N] [--json]")
  .option("--problem <file>", "the planning problem, JSON (format: src/planner/problem.ts, README \"Cost/SLO planner\"); required without --live")
  .option("--profile <file>", "a profile written by `npm run profile` (models/<name>/profile.json): its fitted service times fill the problem's edge and origin placements where the problem gives none (default: none)")
  .option("--live <url>", "show what a running edge applies instead: each model's plan, predicted and measured latency and cost, recent decisions (default: none)", httpUrl)
  .option("--model <name>", "a model to show with --live; repeat for several (required with --live)", repeatable)
  .option("--pipeline <name>", "plan a pipeline with one end-to-end SLO instead (InferLine): ppocr (default: none)")
  .option("--rate <images/s>", "images per second (Poisson) for --pipeline (required with --pipeline)", numberWhere("a number > 0", (n) => n > 0))
  .option("--sample <n>", "images simulated for --pipeline", integerIn(100, 1_000_000), 2000)
  .option("--seed <n>", "seed of the simulated images for --pipeline", integerIn(0, 2 ** 31 - 1), 1)
  .option("--json", "print JSON instead of a table", false)
  .addHelpText("after", "\nExit codes: 0 done; 1 no configuration meets the SLO (or the edge could not be read); 2 bad arguments or a bad problem.");

async function main(argv: string[]): Promise<number> {
  const args = program.parse(argv, { from: "user" }).opts<{ problem?: string; profile?: string; live?: string; model?: string[]; pipeline?: string; rate?: number; sample: number; seed: number; json: boolean }>();
  try {
    if (args.pipeline !== undefined) {
      if (args.pipeline !== "ppocr") program.error(`error: unknown pipeline "${args.pipeline}"; known: ppocr`);
      if (args.rate === undefined) program.error("error: --pipeline needs --rate IMAGES_PER_S");
      return await pipeline(args.pipeline, args.rate, args.sample, args.seed, args.json);
    }
    if (args.live !== undefined) {
      if (!args.model?.length) program.error("error: --live needs at least one --model NAME");
      return await live(args.live, args.model, args.json);
    }
    if (!args.problem) program.error("error: missing --problem FILE.json");
    const json = readJson(args.problem, "problem");
    if (args.profile) applyProfile(json, readJson(args.profile, "profile"));
    const parsed = parseProblem(json);
    if (!parsed.ok) throw new UsageError(`invalid problem ${args.problem}:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}`);
    return run(parsed.problem, args.json);
  } catch (error) {
    return fail(error);
  }
}

/** A bad problem or profile file: `error: ...` and exit code 2 (anything else is a bug, thrown on). */
function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}`);
    return USAGE_EXIT_CODE;
  }
  throw error;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${path} is not JSON: ${(error as Error).message}`);
  }
}

/** Copies the fitted linear models of a profile into the problem's placements (not overriding). */
function applyProfile(problem: unknown, profile: unknown): void {
  const runtimes = (profile as { runtimes?: Record<string, { fit?: { baseMs: number; perItemMs: number } }> }).runtimes;
  if (typeof problem !== "object" || problem === null || !runtimes) throw new UsageError("the profile has no `runtimes`");
  const p = problem as { placements?: Record<string, { serviceMs?: unknown }> };
  p.placements ??= {};
  for (const placement of ["edge", "origin"] as const) {
    const fit = runtimes[placement]?.fit;
    if (!fit) continue;
    p.placements[placement] ??= {};
    p.placements[placement].serviceMs ??= { kind: "linear", baseMs: fit.baseMs, perItemMs: fit.perItemMs };
  }
}

function run(problem: Problem, asJson: boolean): number {
  const solution = solveProblem(problem);
  if (solution.kind === "evaluations") {
    if (asJson) console.log(JSON.stringify({ evaluations: solution.evaluations }, null, 2));
    else {
      const q = problem.slo.percentile;
      console.log(`SLO: p${q * 100} <= ${problem.slo.ms} ms\n`);
      table(
        ["maxBatch", "windowMs", "p50 ms", "p95 ms", "p99 ms", `at SLO ms`, "meets SLO", "mean batch", "utilisation"],
        solution.details.map((e) => {
          const atSlo = e.distribution.percentile(q);
          return [e.maxBatch, e.windowMs, ms(e.latencyMs.p50), ms(e.latencyMs.p95), ms(e.latencyMs.p99), ms(atSlo), atSlo <= problem.slo.ms ? "yes" : "no", e.meanBatch.toFixed(2), e.utilisation.toFixed(3)];
        }),
      );
    }
    return 0;
  }
  const { plan, alternatives, reason, stats } = solution.result;
  if (asJson) console.log(JSON.stringify({ plan, alternatives, ...(reason ? { reason } : {}), stats }, null, 2));
  else {
    console.log(`SLO: p${problem.slo.percentile * 100} <= ${problem.slo.ms} ms; searched ${stats.configurations} configurations, ${stats.latencyChecks} full latency checks\n`);
    if (!plan) console.log(`no plan: ${reason}`);
    else {
      table(["", "placement", "shards", "pool", "maxBatch", "windowMs", "p50 ms", "p95 ms", "p99 ms", "mean batch", "util.", "USD/hour", "USD/M req"], [row("plan", plan), ...alternatives.map((a, i) => row(`alt ${i + 1}`, a))]);
      const c = plan.cost;
      console.log(`\ncost of the plan per hour: Worker requests ${usd(c.workerRequests)}, Worker CPU ${usd(c.workerCpu)}, DO requests ${usd(c.durableObjectRequests)}, DO duration ${usd(c.durableObjectDuration)}, origin instances ${usd(c.originInstances)}`);
      if (c.startupS > 0) console.log(`origin pool ready after ~${c.startupS} s (one-off ${usd(c.startupUsd)})`);
    }
  }
  return plan ? 0 : 1;
}

/** Plans the pipeline `name` at `ratePerS` images per second and prints the plan and the even-split baseline. */
async function pipeline(name: string, ratePerS: number, sampleSize: number, seed: number, asJson: boolean): Promise<number> {
  const file = resolve(import.meta.dirname, `../../models/${name}/pipeline.json`);
  const manifest = existsSync(file) ? readJson(file, "pipeline") : {};
  let spec;
  try {
    spec = readPipelineSpec(manifest);
  } catch (error) {
    throw new UsageError(`${file}: ${(error as Error).message}`);
  }
  const stageNames = (manifest as { stages?: Record<PipelineStage, string> }).stages;
  // The catalog (manifests and profiles) only for pipelines: --problem plans without it.
  const { CATALOG } = await import("../models/catalog");
  const models = ppocrStageModels(CATALOG, stageNames);
  const startedMs = performance.now();
  const result = planPipeline({ models, slo: spec.slo, cpu: spec.cpu, mix: spec.mix, ratePerS, sampleSize, seed });
  const planMs = performance.now() - startedMs;
  const q = spec.slo.percentile;
  const pLabel = `p${Math.round(q * 1000) / 10}`;
  if (asJson) {
    const brief = (p: PipelinePlan | null) =>
      p && {
        config: p.config,
        sloLatencyMs: p.sloLatencyMs,
        meetsSlo: p.meetsSlo,
        costUsdPerHour: p.costUsdPerHour,
        usdPerMillionImages: p.prediction.cost.usdPerMillionImages,
        poolSize: p.poolSize,
        latencyMs: p.prediction.latencyMs,
        stages: Object.fromEntries(PIPELINE_STAGES.map((s) => { const { cost, ...rest } = p.prediction.stages[s]; return [s, { ...rest, costUsdPerHour: cost.totalUsdPerHour }]; })),
        overrides: p.stages,
      };
    console.log(JSON.stringify({ pipeline: name, ratePerS, slo: spec.slo, cpu: spec.cpu, plan: brief(result.plan), ...(result.reason && { reason: result.reason }), baseline: { plan: brief(result.baseline.plan), ...(result.baseline.reason && { reason: result.baseline.reason }) }, stats: { ...result.stats, planMs: Math.round(planMs) } }, null, 2));
    return result.plan ? 0 : 1;
  }
  const meanLines = spec.mix.linesPerImage.reduce((s, x) => s + x.lines * x.weight, 0) / spec.mix.linesPerImage.reduce((s, x) => s + x.weight, 0);
  console.log(`pipeline ${name} at ${ratePerS} images/s: SLO ${pLabel} <= ${spec.slo.ms} ms; ${result.stats.images} simulated images (Poisson, seed ${seed}); ${meanLines.toFixed(1)} lines per image on average, det input ${pixels(spec.mix.detPixels)}; post-processing ${spec.cpu.cpuMs} ms + ${spec.cpu.cpuPerLineMs} ms per line`);
  console.log(`planned in ${Math.round(planMs)} ms: ${result.stats.evaluations} configurations simulated, ${result.stats.steps} greedy steps (from the ${result.stats.startedFrom} configuration)\n`);
  const show = (title: string, p: PipelinePlan | null, reason?: string) => {
    console.log(title);
    if (!p) {
      console.log(`  no plan: ${reason ?? "none"}\n`);
      return;
    }
    table(
      ["stage", "model", "placement", "maxBatch", "windowMs", "shards", "replicas", "rows/req", "stage p95 ms", "util.", "mean batch", "USD/hour"],
      PIPELINE_STAGES.map((s) => {
        const c = p.config[s];
        const st = p.prediction.stages[s];
        return [s, models[s].model, c.placement, c.maxBatch, c.windowMs, c.shards, c.placement === "origin" ? c.poolSize : "-", p.stages[models[s].model]!.batching.maxRowsPerRequest, ms(st.latencyMs.p95), st.utilisation.toFixed(3), st.meanBatchRows.toFixed(2), st.cost.totalUsdPerHour.toFixed(4)];
      }),
    );
    const c = p.prediction.cost;
    console.log(`pipeline: ${pLabel} ${ms(p.sloLatencyMs)} ms (${p.meetsSlo ? "meets" : "misses"} the SLO ${spec.slo.ms} ms; p50 ${ms(p.prediction.latencyMs.p50)}, p99 ${ms(p.prediction.latencyMs.p99)}); origin pool ${p.poolSize} replica${p.poolSize === 1 ? "" : "s"}; cost ${usd(p.costUsdPerHour)}/hour (${usd(c.usdPerMillionImages)} per million images, post-processing CPU ${usd(c.postProcessingCpuUsdPerHour)}/hour)\n`);
  };
  show("joint plan (InferLine):", result.plan, result.reason);
  show(`even-split baseline (each stage planned alone for ${pLabel} <= ${Math.round((spec.slo.ms / PIPELINE_STAGES.length) * 10) / 10} ms):`, result.baseline.plan, result.baseline.reason);
  if (result.plan) console.log(`MODEL_OVERRIDES=${JSON.stringify(result.plan.stages)}`);
  return result.plan ? 0 : 1;
}

/** "640 x 640" for a square's pixels, else the count. */
function pixels(n: number): string {
  const side = Math.round(Math.sqrt(n));
  return side * side === n ? `${side} x ${side}` : `${n} pixels`;
}

function row(label: string, p: Plan): (string | number)[] {
  return [label, p.placement, p.shards, p.placement === "origin" ? p.poolSize : "-", p.maxBatch, p.windowMs, ms(p.latencyMs.p50), ms(p.latencyMs.p95), ms(p.latencyMs.p99), p.meanBatch.toFixed(2), p.utilisation.toFixed(3), p.cost.totalUsdPerHour.toFixed(4), p.cost.usdPerMillionRequests.toFixed(3)];
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "inf");
const usd = (x: number): string => `$${x.toFixed(4)}`;

function table(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const r of cells) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
}

/** One model's live plan view as the edge serves it (src/control/controller.ts PlanView). */
interface LiveView {
  model: string;
  mode: string;
  version: number;
  plan: { placement: string; maxBatch: number; windowMs: number; shards: number; poolSize: number };
  pins: Record<string, unknown>;
  predicted: { p95Ms: number | null; costPerHourUsd: number | null; ratePerS: number };
  measured: { ratePerS: number; p95Ms: number | null; refusedPerS: number };
  decisions: Array<{ atMs: number; version: number; reason: string; after: LiveView["plan"] }>;
}

async function live(url: string, models: string[], asJson: boolean): Promise<number> {
  const base = url.replace(/\/+$/, "");
  const views: LiveView[] = [];
  for (const model of models) {
    let response: Response;
    try {
      response = await fetch(`${base}/v2/models/${encodeURIComponent(model)}/plan`, { signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      console.error(`error: cannot reach ${base}: ${(error as Error).message}`);
      return 1;
    }
    const body = (await response.json().catch(() => ({}))) as LiveView & { error?: string };
    if (!response.ok) {
      console.error(`error: ${model}: ${response.status} ${body.error ?? ""}`.trim());
      return 1;
    }
    views.push(body);
  }
  if (asJson) {
    console.log(JSON.stringify(views, null, 2));
    return 0;
  }
  const num = (x: number | null, digits = 1): string => (x === null ? "-" : x.toFixed(digits));
  table(
    ["model", "mode", "version", "placement", "shards", "pool", "maxBatch", "windowMs", "rate/s", "p95 ms (pred.)", "p95 ms (meas.)", "USD/hour", "pins"],
    views.map((v) => [v.model, v.mode, v.version, v.plan.placement, v.plan.shards, v.plan.placement === "origin" ? v.plan.poolSize : "-", v.plan.maxBatch, v.plan.windowMs, num(v.measured.ratePerS), num(v.predicted.p95Ms), num(v.measured.p95Ms), num(v.predicted.costPerHourUsd, 4), Object.keys(v.pins).join(",") || "-"]),
  );
  for (const v of views) {
    if (!v.decisions.length) continue;
    console.log(`\n${v.model}: recent decisions`);
    for (const d of v.decisions.slice(0, 10)) console.log(`  v${d.version} ${new Date(d.atMs).toISOString()}  ${d.reason}`);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
