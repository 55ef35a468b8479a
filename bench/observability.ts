/**
 * `npm run bench -- observability [--requests N]`: what metrics and API keys cost a request at
 * light load, side by side in one run. `wrangler dev` edges of this checkout run at once on
 * loopback, the same code with different vars:
 *
 * - bare: METRICS=false, no API_KEYS;
 * - metrics: METRICS=true (the request's series, delivered to its controller every 10 s);
 * - keys: API_KEYS with 8 keys (each request presents one, in turn): the key's hash and the
 *   constant-time compare over every entry;
 * - metrics + keys: both (the issue's target);
 * these without the bindings wrangler dev simulates beside the isolate (`withoutSimulatedBindings`),
 * which the next edges add back one at a time:
 * - + Analytics Engine (simulated): each request's data point;
 * - + limiter (simulated): the keys' rate limit;
 * - + request logs: LOG_REQUESTS=true too (the JSON line per request).
 *
 * Two processes of the same code differ at the p50 by about as much as the target (0.2 ms), and
 * one process can sit 1.5 ms off for its whole life. So each of ROUNDS rounds starts fresh
 * processes, PROCESSES of each of the first four configurations, and a configuration's p50 pools
 * all its processes; the interval of its difference from bare comes from a two-level bootstrap
 * (processes within each round, then requests), and the report lists each process's p50 and how
 * far two processes of the same code in one round differ. One request is in flight at a time, and the processes take turns request
 * by request (the order rotating), so they see the same machine. For silero-vad and ppocr-cls (one
 * row, binary tensors), plus CPU per request of each configuration's processes. CONTROL_MODE=static.
 * And a V8 CPU profile of a metrics + keys edge's isolate (bench/lib/isolate-profile.ts) attributes
 * its time per request to the metrics code and the keys code, a measure that does not depend on
 * which process is faster. Writes bench/reports/observability.{json,md}.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { treeCpuMs } from "../src/cli/process-cpu";
import { freePort, ROOT, startEdge, type Started } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { keyHash } from "../src/edge/access";
import { attributedMs, profileIsolate } from "./lib/isolate-profile";
import { binaryBody } from "../test/fixtures/model-inputs";
import { median, quantile, round } from "./lib/stats";

const MODELS = ["silero-vad", "ppocr-cls"] as const;
type Model = (typeof MODELS)[number];
/** Rounds; each starts fresh processes of every edge, so the rounds differ by process as well as by time. */
const ROUNDS = 3;
/** Processes per round of each measured configuration (bare, metrics, keys, metrics + keys), pooled. */
const PROCESSES = 2;
const WARM_UP_REQUESTS = 150;
const KEYS = 8;
/** Bootstrap resamples of the p50 difference. */
const RESAMPLES = 1_000;
/** The target: metrics and keys add at most this to a request's p50, ms. */
const TARGET_MS = 0.2;
/**
 * The functions (the bundle keeps their names) of each feature's work on a request: recording the
 * request's metrics (and, from it, the once-a-second delivery to the controller and the
 * controller's merge, which run in the same isolate under wrangler dev), and admitting its key.
 */
const FEATURE_FUNCTIONS = {
  metrics: new Set(["recordRequest", "deliver", "addMetrics"]),
  keys: new Set(["requireKey", "admitKey", "findKey", "keyHash", "presentedKey"]),
};

const bodies: Record<Model, ReturnType<typeof binaryBody>> = {
  "silero-vad": binaryBody("input", [1, 512], 12),
  "ppocr-cls": binaryBody("x", [1, 3, 48, 192], 11),
};

interface Variant {
  name: string;
  vars: Record<string, string>;
  /** Headers each request carries (its API key, by request number). */
  headers(i: number): Record<string, string>;
  /** A wrangler configuration other than the checkout's. */
  config?: string;
  /** Processes of it per round. */
  processes: number;
}

export interface ObservabilityOptions {
  /** Requests per edge, model and round. */
  requests: number;
}

/** A seeded generator for the bootstrap (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The median of a sample set, sorted in place. */
function medianInPlace(samples: Float64Array): number {
  samples.sort();
  return samples[Math.ceil(samples.length / 2) - 1]!;
}

/**
 * The 95 % interval of the pooled p50 of `b`'s processes minus `a`'s, by a two-level bootstrap
 * stratified by round: each resample draws, in every round, as many of that round's processes as
 * it had, with replacement, then each drawn process's latencies with replacement. So the interval
 * covers how processes of the same code differ, not only request-to-request noise, while every
 * round (its machine state) weighs the same in both.
 */
function medianDifferenceInterval(a: number[][], b: number[][], seed: number): [number, number] {
  const random = seeded(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const resample = (processes: number[][]) => {
    const perRound = processes.length / ROUNDS;
    const drawn = processes.map((_, i) => pick(processes.slice(Math.floor(i / perRound) * perRound, (Math.floor(i / perRound) + 1) * perRound)));
    const pooled = new Float64Array(drawn.reduce((n, xs) => n + xs.length, 0));
    let i = 0;
    for (const xs of drawn) for (let k = 0; k < xs.length; k++) pooled[i++] = pick(xs);
    return medianInPlace(pooled);
  };
  const differences = Array.from({ length: RESAMPLES }, () => resample(b) - resample(a));
  return [round(quantile(differences, 0.025), 3), round(quantile(differences, 0.975), 3)];
}

/** CPU ms so far of an edge's processes (wrangler, its dev proxy and the runtime). */
const edgeCpuMs = (edge: Started) => treeCpuMs(edge.process.pid!, /workerd|wrangler/)();

/**
 * This checkout's wrangler.toml without the bindings `wrangler dev` simulates beside the isolate:
 * KEY_RATE_LIMITER (a Durable Object and a SQL query on workerd's one thread; on Cloudflare a service
 * beside the isolate) and, unless `keepAnalytics`, INFERENCE_ANALYTICS (each data point a call to a
 * local simulation; on Cloudflare written by the runtime without waiting). Keys are then checked
 * without a rate limit, and metrics go to /metrics only.
 */
function withoutSimulatedBindings(keepAnalytics: boolean): string {
  let text = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/\[\[ratelimits\]\][^[]*/, "");
  if (!keepAnalytics) text = text.replace(/\[\[analytics_engine_datasets\]\][^[]*/, "");
  if (text.includes("KEY_RATE_LIMITER") || (!keepAnalytics && text.includes('binding = "INFERENCE_ANALYTICS"'))) throw new Error("wrangler.toml: cannot remove the simulated bindings");
  const path = join(ROOT, `wrangler.bench-${keepAnalytics ? "no-limiter" : "no-simulations"}.toml`);
  writeFileSync(path, text);
  return path;
}

async function send(edge: Started, model: Model, headers: Record<string, string>): Promise<number> {
  const startedAt = performance.now();
  const response = await fetch(`${edge.url}/v2/models/${model}/infer`, { method: "POST", body: bodies[model].body, headers: { ...bodies[model].headers, ...headers } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${model}: HTTP ${response.status}`);
  return performance.now() - startedAt;
}

/** A variant's latencies in round `r`, its processes pooled. */
const inRound = (processes: number[][], variant: Variant, r: number) => processes.slice(r * variant.processes, (r + 1) * variant.processes).flat();

/** One running edge process of a variant. */
interface Running {
  variant: number;
  edge: Started;
}

/** Starts `processes` edges of each variant, each on a port of its own (recorded in `ports` for cleanup). */
async function startEdges(variants: readonly Variant[], ports: number[]): Promise<Running[]> {
  const running: Running[] = [];
  try {
    for (const [v, variant] of variants.entries()) {
      for (let k = 0; k < variant.processes; k++) {
        // Each edge's port is picked just before it starts (the edges already running hold theirs),
        // and must differ from the others' (a port freePort just closed may be handed out again).
        let port = await freePort();
        while (ports.includes(port)) port = await freePort();
        ports.push(port);
        running.push({ variant: v, edge: await startEdge({ port, vars: variant.vars, ...(variant.config && { config: variant.config }) }) });
      }
    }
    return running;
  } catch (error) {
    await Promise.all(running.map(({ edge }) => edge.stop(2_000)));
    throw error;
  }
}

/** Per model and variant, each process's latencies (ms), and CPU per variant (ms). */
interface Samples {
  latencies: Record<Model, number[][][]>;
  cpuMs: Record<Model, number[]>;
}

/**
 * One round: fresh processes of every variant, warmed, then `requests` requests per process and
 * model, the processes taking turns request by request (the order rotating, so none always goes
 * first) with one request in flight.
 */
async function measureRound(variants: readonly Variant[], requests: number, round: number, ports: number[], samples: Samples): Promise<void> {
  const progress = startProgress(`observability round ${round + 1}/${ROUNDS}`, 1 + 2 * MODELS.length);
  progress.step("starting edges");
  const running = await startEdges(variants, ports);
  try {
    for (const model of MODELS) {
      progress.step(`${model} warm-up`);
      for (let i = 0; i < WARM_UP_REQUESTS; i++) for (const { variant, edge } of running) await send(edge, model, variants[variant]!.headers(i));
      progress.step(model);
      const latencies = running.map(() => [] as number[]);
      const cpuBefore = running.map(({ edge }) => edgeCpuMs(edge));
      for (let i = 0; i < requests; i++) {
        for (let k = 0; k < running.length; k++) {
          const p = (i + k) % running.length;
          latencies[p]!.push(await send(running[p]!.edge, model, variants[running[p]!.variant]!.headers(i)));
        }
      }
      running.forEach(({ variant, edge }, p) => {
        samples.cpuMs[model][variant]! += edgeCpuMs(edge) - cpuBefore[p]!;
        samples.latencies[model][variant]!.push(latencies[p]!);
      });
    }
  } finally {
    progress.stop();
    await Promise.all(running.map(({ edge }) => edge.stop(2_000)));
  }
}

export async function main({ requests }: ObservabilityOptions): Promise<void> {
  const keys = Array.from({ length: KEYS }, (_, i) => ({ name: `bench-${i}`, key: `eik_${randomBytes(24).toString("base64url")}` }));
  const apiKeys = JSON.stringify(await Promise.all(keys.map(async ({ name, key }) => ({ name, sha256: await keyHash(key), models: ["*"] }))));
  const keyHeader = (i: number) => ({ authorization: `Bearer ${keys[i % KEYS]!.key}` });
  const base = { CONTROL_MODE: "static", LOG_REQUESTS: "false" };
  const noLimiter = withoutSimulatedBindings(true);
  const noSimulations = withoutSimulatedBindings(false);
  const variants: Variant[] = [
    { name: "bare", vars: { ...base, METRICS: "false" }, headers: () => ({}), config: noSimulations, processes: PROCESSES },
    { name: "metrics", vars: { ...base, METRICS: "true" }, headers: () => ({}), config: noSimulations, processes: PROCESSES },
    { name: "keys", vars: { ...base, METRICS: "false", API_KEYS: apiKeys }, headers: keyHeader, config: noSimulations, processes: PROCESSES },
    { name: "metrics + keys", vars: { ...base, METRICS: "true", API_KEYS: apiKeys }, headers: keyHeader, config: noSimulations, processes: PROCESSES },
    { name: "+ Analytics Engine (simulated)", vars: { ...base, METRICS: "true", API_KEYS: apiKeys }, headers: keyHeader, config: noLimiter, processes: 1 },
    { name: "+ limiter (simulated)", vars: { ...base, METRICS: "true", API_KEYS: apiKeys }, headers: keyHeader, processes: 1 },
    { name: "+ request logs", vars: { ...base, METRICS: "true", API_KEYS: apiKeys, LOG_REQUESTS: "true" }, headers: keyHeader, processes: 1 },
  ];
  const ports: number[] = [];
  const perModel = <T>(make: () => T) => Object.fromEntries(MODELS.map((model) => [model, make()])) as Record<Model, T>;
  const samples: Samples = { latencies: perModel(() => variants.map(() => [])), cpuMs: perModel(() => variants.map(() => 0)) };
  try {
    for (let r = 0; r < ROUNDS; r++) await measureRound(variants, requests, r, ports, samples);
    const report: Record<string, unknown> = { date: new Date().toISOString(), requestsPerRound: requests, rounds: ROUNDS, processesPerRound: Object.fromEntries(variants.map((v) => [v.name, v.processes])), keys: KEYS, targetMs: TARGET_MS, edges: variants.map((v) => v.name), models: {}, processFloorMs: {} };
    for (const model of MODELS) {
      const processes = samples.latencies[model];
      const bare = processes[0]!;
      const bareP50 = median(bare.flat());
      (report.models as Record<string, unknown>)[model] = Object.fromEntries(
        variants.map((variant, v) => {
          const pooled = processes[v]!.flat();
          return [
            variant.name,
            {
              p50Ms: round(median(pooled), 3),
              p90Ms: round(quantile(pooled, 0.9), 3),
              addedP50Ms: round(median(pooled) - bareP50, 3),
              addedP50Interval95Ms: medianDifferenceInterval(bare, processes[v]!, 17 + v),
              addedP50ByRoundMs: Array.from({ length: ROUNDS }, (_, r) => round(median(inRound(processes[v]!, variant, r)) - median(inRound(bare, variants[0]!, r)), 3)),
              processP50Ms: processes[v]!.map((xs) => round(median(xs), 2)),
              cpuPerRequestMs: round(samples.cpuMs[model][v]! / pooled.length, 3),
            },
          ];
        }),
      );
      // How far two processes of the same code differ in one round: the method's floor.
      const pairs = variants.flatMap((variant, v) => (variant.processes < 2 ? [] : Array.from({ length: ROUNDS }, (_, r) => Math.abs(median(processes[v]![r * variant.processes + 1]!) - median(processes[v]![r * variant.processes]!)))));
      (report.processFloorMs as Record<string, unknown>)[model] = { medianAbsoluteDifference: round(median(pairs), 3), largest: round(Math.max(...pairs), 3), pairs: pairs.length };
    }
    report.profile = await profileFeatures(requests, { ...base, METRICS: "true", API_KEYS: apiKeys }, keyHeader, noSimulations, ports);
    writeReport(report);
  } finally {
    for (const port of ports) rmSync(join(ROOT, ".wrangler", `state-${port}`), { recursive: true, force: true });
    for (const config of [noLimiter, noSimulations]) rmSync(config, { force: true });
  }
}

/** Per model: the isolate's busy time and the metrics' and keys' share of it, ms per request, from a CPU profile of a metrics + keys edge. */
async function profileFeatures(requests: number, vars: Record<string, string>, headers: (i: number) => Record<string, string>, config: string, ports: number[]): Promise<Record<Model, ProfileReport>> {
  const [port, inspectorPort] = [await freePort(), await freePort()];
  ports.push(port);
  const edge = await startEdge({ port, vars, config, inspectorPort });
  try {
    const result = {} as Record<Model, ProfileReport>;
    for (const model of MODELS) {
      for (let i = 0; i < WARM_UP_REQUESTS; i++) await send(edge, model, headers(i));
      const profile = await profileIsolate(inspectorPort, async () => {
        for (let i = 0; i < requests; i++) await send(edge, model, headers(i));
      });
      const perRequest = (ms: number) => round(ms / requests, 3);
      const both = new Set([...FEATURE_FUNCTIONS.metrics, ...FEATURE_FUNCTIONS.keys]);
      result[model] = { requests, busyMs: perRequest(attributedMs(profile)), metricsMs: perRequest(attributedMs(profile, FEATURE_FUNCTIONS.metrics)), keysMs: perRequest(attributedMs(profile, FEATURE_FUNCTIONS.keys)), bothMs: perRequest(attributedMs(profile, both)) };
    }
    return result;
  } finally {
    await edge.stop(2_000);
  }
}

type ProfileReport = { requests: number; busyMs: number; metricsMs: number; keysMs: number; bothMs: number };

type ModelReport = Record<string, { p50Ms: number; p90Ms: number; addedP50Ms: number; addedP50Interval95Ms: [number, number]; addedP50ByRoundMs: number[]; processP50Ms: number[]; cpuPerRequestMs: number }>;

function writeReport(report: Record<string, unknown>): void {
  const dir = resolve(import.meta.dirname, "reports");
  writeFileSync(resolve(dir, "observability.json"), `${JSON.stringify(report, null, 2)}\n`);
  const processes = report.processesPerRound as Record<string, number>;
  const lines = [
    "# Observability overhead: metrics and API keys at light load",
    "",
    `${report.date}. \`npm run bench -- observability\`: ${report.rounds} rounds; each starts fresh \`wrangler dev\` edges of the same checkout on loopback (${processes.bare} processes each of bare, metrics, keys and metrics + keys, one of each of the rest), which take turns request by request with one request in flight (${report.requestsPerRound} requests per process and model a round, one-row binary requests). bare: METRICS=false, no keys. metrics: METRICS=true (each request's series; their delivery to the model's controller every 10 s). keys: API_KEYS (${report.keys} keys, one presented per request in turn: hash and constant-time compare). metrics + keys: both (the target). These four without the bindings wrangler dev simulates beside the isolate, which the next edges add back: + Analytics Engine (simulated): each request's INFERENCE_ANALYTICS data point (a call to a local simulation; on Cloudflare the runtime writes it without waiting). + limiter (simulated): KEY_RATE_LIMITER (a Durable Object and a SQL query on workerd's thread; on Cloudflare a service beside the isolate). + request logs: LOG_REQUESTS=true too. p50: over all of a configuration's processes pooled. Added p50: its p50 minus bare's, with a 95 % interval from a two-level bootstrap (processes within each round, then requests), and per round. CPU: user + system of the edges' wrangler and workerd processes per request. Target: metrics and keys add at most ${report.targetMs} ms to the p50.`,
    "",
    "| model | edge | processes | p50 ms | p90 ms | added p50 ms (95 % interval) | added p50 by round ms | p50 by process ms | CPU ms/request |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [model, variants] of Object.entries(report.models as Record<string, ModelReport>)) {
    for (const [name, v] of Object.entries(variants)) {
      const added = name === "bare" ? "" : `${v.addedP50Ms} (${v.addedP50Interval95Ms[0]} to ${v.addedP50Interval95Ms[1]})`;
      lines.push(`| ${model} | ${name} | ${v.processP50Ms.length} | ${v.p50Ms} | ${v.p90Ms} | ${added} | ${name === "bare" ? "" : v.addedP50ByRoundMs.join(", ")} | ${v.processP50Ms.join(", ")} | ${v.cpuPerRequestMs} |`);
    }
  }
  const floor = Object.entries(report.processFloorMs as Record<string, { medianAbsoluteDifference: number; largest: number; pairs: number }>).map(([model, f]) => `${model} by ${f.medianAbsoluteDifference} ms (median; largest ${f.largest} ms, over ${f.pairs} pairs)`);
  lines.push("", `Two processes of the same code in the same round differ at the p50 ${floor.join(", ")}: why each configuration runs in several processes, pooled.`);
  const profile = report.profile as Record<string, ProfileReport> | undefined;
  if (profile) {
    lines.push(
      "",
      "## The isolate's time by code (V8 CPU profile)",
      "",
      `A metrics + keys edge (no rate-limiting binding), one request in flight, profiled by its inspector while it served ${Object.values(profile)[0]?.requests ?? "–"} requests per model (sampling every 100 µs; the profiler slows the isolate, so these are upper bounds). Busy: the isolate's time per request that was not idle. Metrics: samples in recordRequest (the request's series) or in the delivery to the model's controller and its merge there (${[...FEATURE_FUNCTIONS.metrics].join(", ")}). Keys: ${[...FEATURE_FUNCTIONS.keys].join(", ")}. Target: both at most ${report.targetMs} ms.`,
      "",
      "| model | busy ms/request | metrics ms/request | keys ms/request | both ms/request | target |",
      "|---|---|---|---|---|---|",
      ...Object.entries(profile).map(([model, p]) => `| ${model} | ${p.busyMs} | ${p.metricsMs} | ${p.keysMs} | ${p.bothMs} | ${p.bothMs <= (report.targetMs as number) ? "met" : "missed"} |`),
    );
  }
  writeFileSync(resolve(dir, "observability.md"), `${lines.join("\n")}\n`);
  console.log(lines.slice(4).join("\n"));
}
