/**
 * `npm run bench -- soak [--duration-s 600] [--rate 40] [--warm-up-s 120] [--origins 1] [--max-origins 2] [--quiet] [--platform workerd]`:
 * does the real local stack (startStack: wrangler dev, 1-2 gpu-origin replicas, the pool agent)
 * stay correct and flat in memory under ten minutes of mixed traffic? Open-loop Poisson arrivals
 * (seeded) mix valid requests (JSON and binary extension) for silero-vad, ppocr-cls, ppocr-rec at
 * the edge and ppocr-det on the origin, requests with a 1-5 ms timeout_ms, clients that abort
 * after 0-50 ms, raw sockets that send the headers and part of the body and close, and invalid
 * requests (bench/lib/soak-invalid.ts). Every valid request carries a unique id and one of a pool
 * of seeded inputs whose outputs onnxruntime-node computed first: an answer must echo its id and
 * hold its own seed's outputs. RSS of every process of the stack (and of this one) is sampled
 * every 5 s. Beside the stack, a no-op Worker under its own wrangler dev (src/edge/noop-worker.ts)
 * gets a copy of every request: its workerd's growth is the platform's own, and the runtime's is
 * judged beyond it. Writes bench/reports/soak.{json,md} and bench/reports/soak-rss.svg.
 * With --platform workerd, the edge Worker and the no-op run as deploy bundles on plain workerd
 * (bench/lib/plain-workerd.ts), each workerd gets a full garbage collection over its inspector
 * before every RSS sample (so what is judged is memory held, not garbage not yet collected), and the
 * reports are soak-workerd.*.
 * Bounded: at most 1.5 x rate x duration requests, none sent after the duration, each request
 * bounded by its deadline plus LOST_MARGIN_MS; the stack is stopped by its process ids.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { readManifest } from "../gpu-origin/read-manifest";
import { isDevProxy } from "../src/cli/process-cpu";
import { freePort, ROOT, type Started } from "../src/cli/processes";
import { type Progress, startProgress } from "../src/cli/progress";
import { startStack, type Stack } from "../src/cli/stack";
import { deadlineBudgetMs } from "../src/models/manifest";
import { INFERENCE_HEADER_LENGTH } from "../src/protocol/oip-binary";
import { collectGarbage, connectInspector, type InspectorSession } from "./lib/inspector";
import { decodeAnswer } from "./lib/oip-answer";
import { seededRandom } from "./lib/open-loop";
import { RestartWatch } from "./lib/restart-watch";
import { commandLine, processAndDescendants, RssSampler, type SampledProcess } from "./lib/rss-sampler";
import { mirrorTo, send, sendPartial, type Outcome } from "./lib/soak-client";
import { invalidCases } from "./lib/soak-invalid";
import { buildPools, requestBody, verdictOf, type ModelPool, type SeedCase } from "./lib/soak-models";
import { edgeStarterOn, type Platform } from "./lib/plain-workerd";
import { writeSoakReports } from "./lib/soak-report";
import { categorise, categorisePartial, type Kind, SoakTally } from "./lib/soak-tally";

/** Share of each kind of traffic. */
const MIX: Array<[Kind, number]> = [
  ["valid-json", 0.2],
  ["valid-binary", 0.35],
  ["tiny-timeout", 0.1],
  ["abort", 0.1],
  ["raw-partial", 0.05],
  ["invalid", 0.2],
];
/** Share of each model among valid requests (ppocr-rec and ppocr-det cost the most per request). */
const MODEL_MIX: Array<[string, number]> = [
  ["silero-vad", 0.4],
  ["ppocr-cls", 0.25],
  ["ppocr-rec", 0.15],
  ["ppocr-det", 0.2],
];
/** A request with no answer this long after its deadline is lost. */
const LOST_MARGIN_MS = 10_000;
/** An answer this long after its deadline is reported late (not a failure). */
const LATE_MARGIN_MS = 1_000;
/** Client time limit of invalid requests. */
const INVALID_TIMEOUT_MS = 10_000;
const RSS_INTERVAL_MS = 5_000;
/** Most requests in flight; past it an arrival is skipped (and counted). */
const MAX_IN_FLIGHT = 2_000;
const POOL_SIZE = 16;

/** The soak's options, parsed and checked by `npm run bench -- soak` (bench/index.ts): duration (0, 3600] s, rate (0, 200]/s, warm-up [0, duration) s, 1 <= origins <= maxOrigins <= 4. */
export interface SoakOptions {
  durationS: number;
  rate: number;
  /** Default: a fifth of the duration, at most 120 s. */
  warmUpS?: number;
  origins: number;
  maxOrigins: number;
  seed: number;
  quiet: boolean;
  /** Where the edge Worker and the no-op baseline run: under wrangler dev (npm start's) or on plain workerd (the deploy artifact). */
  platform: Platform;
}

const pick = <T>(random: () => number, weighted: Array<[T, number]>): T => {
  let r = random() * weighted.reduce((s, [, w]) => s + w, 0);
  for (const [value, w] of weighted) if ((r -= w) < 0) return value;
  return weighted.at(-1)![0];
};

/** Full garbage collections of workerd isolates over their inspectors (plain workerd), and their JS heap in use after it. */
class GarbageCollector {
  private constructor(private readonly isolates: Array<{ session: InspectorSession; started: Started }>) {}

  static async open(isolates: Array<{ inspectorPort: number; started: Started }>): Promise<GarbageCollector> {
    const sessions = await Promise.all(isolates.map(async ({ inspectorPort, started }) => ({ session: await connectInspector(inspectorPort), started })));
    return new GarbageCollector(sessions);
  }

  /** Collects in every isolate at once; resolves with each workerd's JS heap in use afterwards, MiB, by pid. */
  async collect(): Promise<Map<number, number>> {
    const poke = (url: string) => () => fetch(`${url}/v2/health/live`).then((r) => r.arrayBuffer());
    const heaps = await Promise.all(this.isolates.map(async ({ session, started }) => [started.process.pid!, (await collectGarbage(session, poke(started.url))) / 2 ** 20] as const));
    return new Map(heaps);
  }

  close(): void {
    for (const { session } of this.isolates) session.close();
  }
}

/** A short name for a process of the edge's tree. */
function roleOf(command: string, edgePort: string): string {
  if (/esbuild/.test(command)) return "esbuild";
  if (/workerd/.test(command)) return isDevProxy(command, edgePort) ? "workerd proxy" : "workerd Worker";
  if (/wrangler-dist\/cli/.test(command)) return "wrangler node";
  if (/wrangler/.test(command)) return "wrangler";
  return command.split(" ")[0]!.split("/").at(-1) ?? "?";
}

/** What the stack's processes are, for the RSS sampler: this process, wrangler and its children (workerd), each replica. */
function processesOf(stack: Stack): SampledProcess[] {
  const edgePort = new URL(stack.edge.url).port;
  const edge = stack.edge.process.pid === undefined ? [] : processAndDescendants(stack.edge.process.pid).map((pid) => ({ key: `${roleOf(commandLine(pid), edgePort)} ${pid}`, pid }));
  const origins = stack.origins().flatMap((o) => (o.pid === undefined ? [] : [{ key: `origin :${o.port} ${o.pid}`, pid: o.pid }]));
  return [{ key: `bench ${process.pid}`, pid: process.pid }, ...edge, ...origins];
}

/** The baseline's processes, keyed "baseline <role>". */
function baselineProcesses(baseline: Started): SampledProcess[] {
  const port = new URL(baseline.url).port;
  return baseline.process.pid === undefined ? [] : processAndDescendants(baseline.process.pid).map((pid) => ({ key: `baseline ${roleOf(commandLine(pid), port)} ${pid}`, pid }));
}

interface Sender {
  baseUrl: string;
  pools: Map<string, ModelPool>;
  deadlineMs: Map<string, number>;
  tally: SoakTally;
  random: () => number;
}

/** Sends one valid request of `kind` and records its outcome and the check of its answer. */
async function sendValid(s: Sender, kind: Kind, i: number, atS: number): Promise<void> {
  const model = pick(s.random, MODEL_MIX);
  const pool = s.pools.get(model)!;
  const seed: SeedCase = pool.seeds[Math.floor(s.random() * pool.seeds.length)]!;
  const isBinary = kind === "valid-binary" || (kind !== "valid-json" && s.random() < 0.5);
  const clientTimeoutMs = kind === "tiny-timeout" ? 1 + Math.floor(s.random() * 5) : undefined;
  const parameters = { ...(clientTimeoutMs !== undefined && { timeout_ms: clientTimeoutMs }), ...((pool.isBinaryOutputOnly || (isBinary && s.random() < 0.5)) && { binary_data_output: true }) };
  const id = `soak-${i}`;
  const { body, headers } = requestBody(seed, id, parameters, isBinary);
  const deadlineMs = Math.min(s.deadlineMs.get(model)!, clientTimeoutMs ?? Infinity);
  const abortAfterMs = kind === "abort" ? s.random() * 50 : undefined;
  const timeoutMs = deadlineMs + LOST_MARGIN_MS;
  const outcome = await send(s.baseUrl, { method: "POST", path: `/v2/models/${model}/infer`, headers, body }, { timeoutMs, ...(abortAfterMs !== undefined && { abortAfterMs }) });
  const result = categorise(outcome);
  s.tally.record(kind, model, atS, result, { lateByMs: outcome.kind === "answer" ? outcome.latencyMs - deadlineMs - LATE_MARGIN_MS : 0, timeoutMs });
  if (outcome.kind !== "answer" || outcome.status !== 200) return;
  const decoded = decodeAnswer(outcome.body, headerOf(outcome, INFERENCE_HEADER_LENGTH));
  const verdict = decoded.isReadable ? verdictOf(decoded.outputs, seed, pool) : { kind: "unreadable" as const, reason: decoded.reason };
  s.tally.recordAnswer(kind, model, atS, id, decoded.isReadable ? decoded.id : undefined, verdict, outcome.latencyMs);
}

function headerOf(outcome: Extract<Outcome, { kind: "answer" }>, name: string): string | undefined {
  const v = outcome.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A raw client: headers and part of a valid body, then close after 0-50 ms. */
async function sendRawPartial(s: Sender, atS: number): Promise<void> {
  const model = pick(s.random, MODEL_MIX);
  const pool = s.pools.get(model)!;
  const seed = pool.seeds[Math.floor(s.random() * pool.seeds.length)]!;
  const { body, headers } = requestBody(seed, `partial-${atS}`, {}, s.random() < 0.5);
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const outcome = await sendPartial(s.baseUrl, { method: "POST", path: `/v2/models/${model}/infer`, headers, body: bytes }, Math.floor(s.random() * bytes.length), s.random() * 50);
  s.tally.record("raw-partial", model, atS, categorisePartial(outcome));
}

/** The open loop: Poisson arrivals at `ratePerS` for `durationS`, each of a kind drawn from MIX. */
async function drive(s: Sender, ratePerS: number, durationS: number, onSendingDone: () => void): Promise<void> {
  const invalid = invalidCases();
  const inFlight = new Set<Promise<void>>();
  const startMs = performance.now();
  const maxRequests = Math.ceil(1.5 * ratePerS * durationS);
  let nextAtMs = 0;
  for (let i = 0; i < maxRequests; i++) {
    nextAtMs += (-Math.log(1 - s.random()) / ratePerS) * 1000;
    if (nextAtMs > durationS * 1000) break;
    const waitMs = startMs + nextAtMs - performance.now();
    if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
    const atS = nextAtMs / 1000;
    if (inFlight.size >= MAX_IN_FLIGHT) {
      s.tally.counts.skipped++;
      continue;
    }
    const kind = pick(s.random, MIX);
    let task: Promise<void>;
    if (kind === "invalid") {
      const c = invalid[Math.floor(s.random() * invalid.length)]!;
      task = send(s.baseUrl, c, { timeoutMs: INVALID_TIMEOUT_MS }).then((outcome) => {
        const result = categorise(outcome);
        s.tally.record("invalid", c.name, atS, result, { timeoutMs: INVALID_TIMEOUT_MS });
        s.tally.recordInvalid(c.name, c.expected, atS, result);
      });
    } else if (kind === "raw-partial") {
      task = sendRawPartial(s, atS);
    } else {
      task = sendValid(s, kind, i, atS);
    }
    const tracked = task.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  onSendingDone();
  await Promise.all(inFlight);
}

/** Tries a post-check request at most this many times, waiting out each 503's Retry-After (at most 5 s). */
const POST_CHECK_TRIES = 4;

/** After the soak: is the edge ready, and does one valid request per model still get its own outputs (503 refusals retried)? */
async function postCheck(s: Sender): Promise<{ readyStatus: number; models: Record<string, string> }> {
  const ready = await send(s.baseUrl, { method: "GET", path: "/v2/health/ready", headers: {} }, { timeoutMs: 10_000 });
  const models: Record<string, string> = {};
  for (const [model, pool] of s.pools) {
    const seed = pool.seeds[0]!;
    const { body, headers } = requestBody(seed, "post-check", pool.isBinaryOutputOnly ? { binary_data_output: true } : {}, true);
    for (let attempt = 1; attempt <= POST_CHECK_TRIES; attempt++) {
      const outcome = await send(s.baseUrl, { method: "POST", path: `/v2/models/${model}/infer`, headers, body }, { timeoutMs: 60_000 });
      const retry = outcome.kind === "answer" && outcome.status === 503 ? Number(headerOf(outcome, "retry-after") ?? 1) : undefined;
      if (outcome.kind !== "answer") models[model] = outcome.kind;
      else if (outcome.status !== 200) models[model] = `${outcome.status} ${categorise(outcome).message ?? ""} (try ${attempt})`;
      else {
        const decoded = decodeAnswer(outcome.body, headerOf(outcome, INFERENCE_HEADER_LENGTH));
        models[model] = decoded.isReadable ? (verdictOf(decoded.outputs, seed, pool).kind === "own" ? "200, own outputs" : "200, WRONG outputs") : `200, unreadable: ${decoded.reason}`;
      }
      if (retry === undefined || attempt === POST_CHECK_TRIES) break;
      await new Promise((r) => setTimeout(r, Math.min(5, Math.max(0.1, retry)) * 1000));
    }
  }
  return { readyStatus: ready.kind === "answer" ? ready.status : 0, models };
}

async function fetchStats(baseUrl: string, models: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const model of models) {
    const outcome = await send(baseUrl, { method: "GET", path: `/v2/models/${model}/stats`, headers: {} }, { timeoutMs: 10_000 });
    out[model] = outcome.kind === "answer" && outcome.status === 200 ? JSON.parse(outcome.body.toString("utf8")) : outcome.kind;
  }
  return out;
}

export async function main(options: SoakOptions): Promise<void> {
  const durationS = options.durationS;
  const ratePerS = options.rate;
  const warmUpS = options.warmUpS ?? Math.min(120, durationS / 5);
  const replicas = options.origins;
  const maxReplicas = options.maxOrigins;
  const command = `npm run bench -- soak ${process.argv.slice(3).join(" ")}`.trim();

  console.log(`soak: computing references (${POOL_SIZE} seeds per model, onnxruntime-node)`);
  const pools = await buildPools(join(ROOT, "models"), POOL_SIZE);
  for (const p of pools) console.log(`  ${p.model}: ${p.seeds.length} seeds, min pairwise output distance ${p.minSeparation.toFixed(4)}`);
  const deadlineMs = new Map(pools.map((p) => [p.model, deadlineBudgetMs(readManifest(join(ROOT, "models"), p.model))]));

  const port = await freePort();
  const stateDir = join(ROOT, ".wrangler", `state-${port}`);
  rmSync(stateDir, { recursive: true, force: true });
  console.log(`soak: starting the stack (edge on 127.0.0.1:${port}, ${replicas}-${maxReplicas} origin replicas)`);
  // On plain workerd, each workerd's inspector is open: a full garbage collection precedes every RSS sample.
  const start = edgeStarterOn(options.platform);
  const inspectorPorts = options.platform === "workerd" ? { edge: await freePort(), baseline: await freePort() } : undefined;
  const stack = await startStack({ replicas, maxReplicas, port, originPort: 8870, stdio: options.quiet ? "ignore" : "inherit", edgeStarter: (o) => start({ ...o, inspectorPort: inspectorPorts?.edge }) });
  // The platform baseline: a no-op Worker on the same platform (its own process), sent a copy of every request.
  const baselinePort = await freePort();
  const stopAll = async (error: unknown, baseline?: Started) => {
    await baseline?.stop(5_000);
    await stack.stop();
    throw error;
  };
  const baseline = await start({ port: baselinePort, inspectorPort: inspectorPorts?.baseline, script: "src/edge/noop-worker.ts", vars: { CONTROL_MODE: "static" } }).catch((error: unknown) => stopAll(error));
  const collector = inspectorPorts && (await GarbageCollector.open([{ inspectorPort: inspectorPorts.edge, started: stack.edge }, { inspectorPort: inspectorPorts.baseline, started: baseline }]).catch((error: unknown) => stopAll(error, baseline)));
  console.log(`soak: platform baseline (a no-op Worker) on 127.0.0.1:${baselinePort} gets a copy of every request${collector ? "; a full garbage collection of each workerd precedes every RSS sample" : ""}`);
  const tally = new SoakTally();
  const sender: Sender = { baseUrl: stack.edge.url, pools: new Map(pools.map((p) => [p.model, p])), deadlineMs, tally, random: seededRandom(Number(options.seed)) };
  const sampler = new RssSampler(() => [...processesOf(stack), ...baselineProcesses(baseline)], RSS_INTERVAL_MS, collector && (() => collector.collect()));
  // wrangler dev restarts the Worker's workerd when a source file changes: such a restart explains what it drops.
  const watch = stack.edge.process.pid === undefined ? undefined : new RestartWatch(stack.edge.process.pid, /workerd/);
  let progress: NodeJS.Timeout | undefined;
  // A bar over the seconds of traffic, where someone watches (src/cli/progress.ts).
  let bar: Progress | undefined;
  let ticking: NodeJS.Timeout | undefined;
  let post: Awaited<ReturnType<typeof postCheck>>;
  let stats: Record<string, unknown>;
  const startedAt = new Date().toISOString();
  try {
    // The first requests create each model's sessions (seconds): not part of the soak.
    for (const p of pools) {
      const outcomes = [];
      for (const seed of p.seeds.slice(0, 2)) outcomes.push(await send(stack.edge.url, { method: "POST", path: `/v2/models/${p.model}/infer`, ...requestBody(seed, "warm", { binary_data_output: true }, true) }, { timeoutMs: 60_000 }));
      console.log(`  warm-up ${p.model}: ${outcomes.map((o) => `${o.kind === "answer" ? o.status : o.kind} in ${o.latencyMs.toFixed(0)} ms`).join(", ")}`);
    }
    console.log(`soak: ${durationS} s of mixed traffic at ${ratePerS} requests/s (warm-up ${warmUpS} s)`);
    mirrorTo(baseline.url);
    sampler.start();
    watch?.start();
    for (const p of processesOf(stack)) console.log(`  sampling ${p.key}: ${commandLine(p.pid).slice(0, 140)}`);
    progress = setInterval(() => console.log(`  ${tally.counts.sent} done, ${tally.counts.lost} lost, ${tally.counts.failures5xx} 5xx failures, ${tally.counts.misrouted + tally.counts.wrongOutputs + tally.counts.idMismatch} misrouted or wrong`), 30_000);
    bar = startProgress("soak", Math.ceil(durationS));
    ticking = setInterval(() => {
      bar!.step(`${tally.counts.sent} done, ${tally.counts.lost} lost`);
      bar!.tick();
    }, 1_000);
    await drive(sender, ratePerS, durationS, () => {
      void sampler.stop();
      clearInterval(ticking);
      bar!.stop();
    });
    mirrorTo(undefined);
    post = await postCheck(sender);
    stats = await fetchStats(stack.edge.url, pools.map((p) => p.model));
  } finally {
    clearInterval(progress);
    clearInterval(ticking);
    bar?.stop();
    await sampler.stop();
    collector?.close();
    watch?.stop();
    mirrorTo(undefined);
    await stack.stop();
    await baseline.stop(5_000);
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(join(ROOT, ".wrangler", `state-${baselinePort}`), { recursive: true, force: true });
  }
  writeSoakReports({ platform: options.platform, command, startedAt, durationS, ratePerS, warmUpS, replicas, maxReplicas, mix: MIX, modelMix: MODEL_MIX, lostMarginMs: LOST_MARGIN_MS, pools, tally, rss: sampler.samples, restarts: watch?.restarts ?? [], post, stats });
}
