/**
 * The soak benchmark's reports: bench/reports/soak.json (every figure), soak.md (targets with
 * pass/fail, status mix, invalid cases, latency, RSS per process) and soak-rss.svg (RSS of each
 * process and the status mix over time).
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../src/cli/processes";
import type { Restart } from "./restart-watch";
import { reportNameOn, type Platform } from "./plain-workerd";
import { type RssGrowth, type RssSample, rssGrowth } from "./rss-sampler";
import { type ModelPool, SEPARATION, TOLERANCE } from "./soak-models";
import { CATEGORIES, type Kind, type LostRequest, type SoakTally } from "./soak-tally";
import { quantile, round } from "./stats";
import { renderFigure, type Series } from "./svg-plot";

/** Largest RSS growth after warm-up, percent, per stack process. */
export const MAX_GROWTH_PCT = 10;

/** Everything a soak run produced. */
export interface SoakRun {
  /** Where the edge Worker ran: under wrangler dev, or on plain workerd (reports soak-workerd.*). */
  platform: Platform;
  command: string;
  startedAt: string;
  durationS: number;
  ratePerS: number;
  warmUpS: number;
  replicas: number;
  maxReplicas: number;
  mix: Array<[Kind, number]>;
  modelMix: Array<[string, number]>;
  lostMarginMs: number;
  pools: ModelPool[];
  tally: SoakTally;
  rss: RssSample[];
  /** workerd processes that appeared during the run (wrangler dev restarting the Worker). */
  restarts: Restart[];
  post: { readyStatus: number; models: Record<string, string> };
  stats: Record<string, unknown>;
}

interface Target {
  name: string;
  measured: string;
  isMet: boolean;
}

/** A lost request sent this long before or after a Worker restart is counted as near it (a restarted Worker is cold: it loads its models again). */
const RESTART_WINDOW_S = { before: 10, after: 30 };

/** Whether a lost request was in flight at a restart (seen up to 1 s late, the watch's poll) or sent within RESTART_WINDOW_S of one. */
function isNearRestart(l: LostRequest, restarts: readonly Restart[]): boolean {
  return restarts.some((r) => (l.atS <= r.atS && r.atS <= l.untilS + 1) || (l.atS >= r.atS - RESTART_WINDOW_S.before && l.atS <= r.atS + RESTART_WINDOW_S.after));
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"];

/** Writes the three report files. */
export function writeSoakReports(run: SoakRun): void {
  const { tally } = run;
  const growth = rssGrowth(run.rss, run.warmUpS).map((g) => ({ ...g, group: groupOf(g.key) }));
  // With a garbage collection before each sample (plain workerd): the collected processes' RSS just before it, and their JS heap after it.
  const collected = collectedKeys(run.rss);
  const beforeCollection = rssGrowth(run.rss, run.warmUpS, "rssBeforeKiB").filter((g) => collected.includes(g.key));
  const heap = heapInUse(run.rss, run.warmUpS, collected);
  const afterCollection = collected.length ? " (RSS read after a full garbage collection)" : "";
  const allLatencies = [...tally.latenciesMs.values()].flat();
  const latency = {
    all: latencySummary(allLatencies),
    perModel: Object.fromEntries([...tally.latenciesMs].map(([m, l]) => [m, latencySummary(l)])),
  };
  const duplicated = tally.duplicated();
  const c = tally.counts;
  const lostAcrossRestart = tally.lost.filter((l) => isNearRestart(l, run.restarts)).length;
  const targets: Target[] = [
    { name: "0 lost (no answer to a request we did not abort)", measured: `${c.lost}${run.restarts.length ? ` (${lostAcrossRestart} sent from ${RESTART_WINDOW_S.before} s before to ${RESTART_WINDOW_S.after} s after a restart of the Worker by wrangler dev, or in flight at it)` : ""}`, isMet: c.lost === 0 },
    { name: "0 duplicated (an id answered twice)", measured: String(duplicated), isMet: duplicated === 0 },
    { name: "0 misrouted (another request's id or another seed's outputs)", measured: String(c.misrouted + c.idMismatch), isMet: c.misrouted + c.idMismatch === 0 },
    { name: "0 wrong outputs (matching no seed, or unreadable)", measured: String(c.wrongOutputs), isMet: c.wrongOutputs === 0 },
    { name: "0 x 5xx (503 refusals with Retry-After and a JSON error are counted apart)", measured: `${c.failures5xx} (503 refusals: ${c.refusals503})`, isMet: c.failures5xx === 0 },
    growthTarget(growth, "runtime", `RSS growth < ${MAX_GROWTH_PCT} % after warm-up (${run.warmUpS} s): the Worker's workerd${afterCollection} and each origin replica`),
    beyondBaselineTarget(growth, `RSS growth < ${MAX_GROWTH_PCT} % after warm-up beyond the platform's: the Worker's workerd against a no-op Worker's workerd sent the same requests${afterCollection} (growth in MiB, as % of the Worker's RSS after warm-up)`),
    ...(run.platform === "wrangler-dev" ? [growthTarget(growth, "dev server", `RSS growth < ${MAX_GROWTH_PCT} % after warm-up (${run.warmUpS} s): wrangler dev's own processes (wrangler, its proxy workerd, esbuild)`)] : []),
    { name: "after the soak: edge ready and every model answers its own outputs", measured: `ready ${run.post.readyStatus}; ${Object.entries(run.post.models).map(([m, v]) => `${m} ${v}`).join(", ")}`, isMet: run.post.readyStatus === 200 && Object.values(run.post.models).every((v) => v === "200, own outputs") },
  ];
  const dir = join(ROOT, "bench", "reports");
  const json = {
    platform: run.platform,
    command: run.command,
    startedAt: run.startedAt,
    config: { durationS: run.durationS, ratePerS: run.ratePerS, warmUpS: run.warmUpS, replicas: run.replicas, maxReplicas: run.maxReplicas, mix: Object.fromEntries(run.mix), modelMix: Object.fromEntries(run.modelMix), lostMarginMs: run.lostMarginMs, tolerance: TOLERANCE, separation: SEPARATION },
    pools: run.pools.map((p) => ({ model: p.model, seeds: p.seeds.map((s) => ({ seed: s.seed, shape: s.shape })), minSeparation: p.minSeparation })),
    targets,
    counts: { ...c, duplicated, lostAcrossRestart },
    restarts: run.restarts,
    lost: tally.lost,
    byKind: Object.fromEntries(tally.byKind),
    refusalReasons: tally.refusalReasons,
    invalid: Object.fromEntries(tally.invalid),
    latency,
    incidents: tally.incidents,
    timeline: tally.timeline,
    rss: { growth, ...(collected.length && { beforeCollection, heapInUse: heap }), samples: run.rss },
    post: run.post,
    stats: run.stats,
  };
  const name = reportName(run.platform);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(json, null, 2) + "\n");
  writeFileSync(join(dir, `${name}.md`), markdown(run, targets, growth, latency, duplicated, beforeCollection, heap));
  writeFileSync(join(dir, `${name}-rss.svg`), soakFigure(run));
  console.log(targets.map((t) => `  ${t.isMet ? "PASS" : "FAIL"} ${t.name}: ${t.measured}`).join("\n"));
  console.log(`wrote bench/reports/${name}.json, ${name}.md, ${name}-rss.svg`);
}

/** The reports' file name: soak (wrangler dev) or soak-workerd. */
const reportName = (platform: SoakRun["platform"]) => reportNameOn("soak", platform);

type Group = "runtime" | "dev server" | "bench" | "baseline";

/** Which processes a memory target judges: the runtime (what production runs too) apart from wrangler dev's tooling; the bench and the baseline are not judged. */
function groupOf(key: string): Group {
  if (key.startsWith("bench")) return "bench";
  if (key.startsWith("baseline")) return "baseline";
  return /^(workerd Worker|origin)/.test(key) ? "runtime" : "dev server";
}

function growthTarget(growth: Array<RssGrowth & { group: Group }>, group: Group, name: string): Target {
  const judged = growth.filter((g) => g.group === group && g.growthPct !== null);
  const worst = judged.reduce<RssGrowth | undefined>((w, g) => (w && w.growthPct! >= g.growthPct! ? w : g), undefined);
  return { name, measured: worst ? `worst ${worst.key}: ${worst.growthPct!.toFixed(1)} %` : "no process sampled at both times", isMet: judged.length > 0 && judged.every((g) => g.growthPct! < MAX_GROWTH_PCT) };
}

/** The Worker's workerd growth after warm-up minus the no-op baseline Worker's, in MiB, as % of the Worker's RSS after warm-up. */
function beyondBaselineTarget(growth: Array<RssGrowth & { group: Group }>, name: string): Target {
  const worker = growth.find((g) => g.key.startsWith("workerd Worker") && g.warmMiB !== null && g.endMiB !== null);
  const base = growth.find((g) => g.key.startsWith("baseline workerd Worker") && g.warmMiB !== null && g.endMiB !== null);
  if (!worker || !base) return { name, measured: "not sampled", isMet: false };
  const ownMiB = worker.endMiB! - worker.warmMiB!;
  const baseMiB = base.endMiB! - base.warmMiB!;
  const pct = ((ownMiB - baseMiB) / worker.warmMiB!) * 100;
  const signed = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(0)}`;
  return { name, measured: `Worker ${signed(ownMiB)} MiB, no-op baseline ${signed(baseMiB)} MiB: ${pct.toFixed(1)} %`, isMet: pct < MAX_GROWTH_PCT };
}

/** Processes whose samples carry a JS heap reading: those collected before each sample. */
function collectedKeys(samples: readonly RssSample[]): string[] {
  return [...new Set(samples.flatMap((s) => Object.keys(s.heapUsedMiB ?? {})))];
}

/** JS heap in use after each collection, MiB: after warm-up, at the end and its maximum, per collected process. */
function heapInUse(samples: readonly RssSample[], warmUpS: number, keys: readonly string[]) {
  const warm = samples.find((s) => s.atS >= warmUpS);
  return keys.map((key) => {
    const values = samples.flatMap((s) => (s.heapUsedMiB?.[key] === undefined ? [] : [s.heapUsedMiB[key]]));
    return { key, warmMiB: warm?.heapUsedMiB?.[key] ?? null, endMiB: samples.at(-1)?.heapUsedMiB?.[key] ?? null, maxMiB: Math.max(...values), collections: values.length };
  });
}

function latencySummary(samples: number[]) {
  return { n: samples.length, p50Ms: round(quantile(samples, 0.5), 1), p99Ms: round(quantile(samples, 0.99), 1) };
}

const mib = (v: number | null) => (v === null ? "-" : v.toFixed(0));

function markdown(run: SoakRun, targets: Target[], growth: Array<RssGrowth & { group: Group }>, latency: { all: ReturnType<typeof latencySummary>; perModel: Record<string, ReturnType<typeof latencySummary>> }, duplicated: number, beforeCollection: RssGrowth[], heap: ReturnType<typeof heapInUse>): string {
  const { tally } = run;
  const c = tally.counts;
  const out: string[] = [
    "# Soak",
    "",
    `\`${run.command}\` (started ${run.startedAt}): the local stack (startStack: ${run.platform === "workerd" ? "the edge Worker's deploy bundle on plain workerd (bench/lib/plain-workerd.ts: no wrangler dev proxy or simulated bindings; its inspector only collects garbage before each RSS sample)" : "wrangler dev"} on 127.0.0.1, ${run.replicas}-${run.maxReplicas} gpu-origin replicas, the pool agent) under ${run.durationS} s of open-loop mixed traffic at ${run.ratePerS} requests/s. The no-op baseline runs on the same platform. Figure: [${reportName(run.platform)}-rss.svg](${reportName(run.platform)}-rss.svg).`,
    "",
    "## Targets",
    "",
    "| target | measured | |",
    "|---|---|---|",
    ...targets.map((t) => `| ${t.name} | ${t.measured} | **${t.isMet ? "pass" : "FAIL"}** |`),
    "",
    ...(run.restarts.length
      ? [`**wrangler dev restarted the Worker's workerd ${run.restarts.length} time(s)** (at ${run.restarts.map((r) => `${r.atS.toFixed(0)} s`).join(", ")}): it rebuilds and restarts on any source change in the checkout, dropping or stalling requests in flight and resetting the Worker's memory. Failures and memory figures around those times reflect the dev server, not the stack; rerun with nobody editing the checkout.`, ""]
      : [`No restart of the Worker's workerd during the run.`, ""]),
    `Sent ${c.sent} (${c.skipped} arrivals skipped at the in-flight cap); aborted by the client ${c.aborted} (answered before the abort: ${c.abortedAnswered}); answers later than deadline + 1 s: ${c.late}; error answers without a JSON {"error"} body: ${c.errorsWithoutJson}; invalid requests answered 2xx: ${c.invalidAccepted}; duplicated ids: ${duplicated}.`,
    "",
    "## Status mix",
    "",
    "Categories: **503 refusal** = 503 with Retry-After and a JSON error (admission, overload, deadline: a protocol answer, not a failure); **5xx failure** = any other 5xx; **lost** = no answer to a request we did not abort within its deadline + " + `${run.lostMarginMs} ms` + "; **closed** = a raw client closed its socket mid-body, as meant.",
    "",
  ];
  const kinds = [...tally.byKind.keys()].sort();
  const used = CATEGORIES.filter((cat) => kinds.some((k) => tally.byKind.get(k)![cat]));
  out.push(`| kind / target | sent | ${used.join(" | ")} |`, `|---|---:|${used.map(() => "---:").join("|")}|`);
  for (const k of kinds.filter((k) => !k.startsWith("invalid /"))) {
    const counts = tally.byKind.get(k)!;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    out.push(`| ${k.includes(" / ") ? "&nbsp;&nbsp;" + k : `**${k}**`} | ${total} | ${used.map((cat) => counts[cat] ?? 0).join(" | ")} |`);
  }
  out.push("", "503 refusals by reason (digits as #), with the send times of the first and last:", "", "| reason | count | first s | last s |", "|---|---:|---:|---:|", ...Object.entries(tally.refusalReasons).sort((a, b) => b[1].count - a[1].count).map(([r, n]) => `| ${r} | ${n.count} | ${n.firstS.toFixed(1)} | ${n.lastS.toFixed(1)} |`));
  out.push("", "## Invalid requests", "", "Expected: the protocol's status for each; a 503 refusal (front-door shedding before the body is read) is also acceptable.", "", "| case | expected | got | first message per status |", "|---|---|---|---|");
  for (const [name, entry] of [...tally.invalid].sort()) {
    const isOff = Object.keys(entry.counts).some((s) => !entry.expected.map(String).includes(s) && s !== "503");
    out.push(`| ${name} | ${entry.expected.join(", ")} | ${isOff ? "**" : ""}${Object.entries(entry.counts).map(([s, n]) => `${s}: ${n}`).join(", ")}${isOff ? "**" : ""} | ${Object.entries(entry.messages).map(([s, m]) => `${s}: ${m.replace(/\|/g, "\\|")}`).join("; ")} |`);
  }
  out.push("", "## Latency of valid 200s", "", "From send to the whole answer, valid-json and valid-binary requests whose outputs were their own.", "", "| model | n | p50 ms | p99 ms |", "|---|---:|---:|---:|");
  for (const [m, l] of [["all", latency.all] as const, ...Object.entries(latency.perModel)]) out.push(`| ${m} | ${l.n} | ${l.p50Ms} | ${l.p99Ms} |`);
  const loads = run.rss.map((s) => s.load1);
  out.push(
    "",
    `## RSS per process (MiB; warm-up ends at ${run.warmUpS} s; sampled every 5 s)`,
    "",
    `Runtime: the Worker's workerd (the Worker and its Durable Objects) and the origin replicas. Dev server: wrangler dev's launcher and node process, its proxy workerd (every request passes through it locally; production has no such hop) and esbuild. The bench process holds the run's tallies and is not judged. CPU: the process's CPU time over the time it was sampled, % of one core. Machine load average (1 min) over the run: mean ${(loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length)).toFixed(1)}, max ${Math.max(...loads).toFixed(1)} on ${cpus().length} cores (others' work included).`,
    "",
    "| process | judged as | start | after warm-up | end | max | growth after warm-up | | CPU % |",
    "|---|---|---:|---:|---:|---:|---:|---|---:|",
  );
  for (const g of growth) out.push(`| ${g.key} | ${g.group === "bench" || g.group === "baseline" ? `not judged${g.group === "baseline" ? " (baseline)" : ""}` : g.group} | ${mib(g.startMiB)} | ${mib(g.warmMiB)} | ${mib(g.endMiB)} | ${mib(g.maxMiB)} | ${g.growthPct === null ? "n/a (not running at both times)" : `${g.growthPct.toFixed(1)} %`} | ${g.group === "bench" || g.group === "baseline" || g.growthPct === null ? "" : g.growthPct < MAX_GROWTH_PCT ? "pass" : "**FAIL**"} | ${g.cpuPct.toFixed(0)} |`);
  if (heap.length) {
    out.push(
      "",
      `Each workerd (${heap.map((h) => h.key).join(", ")}) had a full garbage collection (HeapProfiler.collectGarbage over its inspector) before every sample, so its RSS above is what it holds, not garbage waiting for a collection. Its RSS just before the collection, and its JS heap in use just after:`,
      "",
      "| process | RSS before collection: after warm-up | end | max | growth | JS heap in use after collection: after warm-up | end | max | collections |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...heap.map((h) => {
        const b = beforeCollection.find((g) => g.key === h.key);
        const heapMiB = (v: number | null) => (v === null ? "-" : v.toFixed(1));
        return `| ${h.key} | ${mib(b?.warmMiB ?? null)} | ${mib(b?.endMiB ?? null)} | ${mib(b?.maxMiB ?? null)} | ${b?.growthPct == null ? "-" : `${b.growthPct.toFixed(1)} %`} | ${heapMiB(h.warmMiB)} | ${heapMiB(h.endMiB)} | ${heapMiB(h.maxMiB)} | ${h.collections} |`;
      }),
    );
  }
  out.push("", "## Incidents (first 10 of each)", "");
  const lostIncidents = { lost: tally.lost.map((l) => ({ ...l, detail: `${l.detail}${isNearRestart(l, run.restarts) ? " (near a Worker restart)" : ""}` })) };
  for (const [name, list] of Object.entries({ ...lostIncidents, ...tally.incidents })) {
    if (!list.length) continue;
    out.push(`- ${name}:`, ...list.slice(0, 10).map((i) => `  - ${i.atS.toFixed(1)} s ${i.kind} ${i.target}: ${i.detail}`));
  }
  if (tally.lost.length === 0 && Object.values(tally.incidents).every((l) => l.length === 0)) out.push("None.");
  out.push(
    "",
    "## Method",
    "",
    `Mix: ${run.mix.map(([k, w]) => `${k} ${w * 100} %`).join(", ")}; valid requests by model: ${run.modelMix.map(([m, w]) => `${m} ${w * 100} %`).join(", ")}. Tiny timeouts: parameters.timeout_ms 1-5 ms (200 or a 503 refusal expected). Aborts: the client aborts after 0-50 ms. Raw partial: node:net sends the request line, headers (Content-Length of the whole body) and part of the body, then closes after 0-50 ms.`,
    "",
    `Correctness: each valid request carries a unique id and one of ${run.pools.map((p) => `${p.seeds.length} ${p.model}`).join(", ")} seeded inputs (ppocr-rec W 32 or 64, ppocr-det 64x64 or 96x96); its answer must echo the id and match onnxruntime-node's outputs for that seed within ${TOLERANCE} absolute (WASM and native kernels differ by ~1e-4 at most; every output is a probability or an LSTM state in [-1, 1]). Pooled seeds differ pairwise by at least ${SEPARATION} x that (smallest: ${run.pools.map((p) => `${p.model} ${p.minSeparation.toFixed(3)}`).join(", ")}), so an answer holding another request's row is caught as misrouted.`,
    "",
  );
  return out.join("\n");
}

/** The figure: RSS of each process (before and after each collection, where collected) and the status mix over time. Takes what it reads of a run, so a saved report (its json) re-renders it. */
export function soakFigure(run: Pick<SoakRun, "rss" | "durationS" | "ratePerS" | "warmUpS" | "restarts"> & { tally: Pick<SoakTally, "timeline"> }): string {
  const keys = [...new Set(run.rss.flatMap((s) => Object.keys(s.rssKiB)))];
  const collected = collectedKeys(run.rss);
  const line = (key: string, field: "rssKiB" | "rssBeforeKiB") => run.rss.map((s) => [s.atS, s[field]?.[key] === undefined ? NaN : s[field][key] / 1024] as [number, number]);
  const rssSeries: Series[] = keys.flatMap((key, i) => {
    const color = COLORS[i % COLORS.length]!;
    const after: Series = { name: collected.includes(key) ? `${key} (after collection)` : key, color, points: line(key, "rssKiB") };
    return collected.includes(key) ? [after, { name: `${key} (before collection)`, color, dash: "6 3", points: line(key, "rssBeforeKiB") }] : [after];
  });
  const perS = (pick: (b: SoakTally["timeline"][number]) => number): Array<[number, number]> => run.tally.timeline.map((b, i) => [i * 5, pick(b) / 5]);
  return renderFigure({
    title: `Soak: RSS per process and status mix (${run.durationS} s at ${run.ratePerS}/s)`,
    xLabel: "time (s)",
    xMaxS: run.durationS,
    vLines: [{ x: run.warmUpS, label: "end of warm-up" }, ...run.restarts.map((r) => ({ x: r.atS, label: "Worker restart" }))],
    panels: [
      { yLabel: "RSS (MiB)", series: rssSeries },
      {
        yLabel: "requests/s (5-s buckets)",
        series: [
          { name: "sent", color: "#7f7f7f", points: perS((b) => b.sent) },
          { name: "200", color: "#2ca02c", points: perS((b) => b.ok) },
          { name: "503 refusal", color: "#ff7f0e", points: perS((b) => b.refused) },
          { name: "failed", color: "#d62728", points: perS((b) => b.failed) },
        ],
      },
    ],
  });
}
