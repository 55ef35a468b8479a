/**
 * Origin benchmark (`npm run bench -- origin`, or `npx tsx bench/origin.ts`): real gpu-origin
 * processes on 127.0.0.1, driven through OriginPoolRunner (the code the buffer Durable Object runs).
 *   1. Origin overhead per batch: the origin's server time minus session.run, decode and encode
 *      (from its Server-Timing), silero-vad, batch sizes 1-32, one batch in flight.
 *   2. Edge-to-origin hop overhead, same runs: the runner's whole run() minus the origin's server time,
 *      split into client-side tensor encode/decode and the HTTP round trip (sign, send, receive).
 *   3. Throughput vs batch size for ppocr-det at 320x320 (few iterations: CPU inference is slow).
 *   4. Encode/decode MB/s for FP32 tensors, JSON and the binary tensor extension (both sides).
 * Sections 1-3 run both hop forms: "binary" (the pool's default) and "json".
 *   5. Failover: three replicas, one killed with SIGKILL under load: lost and duplicated answers.
 * Writes bench/reports/origin.json, bench/reports/origin.md and its figures: origin-hop.svg (sections
 * 1-2) and origin-det.svg (section 3), time per batch and throughput against the batch size.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { readManifest } from "../gpu-origin/read-manifest";
import { type Progress, startProgress } from "../src/cli/progress";
import type { ModelManifest } from "../src/models/manifest";
import { binaryEntries, encodeBinaryInferRequest, packBinary, unpackBinary } from "../src/protocol/oip-binary";
import { decodeInferResponse, encodeInferRequest } from "../src/origin/oip-json";
import { OriginPool } from "../src/origin/origin-pool";
import { OriginPoolRunner, type AttemptRecord, type HopWire } from "../src/origin/origin-pool-runner";
import { parseInferRequest } from "../src/protocol/infer-request";
import { inferResponseBody } from "../src/protocol/infer-response";
import type { Tensor } from "../src/protocol/tensor";
import { seededFloats } from "../test/fixtures/model-inputs";
import { renderFigure, type Series } from "./lib/svg-plot";

const ROOT = resolve(import.meta.dirname, "..");
const SECRET = `bench-${Math.random().toString(36).slice(2)}-secret`;
/** Sub-ms epoch clock for the pool, so its hop times (originMs) are not rounded to whole ms like Date.now. */
const hiResNow = () => performance.timeOrigin + performance.now();

interface Origin {
  url: string;
  child: ChildProcess;
  exited: Promise<unknown>;
}

async function startOrigin(args: string[]): Promise<Origin> {
  const child = spawn(process.execPath, ["--import", "tsx", "gpu-origin/main.ts", "--port", "0", ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ORIGIN_SECRET: SECRET }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d));
  child.stderr!.on("data", (d: Buffer) => (text += d));
  const exited = once(child, "exit");
  const endMs = Date.now() + 60_000;
  let url: string | undefined;
  while (Date.now() < endMs) {
    url ??= /live on (http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
    if (url && (await fetch(`${url}/v2/health/ready`).then((r) => r.status, () => 0)) === 200) return { url, child, exited };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`origin did not become ready: ${text}`);
}

async function stop(origin: Origin): Promise<void> {
  if (origin.child.exitCode === null && origin.child.signalCode === null && origin.child.kill("SIGKILL")) await origin.exited;
}

const manifestOf = (name: string): ModelManifest => readManifest(join(ROOT, "models"), name);


function vadInputs(rows: number): Tensor[] {
  return [
    { name: "input", datatype: "FP32", shape: [rows, 512], data: seededFloats(rows * 512, rows) },
    { name: "state", datatype: "FP32", shape: [2, rows, 128], data: new Float32Array(2 * rows * 128) },
    { name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.of(16000n) },
  ];
}

function timingOf(header: string | null): Record<string, number> {
  return Object.fromEntries((header ?? "").split(",").map((part) => /(\w+);dur=([\d.]+)/.exec(part)).filter((m) => m !== null).map((m) => [m![1]!, Number(m![2])]));
}

const quantile = (values: number[], q: number) => values.slice().sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN;

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** Runs `iterations` sequential batches and returns per-batch samples of every timing. */
async function sampleBatches(runner: OriginPoolRunner, inputs: Tensor[], iterations: number, warmup: number) {
  let last: AttemptRecord | undefined;
  runner.onAttempt = (a) => (last = a);
  const samples: Array<Record<string, number>> = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const startMs = performance.now();
    const result = await runner.run(inputs, Date.now() + 60_000);
    const runMs = performance.now() - startMs;
    if (i < warmup || !last?.result.ok) continue;
    const server = timingOf(last.result.serverTiming);
    samples.push({ runMs, originMs: result.originMs!, ...server });
  }
  return samples;
}

/** Batch sizes of sections 1-2 (silero-vad) and 3 (ppocr-det): with both hop forms, the steps of the progress bar. */
const VAD_BATCHES = [1, 2, 4, 8, 16, 32];
const DET_BATCHES = [1, 2, 4, 8];

async function overheadAndHop(url: string, wire: HopWire, progress: Progress) {
  const runner = new OriginPoolRunner(manifestOf("silero-vad"), new OriginPool([url], SECRET, { now: hiResNow }), wire);
  const rows: Array<Record<string, number | string>> = [];
  for (const batch of VAD_BATCHES) {
    progress.step(`silero-vad ${wire} b${batch}`);
    const samples = await sampleBatches(runner, vadInputs(batch), 150, 20);
    const med = (f: (s: Record<string, number>) => number) => round(quantile(samples.map(f), 0.5));
    const p90 = (f: (s: Record<string, number>) => number) => round(quantile(samples.map(f), 0.9));
    const serverOverhead = (s: Record<string, number>) => s.total! - s.read! - s.infer! - s.decode! - s.encode!;
    const requestBytes = wire === "json" ? encodeInferRequest(vadInputs(batch), "x", 1).length : encodeBinaryInferRequest(vadInputs(batch), "x", 1).body.length;
    rows.push({
      wire,
      batch,
      requestKB: round(requestBytes / 1024, 1),
      serverTotalMs: med((s) => s.total!),
      sessionRunMs: med((s) => s.infer!),
      serverReadMs: med((s) => s.read!),
      serverDecodeMs: med((s) => s.decode!),
      serverEncodeMs: med((s) => s.encode!),
      serverAuthMs: med((s) => s.auth!),
      serverOverheadMs: med(serverOverhead),
      serverOverheadP90Ms: p90(serverOverhead),
      runMs: med((s) => s.runMs!),
      hopRoundTripMs: med((s) => s.originMs! - s.total!),
      clientCodecMs: med((s) => s.runMs! - s.originMs!),
      hopOverheadMs: med((s) => s.runMs! - s.total!),
    });
    progress.tick();
  }
  return rows;
}

async function detThroughput(url: string, wire: HopWire, progress: Progress) {
  const runner = new OriginPoolRunner(manifestOf("ppocr-det"), new OriginPool([url], SECRET, { now: hiResNow }), wire);
  const rows: Array<Record<string, number | string>> = [];
  for (const batch of DET_BATCHES) {
    progress.step(`ppocr-det ${wire} b${batch}`);
    const inputs: Tensor[] = [{ name: "x", datatype: "FP32", shape: [batch, 3, 320, 320], data: seededFloats(batch * 3 * 320 * 320, 9) }];
    const samples = await sampleBatches(runner, inputs, 3, 1);
    const med = (f: (s: Record<string, number>) => number) => quantile(samples.map(f), 0.5);
    rows.push({
      wire,
      batch,
      sessionRunMs: round(med((s) => s.infer!), 1),
      sessionRowsPerS: round((batch * 1000) / med((s) => s.infer!), 1),
      serverDecodeMs: round(med((s) => s.decode!), 1),
      serverEncodeMs: round(med((s) => s.encode!), 1),
      serverReadMs: round(med((s) => s.read!), 1),
      serverAuthMs: round(med((s) => s.auth!), 1),
      serverQueueMs: round(med((s) => s.queue!), 1),
      serverOverheadMs: round(med((s) => s.total! - s.read! - s.infer! - s.decode! - s.encode!), 1),
      serverTotalMs: round(med((s) => s.total!), 1),
      runMs: round(med((s) => s.runMs!), 1),
      endToEndRowsPerS: round((batch * 1000) / med((s) => s.runMs!), 1),
    });
    progress.tick();
  }
  return rows;
}

/** MB/s of raw FP32 bytes through each codec stage, JSON and binary (best of several runs). */
function codecs() {
  const manifest = manifestOf("ppocr-det");
  const rows: Array<Record<string, number>> = [];
  for (const side of [64, 320, 640]) {
    const n = 3 * side * side;
    const input: Tensor[] = [{ name: "x", datatype: "FP32", shape: [1, 3, side, side], data: seededFloats(n, 3) }];
    const output: Tensor[] = [{ name: "sigmoid_0.tmp_0", datatype: "FP32", shape: [1, 1, side, side], data: seededFloats(side * side, 4).map(Math.abs) }];
    const timeMs = (f: () => unknown) => {
      const t0 = performance.now();
      f();
      return performance.now() - t0;
    };
    const bestMs = (f: () => unknown) => Math.min(...Array.from({ length: 5 }, () => timeMs(f)));
    const requestText = encodeInferRequest(input, "x", 1000);
    const responseText = JSON.stringify(inferResponseBody(manifest, "x", output));
    const binaryRequest = encodeBinaryInferRequest(input, "x", 1000);
    const binaryResponse = packBinary({ id: "x", outputs: binaryEntries(output) }, output);
    const unpackAndParse = () => {
      const { header, payload } = unpackBinary(binaryRequest.body, String(binaryRequest.headerLength));
      return parseInferRequest(header, manifest, payload);
    };
    const unpackAndDecode = () => {
      const { header, payload } = unpackBinary(binaryResponse.body, String(binaryResponse.headerLength));
      return decodeInferResponse(manifest, header, "x", payload);
    };
    const mb = (bytes: number, ms: number) => round(bytes / 1e6 / (ms / 1000), 1);
    const rawIn = n * 4;
    const rawOut = side * side * 4;
    rows.push({
      elements: n,
      jsonBytesPerValue: round(requestText.length / n, 2),
      edgeEncodeMBps: mb(rawIn, bestMs(() => encodeInferRequest(input, "x", 1000))),
      originDecodeMBps: mb(rawIn, bestMs(() => parseInferRequest(JSON.parse(requestText), manifest))),
      originEncodeMBps: mb(rawOut, bestMs(() => JSON.stringify(inferResponseBody(manifest, "x", output)))),
      edgeDecodeMBps: mb(rawOut, bestMs(() => decodeInferResponse(manifest, JSON.parse(responseText), "x"))),
      binaryEdgeEncodeMBps: mb(rawIn, bestMs(() => encodeBinaryInferRequest(input, "x", 1000))),
      binaryOriginDecodeMBps: mb(rawIn, bestMs(unpackAndParse)),
      binaryOriginEncodeMBps: mb(rawOut, bestMs(() => packBinary({ id: "x", outputs: binaryEntries(output) }, output))),
      binaryEdgeDecodeMBps: mb(rawOut, bestMs(unpackAndDecode)),
    });
  }
  return rows;
}

async function failover() {
  const replicas = await Promise.all([0, 1, 2].map(() => startOrigin(["--models", "silero-vad", "--threads", "1"])));
  try {
    const pool = new OriginPool(replicas.map((r) => r.url), SECRET, { options: { healthIntervalMs: 250 } });
    const runner = new OriginPoolRunner(manifestOf("silero-vad"), pool);
    let retried = 0;
    runner.onAttempt = (a) => void (!a.result.ok && retried++);
    const total = 1000;
    const answers = new Array<number>(total).fill(0);
    const latencies: number[] = [];
    let ok = 0;
    let failed = 0;
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        try {
          await runner.run(vadInputs(1), Date.now() + 10_000);
          ok++;
        } catch {
          failed++;
        }
        latencies.push(performance.now() - t0);
        answers[i]!++;
        if (++done === 300) replicas[1]!.child.kill("SIGKILL");
      }
    };
    const startMs = performance.now();
    await Promise.all(Array.from({ length: 24 }, worker));
    return {
      requests: total, concurrency: 24, killedAfter: 300, ok, failed,
      lost: answers.filter((n) => n === 0).length, answeredTwice: answers.filter((n) => n > 1).length,
      failedAttemptsRetried: retried, p50Ms: round(quantile(latencies, 0.5)), p99Ms: round(quantile(latencies, 0.99)), maxMs: round(Math.max(...latencies)),
      wallS: round((performance.now() - startMs) / 1000, 2), replicaStates: pool.state.snapshot().map((r) => r.state),
    };
  } finally {
    await Promise.all(replicas.map(stop));
  }
}

function table(rows: Array<Record<string, unknown>>): string {
  const keys = Object.keys(rows[0] ?? {});
  return [`| ${keys.join(" | ")} |`, `| ${keys.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${keys.map((k) => String(r[k])).join(" | ")} |`)].join("\n");
}

type Row = Record<string, number | string>;
/** Each hop form's colour; the metrics of one panel differ by dash. */
const WIRE_COLORS: Record<string, string> = { binary: "#1f77b4", json: "#d62728" };
const DASHES = [undefined, "6 3", "2 2"];

/** Metrics against the batch size (log x, ticks at the sizes measured), one series per metric and hop form. */
function byBatchFigure(title: string, rows: Row[], panels: Array<{ yLabel: string; metrics: Array<[key: string, label: string]> }>): string {
  const batches = [...new Set(rows.map((r) => Number(r.batch)))].sort((a, b) => a - b);
  const wires = [...new Set(rows.map((r) => String(r.wire)))];
  return renderFigure({
    title,
    xLabel: "batch size (rows; log)",
    xLog: true,
    xMinS: batches[0]! / 1.25,
    xMaxS: batches.at(-1)! * 1.25,
    xTicks: batches,
    panels: panels.map(({ yLabel, metrics }) => ({
      yLabel,
      yLog: true,
      series: wires.flatMap((wire) => metrics.map(([key, label], m): Series => ({ name: `${label}, ${wire}`, color: WIRE_COLORS[wire] ?? "#777", dash: DASHES[m], shape: "points", points: rows.filter((r) => r.wire === wire).map((r) => [Number(r.batch), Number(r[key])]) }))),
    })),
  });
}

/** The report's figures by file name: silero-vad's time and overhead per batch (sections 1-2), ppocr-det's throughput and time per batch (section 3), binary against JSON hops. */
export function originFigures(report: { overhead: Row[]; det: Row[] }): Record<"origin-hop.svg" | "origin-det.svg", string> {
  return {
    "origin-hop.svg": byBatchFigure("Origin: silero-vad time per batch against the batch size, binary and JSON hops (medians of 150)", report.overhead, [
      { yLabel: "silero-vad ms per batch (log)", metrics: [["runMs", "whole run (runner)"], ["serverTotalMs", "origin server time"], ["sessionRunMs", "session.run"]] },
      { yLabel: "overhead ms per batch (log)", metrics: [["hopOverheadMs", "hop (client codec, HTTP)"], ["serverDecodeMs", "origin tensor decode"], ["serverOverheadMs", "origin server overhead"]] },
    ]),
    "origin-det.svg": byBatchFigure("Origin: ppocr-det 320x320 throughput and time per batch against the batch size, binary and JSON hops (median of 3)", report.det, [
      { yLabel: "ppocr-det rows/s (log)", metrics: [["endToEndRowsPerS", "end to end (runner)"], ["sessionRowsPerS", "session.run only"]] },
      { yLabel: "ppocr-det ms per batch (log)", metrics: [["runMs", "whole run (runner)"], ["serverDecodeMs", "origin tensor decode"], ["sessionRunMs", "session.run"]] },
    ]),
  };
}

/** Runs the origin benchmark and writes its reports. */
export async function main(): Promise<void> {
  const origin = await startOrigin(["--models", "ppocr-det,silero-vad"]);
  let report;
  const progress = startProgress("origin", 2 * (VAD_BATCHES.length + DET_BATCHES.length));
  try {
    console.log("origin overhead and hop (silero-vad)...");
    const overhead = [...(await overheadAndHop(origin.url, "binary", progress)), ...(await overheadAndHop(origin.url, "json", progress))];
    console.log("ppocr-det throughput at 320x320...");
    const det = [...(await detThroughput(origin.url, "binary", progress)), ...(await detThroughput(origin.url, "json", progress))];
    progress.stop();
    console.log("JSON codecs...");
    const codecRows = codecs();
    await stop(origin);
    console.log("failover under load...");
    const kill = await failover();
    report = { date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, overhead, det, codecs: codecRows, failover: kill };
  } finally {
    progress.stop();
    await stop(origin);
  }
  const dir = join(ROOT, "bench", "reports");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "origin.json"), JSON.stringify(report, null, 2) + "\n");
  for (const [name, svg] of Object.entries(originFigures({ overhead: report.overhead, det: report.det }))) writeFileSync(join(dir, name), svg);
  const md = [
    "# Origin benchmark",
    "",
    `${report.date}; ${report.machine.cpus} CPUs (${report.machine.model}), Node ${report.machine.node}; one gpu-origin replica (cpu provider) on 127.0.0.1; runs through OriginPoolRunner. Machine shared with other work: treat figures as indicative.`,
    "",
    "## Origin overhead and edge-to-origin hop per batch (silero-vad, medians of 150 sequential batches, after 20 warm-up)",
    "",
    "serverOverheadMs = origin server time - body read - session.run - tensor decode - tensor encode: the signature check (incl. SHA-256 of the body), routing, batching and queueing. serverReadMs is the time from the handler's start until the whole body arrived (it overlaps the client's send, so it is part of the hop). hopOverheadMs = runner's run() - origin server time (client tensor encode/decode + signing + HTTP); hopRoundTripMs is the HTTP part, clientCodecMs the client's encode/decode.",
    "",
    "![silero-vad time and overhead per batch against the batch size, binary and JSON hops](origin-hop.svg)",
    "",
    table(report.overhead),
    "",
    "## ppocr-det 320x320 throughput vs batch size (median of 3)",
    "",
    "![ppocr-det throughput and time per batch against the batch size, binary and JSON hops](origin-det.svg)",
    "",
    table(report.det),
    "",
    "## Tensor codecs: JSON vs binary extension (FP32, MB/s of raw tensor bytes, best of 5)",
    "",
    table(report.codecs),
    "",
    "## Failover: 3 replicas, one SIGKILLed under load (silero-vad batches of 1)",
    "",
    table([{ ...report.failover, replicaStates: report.failover.replicaStates.join("/") }]),
    "",
  ].join("\n");
  writeFileSync(join(dir, "origin.md"), md);
  console.log(md);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
