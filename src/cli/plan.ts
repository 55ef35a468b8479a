/**
 * `npm run plan -- --problem FILE.json [--json] [--profile models/<name>/profile.json]`
 *
 * Reads a planning problem (format: src/planner/problem.ts), evaluates its `evaluate` list or
 * optimises, and prints a table (default) or JSON (`--json`). `--profile` fills the edge and origin
 * service times from a profile written by `npm run profile` where the problem does not give them.
 * Exit codes: 0 done; 1 no configuration meets the SLO; 2 bad arguments or a bad problem.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Plan, type Problem, parseProblem, solveProblem } from "../planner/index";

class UsageError extends Error {}

function main(argv: string[]): number {
  let args;
  try {
    args = parseArgs({ args: argv, options: { problem: { type: "string" }, json: { type: "boolean", default: false }, profile: { type: "string" }, help: { type: "boolean", default: false } } }).values;
  } catch (error) {
    return fail(new UsageError((error as Error).message));
  }
  if (args.help) {
    console.log("usage: npm run plan -- --problem FILE.json [--json] [--profile models/<name>/profile.json]");
    return 0;
  }
  try {
    if (!args.problem) throw new UsageError("missing --problem FILE.json");
    const json = readJson(args.problem, "problem");
    if (args.profile) applyProfile(json, readJson(args.profile, "profile"));
    const parsed = parseProblem(json);
    if (!parsed.ok) throw new UsageError(`invalid problem ${args.problem}:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}`);
    return run(parsed.problem, args.json);
  } catch (error) {
    return fail(error);
  }
}

function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`plan: ${error.message}`);
    return 2;
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

process.exitCode = main(process.argv.slice(2));
