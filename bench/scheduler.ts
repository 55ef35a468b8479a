/**
 * `npm run bench -- scheduler [--platform workerd]`: the scheduler's targets against the stack
 * `npm start` runs (edge under wrangler dev, two origin replicas), on loopback; with --platform
 * workerd the edge runs as its deploy bundle on plain workerd (bench/lib/plain-workerd.ts), without
 * wrangler dev's proxy in front, and the reports are scheduler-workerd.*:
 * - Burst: 64 concurrent one-row ppocr-cls requests, JSON and binary bodies, a few rounds each:
 *   how many are answered 200, the largest batch, and when the last answer arrives.
 * - Capacity: closed-loop load (32 clients in flight, binary bodies) for a few seconds; the
 *   throughput of 200s is the measured capacity.
 * - Overload: open-loop Poisson load at 3x that capacity: goodput (200s per second over the run,
 *   and those within their deadline) over capacity, admitted requests' latency against their
 *   deadline (maxLatencyMs), how fast refusals are answered (server-side Server-Timing total, and
 *   at the client), and what the edge's workerd spends, in CPU, on a request served at capacity and
 *   on a refusal under overload; beside it, the platform's floor for a refusal: the no-op Worker
 *   (src/edge/noop-worker.ts, `?refuse=1`) on the same platform answering 503 at once, body unread,
 *   at the overload's rate of refusals.
 * Writes bench/reports/scheduler.{json,md} (or scheduler-workerd.*) and the batch-size distribution,
 * scheduler.svg. Bounded in requests and time.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readManifest } from "../gpu-origin/read-manifest";
import { treeCpuMs, treeThreadCpuMs } from "../src/cli/process-cpu";
import { freePort, ROOT } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { startStack } from "../src/cli/stack";
import { deadlineBudgetMs } from "../src/models/manifest";
import type { SchedulerStatsSnapshot } from "../src/scheduler/scheduler-stats";
import { binaryBody, clsBody } from "../test/fixtures/model-inputs";
import { header, post } from "../src/cli/loopback-http";
import { openLoop } from "./lib/open-loop";
import { edgeStarterOn, reportNameOn, type Platform } from "./lib/plain-workerd";
import { PALETTE, renderFigure } from "./lib/svg-plot";
import { quantile, round } from "./lib/stats";

const MODEL = "ppocr-cls";
const BURST = 64;
const BURST_ROUNDS = 3;
const CLOSED_LOOP_CLIENTS = 32;
const CAPACITY_MS = 5_000;
const OVERLOAD_FACTOR = 3;
const OVERLOAD_MS = 6_000;

type Body = { body: string | Uint8Array<ArrayBuffer>; headers: Record<string, string> };

function bodies(): Record<"json" | "binary", Body> {
  return { json: { body: JSON.stringify(clsBody(1, 21)), headers: { "content-type": "application/json" } }, binary: binaryBody("x", [1, 3, 48, 192], 21) };
}

/** CPU ms of each thread between two readings of treeThreadCpuMs, and the busiest thread's key (the isolate's: workerd runs JavaScript on one thread). */
function busiestThread(before: Map<string, number>, after: Map<string, number>): { thread: string; ms: number } {
  let busiest = { thread: "", ms: 0 };
  for (const [thread, ms] of after) if (ms - (before.get(thread) ?? 0) > busiest.ms) busiest = { thread, ms: ms - (before.get(thread) ?? 0) };
  return busiest;
}

/**
 * The platform's floor for a refusal: workerd CPU per request (net of its idle CPU), in all and on
 * its busiest thread (the isolate's), of the no-op Worker on `platform` answering 503 at once, body
 * unread, to open-loop `body`s at `ratePerS`.
 */
async function refusalFloorCpuMs(platform: Platform, body: Body, ratePerS: number): Promise<{ processMs: number; threadMs: number }> {
  const noop = await edgeStarterOn(platform)({ port: await freePort(), script: "src/edge/noop-worker.ts", vars: {} });
  try {
    const [cpuMs, threadCpuMs] = [treeCpuMs(noop.process.pid!, /workerd/), treeThreadCpuMs(noop.process.pid!, /workerd/)];
    const [idleCpuMs, idleThreads, idleStartMs] = [cpuMs(), threadCpuMs(), performance.now()];
    await new Promise((done) => setTimeout(done, 1_000));
    const [idleEndCpuMs, idleEndThreads, idleMs] = [cpuMs(), threadCpuMs(), performance.now() - idleStartMs];
    const [startCpuMs, startThreads, startMs] = [cpuMs(), threadCpuMs(), performance.now()];
    const load = await openLoop({ url: `${noop.url}/v2/models/${MODEL}/infer?refuse=1`, ...body, ratePerS, count: Math.ceil((ratePerS * OVERLOAD_MS) / 1000), maxDurationMs: OVERLOAD_MS + 10_000, seed: 4 });
    const elapsedMs = performance.now() - startMs;
    const { thread, ms } = busiestThread(startThreads, threadCpuMs());
    const threadIdlePerMs = ((idleEndThreads.get(thread) ?? 0) - (idleThreads.get(thread) ?? 0)) / idleMs;
    const processIdlePerMs = (idleEndCpuMs - idleCpuMs) / idleMs;
    const sent = Math.max(1, load.sent);
    return { processMs: Math.max(0, cpuMs() - startCpuMs - processIdlePerMs * elapsedMs) / sent, threadMs: Math.max(0, ms - threadIdlePerMs * elapsedMs) / sent };
  } finally {
    await noop.stop(5_000);
  }
}

/**
 * What the isolate's one thread allows under overload, as a share of capacity. At capacity the
 * thread is saturated by served requests (S ms of it each), so its budget is capacity x S a
 * second. Over the overload run, requests arrive at `arrivalsOverCapacity` (A) x capacity a second
 * of its elapsed time (the sending, then the drain); x served and the rest refused at r ms each
 * share the budget: x / capacity = (1 - A r / S) / (1 - r / S). With r our refusal's thread time it
 * is what the model expects of the run (a check of the model against the measured goodput); with r
 * the platform's floor (the no-op Worker's refusal), what any refusal path would get on this thread.
 */
function goodputBounds(arrivalsOverCapacity: number, servedThreadMs: number, refusalThreadMs: number, floorThreadMs: number) {
  const share = (refusalMs: number) => round(Math.max(0, 1 - (arrivalsOverCapacity * refusalMs) / servedThreadMs) / (1 - refusalMs / servedThreadMs), 3);
  return { goodputModelled: share(refusalThreadMs), goodputBoundAtFloor: share(floorThreadMs) };
}

async function send(url: string, { body, headers }: Body): Promise<{ status: number; batch: number; ms: number }> {
  const startMs = performance.now();
  const answer = await post(url, body, headers);
  return { status: answer.status, batch: Number(header(answer, "x-batch-size") ?? 0), ms: performance.now() - startMs };
}

/** One burst of BURST concurrent requests. */
async function burst(url: string, body: Body) {
  const answers = await Promise.all(Array.from({ length: BURST }, () => send(url, body)));
  return {
    ok: answers.filter((a) => a.status === 200).length,
    statuses: Object.fromEntries([...new Set(answers.map((a) => a.status))].map((s) => [s, answers.filter((a) => a.status === s).length])),
    largestBatch: Math.max(...answers.map((a) => a.batch)),
    lastAnswerMs: round(Math.max(...answers.map((a) => a.ms)), 1),
  };
}

/** Closed loop: CLOSED_LOOP_CLIENTS clients each sending back to back for CAPACITY_MS; 200s, and 200s per second. */
async function capacity(url: string, body: Body): Promise<{ ok: number; perS: number; meanBatch: number }> {
  const endMs = performance.now() + CAPACITY_MS;
  let ok = 0;
  let batchSum = 0;
  await Promise.all(
    Array.from({ length: CLOSED_LOOP_CLIENTS }, async () => {
      for (let i = 0; i < 10_000 && performance.now() < endMs; i++) {
        const a = await send(url, body);
        if (a.status === 200) (ok++, (batchSum += a.batch));
      }
    }),
  );
  return { ok, perS: round(ok / (CAPACITY_MS / 1000), 1), meanBatch: round(batchSum / Math.max(ok, 1), 2) };
}

export async function main({ platform = "wrangler-dev" }: { platform?: Platform } = {}): Promise<void> {
  const manifest = readManifest(join(ROOT, "models"), MODEL);
  const deadlineMs = deadlineBudgetMs(manifest);
  const stack = await startStack({ replicas: 2, maxReplicas: 2, port: 8796, originPort: 8811, vars: { CONTROL_MODE: "static" }, edgeStarter: edgeStarterOn(platform) });
  const url = `${stack.edge.url}/v2/models/${MODEL}/infer`;
  const body = bodies();
  // Steps: the warm-up, each burst, capacity, overload.
  const progress = startProgress("scheduler", 2 * BURST_ROUNDS + 4);
  try {
    progress.step("warm-up");
    for (let i = 0; i < 200; i++) await send(url, body.binary); // warm the session and V8's tiers
    progress.tick();
    const bursts: Record<string, unknown[]> = { json: [], binary: [] };
    for (const kind of ["json", "binary"] as const) {
      for (let r = 0; r < BURST_ROUNDS; r++) {
        progress.step(`${kind} burst ${r + 1}/${BURST_ROUNDS}`);
        bursts[kind]!.push(await burst(url, body[kind]));
        await new Promise((done) => setTimeout(done, 500));
        progress.tick();
      }
    }
    console.log("bursts", JSON.stringify(bursts));
    // The edge's workerd CPU (its Worker and Durable Objects share one thread): per request served at
    // capacity, and per request not answered 200 under overload.
    const edgeCpuMs = treeCpuMs(stack.edge.process.pid!, /workerd/);
    const edgeThreadCpuMs = treeThreadCpuMs(stack.edge.process.pid!, /workerd/);
    progress.step("capacity (closed loop)");
    const [capStartMs, capStartThreads] = [edgeCpuMs(), edgeThreadCpuMs()];
    const { ok: capOk, ...cap } = await capacity(url, body.binary);
    const servedCpuMs = (edgeCpuMs() - capStartMs) / Math.max(1, capOk);
    // The isolate's thread: the busiest one at capacity.
    const isolate = busiestThread(capStartThreads, edgeThreadCpuMs());
    const servedThreadMs = isolate.ms / Math.max(1, capOk);
    console.log("capacity", cap);
    progress.tick();
    await new Promise((done) => setTimeout(done, 1_000));
    const ratePerS = OVERLOAD_FACTOR * cap.perS;
    progress.step(`overload at ${OVERLOAD_FACTOR}x capacity`);
    const bufferRefusalsBefore = bufferRefusals(await modelStats(stack.edge.url));
    const [overloadStartMs, overloadStartThreadMs] = [edgeCpuMs(), edgeThreadCpuMs().get(isolate.thread) ?? 0];
    const load = await openLoop({ url, ...body.binary, ratePerS, count: Math.ceil((ratePerS * OVERLOAD_MS) / 1000), maxDurationMs: OVERLOAD_MS + 10_000, seed: 3 });
    const sendS = Math.min(OVERLOAD_MS / 1000, load.elapsedS);
    const refused = load.sent - load.ok;
    const stats = await modelStats(stack.edge.url);
    const byBuffer = bufferRefusals(stats) - bufferRefusalsBefore;
    const admittedServerMs = load.serverTimingMs["total"] ?? [];
    const refusalCpuMs = Math.max(0, (edgeCpuMs() - overloadStartMs - load.ok * servedCpuMs) / Math.max(1, refused));
    const refusalThreadMs = Math.max(0, ((edgeThreadCpuMs().get(isolate.thread) ?? 0) - overloadStartThreadMs - load.ok * servedThreadMs) / Math.max(1, refused));
    const overload = {
      ratePerS: round(ratePerS, 1),
      sent: load.sent,
      ok: load.ok,
      errors: load.errors,
      goodputPerS: round(load.ok / load.elapsedS, 1),
      goodputOverCapacity: round(load.ok / load.elapsedS / cap.perS, 3),
      // 200s within their deadline, per second over the run (as goodputPerS).
      onTimeGoodputOverCapacity: round(load.latenciesMs.filter((ms) => ms <= deadlineMs).length / load.elapsedS / cap.perS, 3),
      workerdCpuMsPerServed: round(servedCpuMs, 3),
      workerdCpuMsPerRefusal: round(refusalCpuMs, 3),
      isolateThreadMsPerServed: round(servedThreadMs, 3),
      isolateThreadMsPerRefusal: round(refusalThreadMs, 3),
      elapsedS: round(load.elapsedS, 2),
      sendS,
      deadlineMs,
      admittedP50Ms: round(quantile(load.latenciesMs, 0.5), 1),
      admittedP99Ms: round(quantile(load.latenciesMs, 0.99), 1),
      admittedOverDeadline: load.latenciesMs.filter((ms) => ms > deadlineMs).length,
      // The same 200s as the edge timed them (Server-Timing total, from the handler's start): the
      // difference is the wait before the Worker saw the request, and the answer's way back.
      admittedServerP50Ms: round(quantile(admittedServerMs, 0.5), 1),
      admittedServerP99Ms: round(quantile(admittedServerMs, 0.99), 1),
      admittedServerOverDeadline: admittedServerMs.filter((ms) => ms > deadlineMs).length,
      // 503s by where they were decided: the buffer (late, full or expired there), or the Worker's front door (PIE, busy shard).
      refusedByBuffer: byBuffer,
      refusedAtFrontDoor: (load.errors[503] ?? 0) - byBuffer,
      meanBatch: round(load.batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, load.batchSizes.length), 2),
      refusedServerP50Ms: round(quantile(load.errorServerMs, 0.5), 1),
      refusedServerP99Ms: round(quantile(load.errorServerMs, 0.99), 1),
      refusedClientP50Ms: round(quantile(load.errorLatenciesMs, 0.5), 1),
      refusedClientP99Ms: round(quantile(load.errorLatenciesMs, 0.99), 1),
    };
    progress.tick();
    progress.step("refusal floor (no-op Worker)");
    const floor = await refusalFloorCpuMs(platform, body.binary, refused / Math.max(1e-9, load.elapsedS));
    Object.assign(overload, { noopCpuMsPerRefusal: round(floor.processMs, 3), noopIsolateThreadMsPerRefusal: round(floor.threadMs, 3), ...goodputBounds(load.sent / load.elapsedS / cap.perS, servedThreadMs, refusalThreadMs, floor.threadMs) });
    progress.stop();
    console.log("overload", overload);
    const edgeOn = platform === "workerd" ? "edge as its deploy bundle on plain workerd (no dev proxy)" : "edge under wrangler dev";
    writeReport(reportNameOn("scheduler", platform), { date: new Date().toISOString(), machine: `2 shared cores; ${edgeOn} with 2 origin replicas (npm start's stack otherwise)`, model: MODEL, deadlineMs, bursts, capacity: cap, overload, stats });
  } finally {
    progress.stop();
    await stack.stop();
  }
}

/** The model's /stats: every shard's scheduler counters. */
type ModelStats = { model_stats: Array<{ shards: SchedulerStatsSnapshot[] }> };

async function modelStats(edgeUrl: string): Promise<ModelStats> {
  return (await fetch(`${edgeUrl}/v2/models/${MODEL}/stats`)).json() as Promise<ModelStats>;
}

/** Requests the model's buffers refused or let expire so far, all shards. */
function bufferRefusals(stats: ModelStats): number {
  return stats.model_stats.flatMap((m) => m.shards).reduce((sum, s) => sum + s.rejectedLate + s.rejectedFull + s.expired + s.expiredRunning, 0);
}

/** What the figure reads of each shard in the edge's /stats for the model. */
type ShardStats = Pick<SchedulerStatsSnapshot, "batchRows" | "startedBySize" | "startedByWindow" | "startedIdle" | "startedByDeadline">;

/**
 * The report's figure: the batch-size distribution over the whole run (warm-up, bursts, capacity and
 * overload; the batch sizes /stats keeps, the last 4096 per shard, all shards together): how many
 * batches of each size ran, and how many requests (rows) were served in batches of that size.
 */
export function schedulerFigure(report: { model: string; stats: { model_stats: Array<{ shards: ShardStats[] }> } }): string {
  const shards = report.stats.model_stats.flatMap((m) => m.shards);
  const sizes = shards.flatMap((s) => s.batchRows);
  const largest = Math.max(1, ...sizes);
  const batchesOf = Array.from({ length: largest }, (_, i) => sizes.filter((rows) => rows === i + 1).length);
  const started = (key: keyof Omit<ShardStats, "batchRows">) => shards.reduce((sum, s) => sum + s[key], 0);
  return renderFigure({
    title: `Scheduler, ${report.model}: ${sizes.length} batches over the run (started ${started("startedBySize")} full, ${started("startedByWindow")} at the window, ${started("startedIdle")} idle, ${started("startedByDeadline")} at a deadline)`,
    xLabel: "batch size (rows)",
    xMaxS: largest + 1,
    xTicks: Array.from({ length: largest }, (_, i) => i + 1),
    panels: [
      { yLabel: "batches", series: [{ name: "batches", color: PALETTE[0]!, shape: "bars", points: batchesOf.map((n, i): [number, number] => [i + 1, n]) }] },
      { yLabel: "requests (rows) served", series: [{ name: "rows in those batches", color: PALETTE[1]!, shape: "bars", points: batchesOf.map((n, i): [number, number] => [i + 1, n * (i + 1)]) }] },
    ],
  });
}

function writeReport(name: string, report: { date: string; machine: string; model: string; deadlineMs: number; bursts: Record<string, unknown[]>; capacity: { perS: number; meanBatch: number }; overload: Record<string, unknown>; stats: { model_stats: Array<{ shards: ShardStats[] }> } }): void {
  const dir = resolve(ROOT, "bench", "reports");
  writeFileSync(resolve(dir, `${name}.json`), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(resolve(dir, `${name}.svg`), schedulerFigure(report));
  const o = report.overload as Record<string, number>;
  const lines = [`# Scheduler benchmark (${report.date})`, "", `${report.machine}. Model ${MODEL}, one-row requests; deadline ${report.deadlineMs} ms (maxLatencyMs).`, ""];
  lines.push(`![batch-size distribution over the whole run: batches, and requests served, per batch size](${name}.svg)`, "");
  lines.push(`## Burst of ${BURST} concurrent requests`, "", "| body | round | 200s | statuses | largest batch | last answer ms |", "|---|---|---|---|---|---|");
  for (const [kind, rounds] of Object.entries(report.bursts)) {
    (rounds as Array<{ ok: number; statuses: object; largestBatch: number; lastAnswerMs: number }>).forEach((b, i) => lines.push(`| ${kind} | ${i + 1} | ${b.ok}/${BURST} | ${JSON.stringify(b.statuses)} | ${b.largestBatch} | ${b.lastAnswerMs} |`));
  }
  lines.push("", `## Overload at ${OVERLOAD_FACTOR}x capacity`, "");
  lines.push(`Capacity (closed loop, ${CLOSED_LOOP_CLIENTS} clients, binary): ${report.capacity.perS}/s, mean batch ${report.capacity.meanBatch}.`, "");
  lines.push("| what | value |", "|---|---|");
  for (const [k, v] of Object.entries(o)) lines.push(`| ${k} | ${typeof v === "object" ? JSON.stringify(v) : v} |`);
  lines.push(
    "",
    `admitted*Ms: latency of the 200s at the client, admittedServer*Ms: the same as the edge timed them from its handler's start (Server-Timing total). refusedByBuffer: 503s the buffer decided (late, full or expired there, from its /stats); refusedAtFrontDoor: 503s the Worker decided before parsing the body (PIE on the way to the buffer, or a shard that said it is busy). workerdCpuMsPerServed: the edge's workerd CPU per 200 in the capacity run. workerdCpuMsPerRefusal: its CPU per request not answered 200 under overload (refused, or lost to a network error), net of the 200s at the capacity run's cost each. noopCpuMsPerRefusal: the platform's floor, the workerd CPU per request of the no-op Worker (src/edge/noop-worker.ts ?refuse=1) answering 503 at once, body unread, at the overload's rate of refusals, on the same platform. isolateThread*: the same on the isolate's thread alone (workerd's busiest thread at capacity; the no-op's busiest). goodputModelled: the goodput over capacity the thread's budget leaves when every refusal costs it ours, (1 - A r / S) / (1 - r / S) with A the arrivals per second of the run's elapsed time over capacity, r a refusal's and S a served request's thread ms (the budget being what capacity used): a check of that model against goodputOverCapacity; goodputBoundAtFloor: the same with the no-op's refusal, what any refusal path would get on this thread. Locally the Worker, its Durable Objects and the kernels share one thread, so every refusal takes time from serving.`,
  );
  writeFileSync(resolve(dir, `${name}.md`), lines.join("\n") + "\n");
  console.log(lines.join("\n"));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
