/**
 * Model vs simulator: the latency model's error over a sampled grid of arrivals — Poisson at three
 * rates, BATCH's 24 hourly Twitter MAPs, and bursty on/off MMPP(2)s fitted to the Azure LLM trace
 * (gap SCV > 10, at two rates) — maxBatch 1-64, windows 1-500 ms, unbounded servers, and fixed servers
 * (1-4 servers for one shard, one server per shard for 2 shards, a pool of 2 shared by 3 shards) with
 * sealed and lazy formation at utilisation 0.3-0.85, and for one server per queue lazy formation on
 * a shared thread too (a request that arrives while a batch runs joins the queue when it ends), with
 * every request done at its batch's end or answered in turn (ServerSpec answerMsPerRow: half the
 * per-row service time, the last part of the batch's).
 *
 * Run: npx tsx bench/planner-accuracy.ts [--quick | --render]   (or npm run bench -- planner [--quick])
 * Writes bench/reports/planner-accuracy.{json,md}. Deterministic (fixed seeds); a few minutes on two
 * shared cores (--quick: well under a minute).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type MarkovianArrival, type ServerSpec, estimateLatency, fitMmpp2, mapGapScv, scaleArrival, simulate, toMarkovianArrival } from "../src/planner/index";
import { startProgress } from "../src/cli/progress";
import { createRng } from "../src/planner/simulator";
import { REPO_ROOT, loadAzureArrivalsMs, loadTwitterMaps } from "./planner-twitter-maps";

const MAX_BATCHES = [1, 2, 4, 8, 16, 32, 64];
const WINDOWS_MS = [1, 5, 20, 100, 500];
const UTILISATIONS = [0.3, 0.6, 0.85];
/** "lazy, shared thread": one server per queue only (ServerSpec sharedThread); "..., answers in turn": answerMsPerRow half the per-row service. */
const FORMATIONS = ["sealed", "lazy", "lazy, shared thread", "lazy, shared thread, answers in turn"] as const;
type Formation = (typeof FORMATIONS)[number];
const FIXED_LAYOUTS: { name: string; shards: number; count: number; scope: "shared" | "per-shard" }[] = [
  { name: "1 shard, 1 server", shards: 1, count: 1, scope: "per-shard" },
  { name: "1 shard, 2 servers", shards: 1, count: 2, scope: "per-shard" },
  { name: "1 shard, 3 servers", shards: 1, count: 3, scope: "per-shard" },
  { name: "1 shard, 4 servers", shards: 1, count: 4, scope: "per-shard" },
  { name: "2 shards, 1 server each", shards: 2, count: 1, scope: "per-shard" },
  { name: "3 shards, pool of 2", shards: 3, count: 2, scope: "shared" },
];
const FAMILIES = ["Poisson", "Twitter MAP", "Azure on/off MMPP(2)"] as const;
type Family = (typeof FAMILIES)[number];

/** The fields that name a configuration, shared by a case and its row. */
interface Configuration {
  family: Family;
  formation: Formation | "-";
  shards: number;
  maxBatch: number;
  windowMs: number;
  baseMs: number;
  perItemMs: number;
}

/** One compared configuration. */
export interface AccuracyRow extends Configuration {
  arrival: string;
  ratePerS: number;
  gapScv: number;
  servers: string;
  utilisation: number;
  model: { p50: number; p95: number; p99: number; meanBatch: number; ms: number };
  simulated: { p50: number; p95: number; p99: number; meanBatch: number; seeds: number; requestsPerSeed: number; p95SeedSpread: number };
  /** Relative errors (model - simulated) / simulated. */
  error: { p50: number; p95: number; p99: number };
}

interface Summary {
  rows: number;
  p95: { medianAbs: number; maxAbs: number; within3pct: number; within10pct: number };
  p50MedianAbs: number;
  p99MedianAbs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function summarise(rows: AccuracyRow[]): Summary {
  const abs = (key: "p50" | "p95" | "p99") => rows.map((r) => Math.abs(r.error[key])).sort((a, b) => a - b);
  const p95 = abs("p95");
  return {
    rows: rows.length,
    p95: { medianAbs: median(p95), maxAbs: p95[p95.length - 1] ?? NaN, within3pct: p95.filter((e) => e <= 0.03).length / p95.length, within10pct: p95.filter((e) => e <= 0.1).length / p95.length },
    p50MedianAbs: median(abs("p50")),
    p99MedianAbs: median(abs("p99")),
  };
}

interface Case extends Configuration {
  name: string;
  arrival: MarkovianArrival;
  servers: ServerSpec;
  serversName: string;
  requests: number;
  seeds: number[];
}

function compare(c: Case): AccuracyRow {
  const service = { kind: "linear" as const, baseMs: c.baseMs, perItemMs: c.perItemMs };
  const started = performance.now();
  const model = estimateLatency({ arrival: c.arrival, service, servers: c.servers, shards: c.shards, maxBatch: c.maxBatch, windowMs: c.windowMs });
  const modelMs = performance.now() - started;
  const sims = c.seeds.map((seed) => simulate({ arrival: c.arrival, service, servers: c.servers, shards: c.shards, maxBatch: c.maxBatch, windowMs: c.windowMs, requests: c.requests, seed }));
  const avg = (f: (s: (typeof sims)[number]) => number) => sims.reduce((a, s) => a + f(s), 0) / sims.length;
  const p95s = sims.map((s) => s.latencyMs.p95);
  const simulated = {
    p50: avg((s) => s.latencyMs.p50),
    p95: avg((s) => s.latencyMs.p95),
    p99: avg((s) => s.latencyMs.p99),
    meanBatch: avg((s) => s.meanBatch),
    seeds: sims.length,
    requestsPerSeed: c.requests,
    p95SeedSpread: sims.length > 1 ? (Math.max(...p95s) - Math.min(...p95s)) / avg((s) => s.latencyMs.p95) : NaN,
  };
  const err = (key: "p50" | "p95" | "p99") => (model.latencyMs[key] - simulated[key]) / simulated[key];
  return {
    family: c.family,
    arrival: c.name,
    ratePerS: c.arrival.ratePerS,
    gapScv: mapGapScv(c.arrival),
    servers: c.serversName,
    formation: c.formation,
    shards: c.shards,
    maxBatch: c.maxBatch,
    windowMs: c.windowMs,
    baseMs: c.baseMs,
    perItemMs: c.perItemMs,
    utilisation: model.utilisation,
    model: { ...model.latencyMs, meanBatch: model.meanBatch, ms: modelMs },
    simulated,
    error: { p50: err("p50"), p95: err("p95"), p99: err("p99") },
  };
}

/** The bursty arrivals: on/off MMPP(2) fits of the Azure trace (counts up to 20 s, 60 s, 120 s), at the trace's rate and 20 times it. */
export function azureBurstyArrivals(): { name: string; arrival: MarkovianArrival }[] {
  const times = loadAzureArrivalsMs();
  return [20_000, 60_000, 120_000].flatMap((maxTimescaleMs) => {
    const fit = fitMmpp2(times, { kind: "on-off", maxTimescaleMs });
    return [1, 20].map((factor) => ({ name: `Azure on/off ${maxTimescaleMs / 1000}s x${factor}`, arrival: scaleArrival(fit, factor) }));
  });
}

/** Runs the grid and writes the reports; returns the summaries. `render` (`--render`): rewrite the .md from the .json only; `quick` (`--quick`): a smaller grid. */
export function main(options: { quick?: boolean; render?: boolean } = {}): { unbounded: Summary; fixed: Summary } {
  if (options.render) {
    const report = JSON.parse(readFileSync(resolve(REPO_ROOT, "bench/reports/planner-accuracy.json"), "utf8")) as Parameters<typeof markdown>[0];
    writeFileSync(resolve(REPO_ROOT, "bench/reports/planner-accuracy.md"), markdown(report));
    return { unbounded: report.unbounded, fixed: report.fixed };
  }
  const isQuick = options.quick ?? false;
  const perArrival = isQuick ? 1 : 4;
  const requests = isQuick ? 60_000 : 200_000;
  const burstyRequests = isQuick ? 200_000 : 600_000;
  const burstySeeds = 3;
  const arrivals: { family: Family; name: string; arrival: MarkovianArrival }[] = [
    ...[20, 100, 500].map((rate) => ({ family: "Poisson" as const, name: `Poisson ${rate}/s`, arrival: toMarkovianArrival({ kind: "poisson", ratePerS: rate }) })),
    ...loadTwitterMaps().map(({ hour, arrival }) => ({ family: "Twitter MAP" as const, name: `Twitter MAP h${hour}`, arrival })),
    ...azureBurstyArrivals().map((a) => ({ family: "Azure on/off MMPP(2)" as const, ...a })),
  ];
  const rng = createRng(2024);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const rows: AccuracyRow[] = [];
  const started = performance.now();
  let caseIndex = 0;
  const progress = startProgress("planner accuracy", arrivals.length * perArrival);
  try {
    arrivals.forEach(({ family, name, arrival }, a) => {
      const isBursty = family === "Azure on/off MMPP(2)";
      const seedsFor = (base: number) => (isBursty ? Array.from({ length: burstySeeds }, (_, s) => base + s) : [base]);
      for (let i = 0; i < perArrival; i++) {
        progress.step(name);
        // Unbounded servers: any (maxBatch, window) pair, service 2-20 ms + 0.5-5 ms per item.
        const baseMs = 2 + 18 * rng();
        const perItemMs = 0.5 + 4.5 * rng();
        const common = { family, name, arrival, requests: isBursty ? burstyRequests : requests };
        rows.push(compare({ ...common, servers: { kind: "unbounded" }, serversName: "unbounded", formation: "-", shards: 1, maxBatch: pick(MAX_BATCHES), windowMs: pick(WINDOWS_MS), baseMs, perItemMs, seeds: seedsFor(1000 * a + i) }));
        // Fixed servers: a layout and a target utilisation; the service time is scaled to reach it.
        const layout = FIXED_LAYOUTS[caseIndex % FIXED_LAYOUTS.length]!;
        const target = UTILISATIONS[(a + i) % UTILISATIONS.length]!;
        const [maxBatch, windowMs] = [pick(MAX_BATCHES), pick(WINDOWS_MS)];
        caseIndex++;
        for (const formation of FORMATIONS) {
          const isSharedThread = formation.startsWith("lazy, shared thread");
          if (isSharedThread && layout.count !== 1) continue;
          const queue: ServerSpec = { kind: "fixed", count: layout.count, scope: layout.scope, formation: formation === "sealed" ? "sealed" : "lazy", ...(isSharedThread && { sharedThread: true }) };
          // Lazy batches grow with the load, so the utilisation is not linear in the scale: correct twice.
          let scale = 1;
          for (let step = 0; step < 3; step++) {
            const u = estimateLatency({ arrival, service: { kind: "linear", baseMs: baseMs * scale, perItemMs: perItemMs * scale }, servers: queue, shards: layout.shards, maxBatch, windowMs }).utilisation;
            if (!(u > 0) || !Number.isFinite(u)) break;
            scale *= Math.min(target / u, 1 / u); // never past full load
            if (formation === "sealed") break;
          }
          const fixedRequests = target >= 0.85 ? 2 * common.requests : common.requests;
          // Answers in turn change no batch (nor the utilisation), only when each request is done.
          const servers: ServerSpec = formation === "lazy, shared thread, answers in turn" ? { ...queue, answerMsPerRow: (perItemMs * scale) / 2 } : queue;
          rows.push(
            compare({ ...common, requests: fixedRequests, servers, serversName: layout.name, formation, shards: layout.shards, maxBatch, windowMs, baseMs: baseMs * scale, perItemMs: perItemMs * scale, seeds: seedsFor(5000 + 1000 * a + i) }),
          );
        }
        progress.tick();
      }
    });
  } finally {
    progress.stop();
  }
  const elapsedS = (performance.now() - started) / 1000;
  const unboundedRows = rows.filter((r) => r.servers === "unbounded");
  const fixedRows = rows.filter((r) => r.servers !== "unbounded" && Number.isFinite(r.model.p95) && Number.isFinite(r.simulated.p95));
  const unbounded = summarise(unboundedRows);
  const fixed = summarise(fixedRows);
  const byFamily = FAMILIES.flatMap((family) => [
    { label: `${family}, unbounded`, ...summarise(unboundedRows.filter((r) => r.family === family)) },
    ...FORMATIONS.map((formation) => ({ label: `${family}, fixed, ${formation}`, ...summarise(fixedRows.filter((r) => r.family === family && r.formation === formation)) })),
  ]);
  const byFormation = FORMATIONS.map((formation) => ({ label: `fixed, ${formation}`, ...summarise(fixedRows.filter((r) => r.formation === formation)) }));
  const byUtilisation = UTILISATIONS.map((u) => ({ label: `fixed, target utilisation ${u}`, ...summarise(fixedRows.filter((r) => Math.abs(r.utilisation - u) < 0.05)) }));
  const byLayout = FIXED_LAYOUTS.flatMap((l) => FORMATIONS.filter((formation) => fixedRows.some((r) => r.servers === l.name && r.formation === formation)).map((formation) => ({ label: `fixed, ${l.name}, ${formation}`, ...summarise(fixedRows.filter((r) => r.servers === l.name && r.formation === formation)) })));
  const spreads = rows.filter((r) => r.simulated.seeds > 1).map((r) => r.simulated.p95SeedSpread);
  const simulatorSpread = { rows: spreads.length, seeds: burstySeeds, requestsPerSeed: burstyRequests, p95SpreadMedian: median(spreads), p95SpreadMax: Math.max(...spreads) };
  const modelMs = { median: median(fixedRows.map((r) => r.model.ms)), max: Math.max(...fixedRows.map((r) => r.model.ms)) };
  const bursty = arrivals.filter((a) => a.family === "Azure on/off MMPP(2)").map((a) => ({ name: a.name, ratePerS: a.arrival.ratePerS, gapScv: mapGapScv(a.arrival) }));

  const outDir = resolve(REPO_ROOT, "bench/reports");
  mkdirSync(outDir, { recursive: true });
  const report = {
    generatedBy: "bench/planner-accuracy.ts",
    isQuick,
    simulatedRequestsPerRow: requests,
    elapsedS,
    targets: { p95MedianAbs: 0.03, p95MaxAbs: 0.1 },
    unbounded,
    fixed,
    byFamily,
    byFormation,
    byUtilisation,
    byLayout,
    simulatorSpread,
    modelMs,
    bursty,
    rows,
  };
  writeFileSync(resolve(outDir, "planner-accuracy.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(resolve(outDir, "planner-accuracy.md"), markdown(report));
  console.log(`planner accuracy: ${rows.length} configurations in ${elapsedS.toFixed(0)} s`);
  for (const s of [{ label: "unbounded", ...unbounded }, ...byFamily.filter((s) => !s.label.endsWith("unbounded"))]) console.log(`  ${s.label.padEnd(40)} p95 error: median ${pct(s.p95.medianAbs)}, max ${pct(s.p95.maxAbs)} (${s.rows} rows)`);
  console.log(`  simulator p95 seed-to-seed spread (bursty rows): median ${pct(simulatorSpread.p95SpreadMedian)}, max ${pct(simulatorSpread.p95SpreadMax)}`);
  return { unbounded, fixed };
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

/** The fixed-server rows grouped by how the model treats them (see the method paragraph). */
function targetClasses(rows: AccuracyRow[]): Labelled[] {
  const fixed = rows.filter((r) => r.servers !== "unbounded" && Number.isFinite(r.model.p95) && Number.isFinite(r.simulated.p95));
  const isOneServer = (r: AccuracyRow) => r.servers === "1 shard, 1 server" || r.servers === "2 shards, 1 server each";
  const isSharedSealed = (r: AccuracyRow) => r.servers === "3 shards, pool of 2" && r.formation === "sealed";
  const classes: [string, (r: AccuracyRow) => boolean][] = [
    ["unbounded servers (exact)", (r) => r.servers === "unbounded"],
    ["one server per queue, sealed (exact up to the grid)", (r) => isOneServer(r) && r.formation === "sealed"],
    ["one server per queue, lazy (exact up to the grid)", (r) => isOneServer(r) && r.formation === "lazy"],
    ["one server per queue, lazy, shared thread (exact up to the grid)", (r) => isOneServer(r) && r.formation === "lazy, shared thread"],
    ["one server per queue, lazy, shared thread, answers in turn", (r) => isOneServer(r) && r.formation === "lazy, shared thread, answers in turn"],
    ["2-4 servers, sealed (cyclic assignment)", (r) => !isOneServer(r) && !isSharedSealed(r) && r.formation === "sealed"],
    ["2-4 servers or shared pool, lazy (better of two)", (r) => !isOneServer(r) && r.formation === "lazy"],
    ["  of which utilisation <= 0.7", (r) => !isOneServer(r) && r.formation === "lazy" && r.utilisation <= 0.7],
    ["  of which utilisation > 0.7", (r) => !isOneServer(r) && r.formation === "lazy" && r.utilisation > 0.7],
    ["pool shared by 3 sealed shards (virtual shard)", isSharedSealed],
  ];
  return classes.map(([label, keep]) => ({ label, ...summarise((label.startsWith("unbounded") ? rows : fixed).filter(keep)) }));
}

type Labelled = Summary & { label: string };

function markdown(report: {
  elapsedS: number;
  simulatedRequestsPerRow: number;
  unbounded: Summary;
  fixed: Summary;
  byFamily: Labelled[];
  byFormation: Labelled[];
  byUtilisation: Labelled[];
  byLayout: Labelled[];
  simulatorSpread: { rows: number; seeds: number; requestsPerSeed: number; p95SpreadMedian: number; p95SpreadMax: number };
  modelMs: { median: number; max: number };
  bursty: { name: string; ratePerS: number; gapScv: number }[];
  rows: AccuracyRow[];
}): string {
  const line = (label: string, s: Summary) => `| ${label} | ${s.rows} | ${pct(s.p95.medianAbs)} | ${pct(s.p95.maxAbs)} | ${pct(s.p95.within3pct)} | ${pct(s.p95.within10pct)} | ${pct(s.p50MedianAbs)} | ${pct(s.p99MedianAbs)} |`;
  const fixed = report.rows.filter((r) => r.servers !== "unbounded");
  const worst = [...fixed].sort((a, b) => Math.abs(b.error.p95) - Math.abs(a.error.p95)).slice(0, 15);
  const header = ["| rows | n | p95 median | p95 max | p95 within 3 % | p95 within 10 % | p50 median | p99 median |", "|---|---|---|---|---|---|---|---|"];
  return [
    "# Planner accuracy: latency model vs simulator",
    "",
    "Generated by `npx tsx bench/planner-accuracy.ts` (`npm run bench -- planner`; fixed seeds). Arrivals: Poisson 20/100/500 per s,",
    "BATCH's 24 hourly Twitter MAPs, and on/off MMPP(2)s fitted to the Azure LLM conversation trace (`fitMmpp2`, counts up to",
    "20/60/120 s) at the trace's rate and 20 times it (`scaleArrival`): " + report.bursty.map((b) => `${b.name} (${b.ratePerS.toFixed(1)}/s, gap SCV ${b.gapScv.toFixed(1)})`).join(", ") + ".",
    "Per arrival, sampled (maxBatch in 1-64, window in 1-500 ms) pairs with unbounded servers, and with fixed servers in one of",
    "six layouts (1-4 servers for one shard, one server per shard for 2 shards, a pool of 2 shared by 3 shards), each with sealed",
    "and lazy formation (one server per queue also lazy on a shared thread: a request that arrives while a batch runs joins the",
    "queue when it ends; and so with each batch's requests answered in turn over half the per-row time), the service time scaled to a target utilisation of 0.3/0.6/0.85. Rates are rows (requests) per second.",
    `Simulator: ${report.simulatedRequestsPerRow} measured requests per row (twice that at 0.85); the bursty rows average ${report.simulatorSpread.seeds} seeds of`,
    `${report.simulatorSpread.requestsPerSeed} requests (twice that at 0.85). Run time ${report.elapsedS.toFixed(0)} s. Errors are (model - simulated) / simulated, absolute values.`,
    "",
    `Simulator's own noise on the bursty rows: p95 seed-to-seed spread (max - min over the seeds, relative) median ${pct(report.simulatorSpread.p95SpreadMedian)}, max ${pct(report.simulatorSpread.p95SpreadMax)}.`,
    `Model time per fixed-server row: median ${report.modelMs.median.toFixed(1)} ms, max ${report.modelMs.max.toFixed(0)} ms.`,
    "",
    "Targets: p95 error median <= 3 %, max <= 10 %.",
    "",
    "## Against the targets, by kind of queue",
    "",
    ...header,
    ...targetClasses(report.rows).map((s) => line(s.label, s)),
    "",
    "## By arrival family and formation",
    "",
    ...header,
    line("unbounded (all)", report.unbounded),
    line("fixed (all)", report.fixed),
    ...report.byFamily.map((s) => line(s.label, s)),
    "",
    "## Fixed servers by formation, utilisation and layout",
    "",
    ...header,
    ...report.byFormation.map((s) => line(s.label, s)),
    ...report.byUtilisation.map((s) => line(s.label, s)),
    ...report.byLayout.map((s) => line(s.label, s)),
    "",
    "Method (src/planner/fixed-servers.ts): a Markov chain embedded at batch heads — the time until a server is free as seen by",
    "the oldest request of each batch, and the MAP phase — solved on a time grid from the MAP's counting matrices; exact up to",
    "the grid for one server per queue (both formations), with the members of a batch taken as uniform over its span (exact",
    "for Poisson). Several servers: sealed by cyclic assignment (batch n waits for the server of batch n - c); lazy by the",
    "better (smaller mean) of cyclic assignment with mean-field intermediate cycles and one server c times as fast, which",
    "understates the wait near saturation; a pool shared by several sealed shards is the pool's queue of one virtual shard",
    "that takes all the arrivals with its window shortened until its batches are as large as a shard's, its wait after release",
    "added to the shard's own latency as independent (latency-model.ts sharedSealedPool).",
    "",
    "## Largest p95 errors (fixed servers)",
    "",
    "| arrival | servers | formation | shards | maxBatch | window ms | utilisation | model p95 | simulated p95 | error |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...worst.map((r) => `| ${r.arrival} | ${r.servers} | ${r.formation} | ${r.shards} | ${r.maxBatch} | ${r.windowMs} | ${r.utilisation.toFixed(2)} | ${r.model.p95.toFixed(1)} | ${r.simulated.p95.toFixed(1)} | ${pct(r.error.p95)} |`),
    "",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main({ quick: process.argv.includes("--quick"), render: process.argv.includes("--render") });
