/**
 * Model vs simulator: the latency model's error over a sampled grid of arrivals (Poisson at three
 * rates and BATCH's 24 hourly Twitter MAPs), maxBatch 1-64, windows 1-500 ms, unbounded servers and
 * fixed servers (one per shard, or a shared pool) at utilisation 0.3-0.9.
 *
 * Run: npx tsx bench/planner-accuracy.ts [--quick]
 * Writes bench/reports/planner-accuracy.{json,md}. Deterministic (fixed seeds); about 30-60 s on two cores
 * (--quick: a few seconds).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type MarkovianArrival, type ServerSpec, estimateLatency, simulate, toMarkovianArrival } from "../src/planner/index";
import { createRng } from "../src/planner/simulator";
import { REPO_ROOT, loadTwitterMaps } from "./planner-twitter-maps";

const MAX_BATCHES = [1, 2, 4, 8, 16, 32, 64];
const WINDOWS_MS = [1, 5, 20, 100, 500];
const UTILISATIONS = [0.3, 0.6, 0.9];
const FIXED_LAYOUTS: { name: string; shards: number; servers: ServerSpec }[] = [
  { name: "1 shard, 1 server", shards: 1, servers: { kind: "fixed", count: 1 } },
  { name: "2 shards, 1 DO each", shards: 2, servers: { kind: "fixed", count: 1, scope: "per-shard" } },
  { name: "3 shards, pool of 2", shards: 3, servers: { kind: "fixed", count: 2, scope: "shared" } },
];

/** One compared configuration. */
export interface AccuracyRow {
  arrival: string;
  ratePerS: number;
  servers: string;
  shards: number;
  maxBatch: number;
  windowMs: number;
  baseMs: number;
  perItemMs: number;
  utilisation: number;
  model: { p50: number; p95: number; p99: number; meanBatch: number };
  simulated: { p50: number; p95: number; p99: number; meanBatch: number };
  /** Relative errors (model - simulated) / simulated. */
  error: { p50: number; p95: number; p99: number };
}

interface Summary {
  rows: number;
  p95: { medianAbs: number; maxAbs: number; within3pct: number; within10pct: number };
  p50MedianAbs: number;
  p99MedianAbs: number;
}

function summarise(rows: AccuracyRow[]): Summary {
  const abs = (key: "p50" | "p95" | "p99") => rows.map((r) => Math.abs(r.error[key])).sort((a, b) => a - b);
  const median = (xs: number[]) => (xs.length === 0 ? NaN : xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2);
  const p95 = abs("p95");
  return {
    rows: rows.length,
    p95: { medianAbs: median(p95), maxAbs: p95[p95.length - 1] ?? NaN, within3pct: p95.filter((e) => e <= 0.03).length / p95.length, within10pct: p95.filter((e) => e <= 0.1).length / p95.length },
    p50MedianAbs: median(abs("p50")),
    p99MedianAbs: median(abs("p99")),
  };
}

function compare(name: string, arrival: MarkovianArrival, shards: number, servers: ServerSpec, serversName: string, maxBatch: number, windowMs: number, baseMs: number, perItemMs: number, requests: number, seed: number): AccuracyRow {
  const service = { kind: "linear" as const, baseMs, perItemMs };
  const model = estimateLatency({ arrival, service, servers, shards, maxBatch, windowMs });
  const sim = simulate({ arrival, service, servers, shards, maxBatch, windowMs, requests, seed });
  const err = (key: "p50" | "p95" | "p99") => (model.latencyMs[key] - sim.latencyMs[key]) / sim.latencyMs[key];
  return {
    arrival: name,
    ratePerS: arrival.ratePerS,
    servers: serversName,
    shards,
    maxBatch,
    windowMs,
    baseMs,
    perItemMs,
    utilisation: model.utilisation,
    model: { ...model.latencyMs, meanBatch: model.meanBatch },
    simulated: { p50: sim.latencyMs.p50, p95: sim.latencyMs.p95, p99: sim.latencyMs.p99, meanBatch: sim.meanBatch },
    error: { p50: err("p50"), p95: err("p95"), p99: err("p99") },
  };
}

/** Runs the grid and writes the reports; returns the summaries. */
export function main(argv: string[] = process.argv.slice(2)): { unbounded: Summary; fixed: Summary } {
  const isQuick = argv.includes("--quick");
  const perArrival = isQuick ? 2 : 5;
  const requests = isQuick ? 60_000 : 200_000;
  const arrivals = [
    ...[20, 100, 500].map((rate) => ({ name: `Poisson ${rate}/s`, arrival: toMarkovianArrival({ kind: "poisson", ratePerS: rate }) })),
    ...loadTwitterMaps().map(({ hour, arrival }) => ({ name: `Twitter MAP h${hour}`, arrival })),
  ];
  const rng = createRng(2024);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const rows: AccuracyRow[] = [];
  const started = performance.now();
  arrivals.forEach(({ name, arrival }, a) => {
    for (let i = 0; i < perArrival; i++) {
      // Unbounded servers: any (maxBatch, window) pair, service 2-20 ms + 0.5-5 ms per item.
      const baseMs = 2 + 18 * rng();
      const perItemMs = 0.5 + 4.5 * rng();
      rows.push(compare(name, arrival, 1, { kind: "unbounded" }, "unbounded", pick(MAX_BATCHES), pick(WINDOWS_MS), baseMs, perItemMs, requests, 1000 * a + i));
      // Fixed servers: a layout and a target utilisation; the service time is scaled to reach it.
      const layout = FIXED_LAYOUTS[i % FIXED_LAYOUTS.length]!;
      const target = UTILISATIONS[(a + i) % UTILISATIONS.length]!;
      const [maxBatch, windowMs] = [pick(MAX_BATCHES), pick(WINDOWS_MS)];
      const unit = estimateLatency({ arrival, service: { kind: "linear", baseMs, perItemMs }, servers: layout.servers, shards: layout.shards, maxBatch, windowMs, gridSteps: 32 });
      const scale = target / unit.utilisation;
      const fixedRequests = target >= 0.9 ? 2 * requests : requests;
      rows.push(compare(name, arrival, layout.shards, layout.servers, layout.name, maxBatch, windowMs, baseMs * scale, perItemMs * scale, fixedRequests, 5000 + 1000 * a + i));
    }
  });
  const elapsedS = (performance.now() - started) / 1000;
  const unbounded = summarise(rows.filter((r) => r.servers === "unbounded"));
  const fixedRows = rows.filter((r) => r.servers !== "unbounded");
  const fixed = summarise(fixedRows);
  const byUtilisation = UTILISATIONS.map((u) => ({ utilisation: u, ...summarise(fixedRows.filter((r) => Math.abs(r.utilisation - u) < 0.05)) }));
  const byLayout = FIXED_LAYOUTS.map((l) => ({ layout: l.name, ...summarise(fixedRows.filter((r) => r.servers === l.name)) }));

  const outDir = resolve(REPO_ROOT, "bench/reports");
  mkdirSync(outDir, { recursive: true });
  const report = { generatedBy: "bench/planner-accuracy.ts", isQuick, simulatedRequestsPerRow: requests, elapsedS, targets: { unboundedP95MedianAbs: 0.03, unboundedP95MaxAbs: 0.1 }, unbounded, fixed, byUtilisation, byLayout, rows };
  writeFileSync(resolve(outDir, "planner-accuracy.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(resolve(outDir, "planner-accuracy.md"), markdown(report));
  console.log(`planner accuracy: ${rows.length} configurations in ${elapsedS.toFixed(0)} s`);
  console.log(`  unbounded p95 error: median ${pct(unbounded.p95.medianAbs)}, max ${pct(unbounded.p95.maxAbs)} (target 3 % / 10 %)`);
  console.log(`  fixed     p95 error: median ${pct(fixed.p95.medianAbs)}, max ${pct(fixed.p95.maxAbs)}`);
  return { unbounded, fixed };
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

function overestimates(rows: AccuracyRow[]): string {
  const fixed = rows.filter((r) => r.servers !== "unbounded");
  return `${fixed.filter((r) => r.error.p95 > 0).length} of ${fixed.length}`;
}

function markdown(report: { elapsedS: number; simulatedRequestsPerRow: number; unbounded: Summary; fixed: Summary; byUtilisation: (Summary & { utilisation: number })[]; byLayout: (Summary & { layout: string })[]; rows: AccuracyRow[] }): string {
  const line = (label: string, s: Summary) => `| ${label} | ${s.rows} | ${pct(s.p95.medianAbs)} | ${pct(s.p95.maxAbs)} | ${pct(s.p95.within3pct)} | ${pct(s.p95.within10pct)} | ${pct(s.p50MedianAbs)} | ${pct(s.p99MedianAbs)} |`;
  const worst = [...report.rows].sort((a, b) => Math.abs(b.error.p95) - Math.abs(a.error.p95)).slice(0, 12);
  return [
    "# Planner accuracy: latency model vs simulator",
    "",
    "Generated by `npx tsx bench/planner-accuracy.ts` (fixed seeds). Arrivals: Poisson 20/100/500 per s and BATCH's 24 hourly",
    "Twitter MAPs; per arrival, sampled (maxBatch in 1-64, window in 1-500 ms) pairs, with unbounded servers and with fixed",
    `servers at a target utilisation of 0.3/0.6/0.9. Simulator: ${report.simulatedRequestsPerRow} measured requests per row (twice that at 0.9).`,
    `Run time ${report.elapsedS.toFixed(0)} s. Errors are (model - simulated) / simulated, absolute values.`,
    "",
    "| servers | rows | p95 median | p95 max | p95 within 3 % | p95 within 10 % | p50 median | p99 median |",
    "|---|---|---|---|---|---|---|---|",
    line("unbounded (exact model)", report.unbounded),
    line("fixed (approximation)", report.fixed),
    ...report.byUtilisation.map((s) => line(`fixed, utilisation ${s.utilisation}`, s)),
    ...report.byLayout.map((s) => line(`fixed, ${s.layout}`, s)),
    "",
    "Targets (issue 4): unbounded p95 median <= 3 %, max <= 10 %. Fixed servers use the documented GI/G/c approximation",
    `(src/planner/queueing.ts). It overestimates p95 in ${overestimates(report.rows)} of the fixed-server rows, so its errors mostly`,
    "err on the safe side (a plan keeps its SLO but may buy more than it needs). The exponential tail it gives the queueing",
    "delay is a heavy-traffic shape: at moderate utilisation, with the fairly regular stream of batches a buffer releases,",
    "it overstates the rare long waits; the independence of a batch's queueing delay from its own window adds to that.",
    "",
    "## Largest p95 errors",
    "",
    "| arrival | servers | shards | maxBatch | window ms | utilisation | model p95 | simulated p95 | error |",
    "|---|---|---|---|---|---|---|---|---|",
    ...worst.map((r) => `| ${r.arrival} | ${r.servers} | ${r.shards} | ${r.maxBatch} | ${r.windowMs} | ${r.utilisation.toFixed(2)} | ${r.model.p95.toFixed(1)} | ${r.simulated.p95.toFixed(1)} | ${pct(r.error.p95)} |`),
    "",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main();
