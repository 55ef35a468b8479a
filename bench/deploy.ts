/**
 * `npm run bench -- deploy [--trials 3]`: what issue 10's targets ask of the deploy path, measured
 * on the local stack (wrangler dev, real workerd):
 * - the upload of `wrangler deploy --dry-run` (no model weights in it);
 * - the first request after start against a warm one, per edge model: the edge started as `npm
 *   start` starts it (ready once /v2/health/ready has warmed every planned session), side by side
 *   with a start that only waits for liveness (the cold start the readiness warm-up removes);
 * - a request over the platform's limits (ppocr-rec, 8 x 3 x 48 x 1280: its ~34 MB of outputs
 *   exceed the 32 MiB Durable Object RPC limit): 413 latency, and that no buffer saw it.
 * Each trial starts a fresh edge (new state folder, new isolates). Writes bench/reports/deploy.{md,json}.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, ROOT, startEdge, type Started, wranglerEnv } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../src/protocol/oip-binary";
import type { Tensor } from "../src/protocol/tensor";
import { seededFloats } from "../test/fixtures/model-inputs";

/** One row of each edge model, as a binary request body. */
const REQUESTS: Record<string, Tensor[]> = {
  "ppocr-cls": [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data: seededFloats(3 * 48 * 192, 1) }],
  "ppocr-rec": [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 320], data: seededFloats(3 * 48 * 320, 2) }],
  "silero-vad": [{ name: "input", datatype: "FP32", shape: [1, 512], data: seededFloats(512, 3) }],
};
/** The over-limit request. */
const OVER_LIMIT: Tensor[] = [{ name: "x", datatype: "FP32", shape: [8, 3, 48, 1280], data: seededFloats(8 * 3 * 48 * 1280, 4) }];
const WARM_REQUESTS = 30;
const OVER_LIMIT_REQUESTS = 20;

function body(inputs: Tensor[]): { bytes: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const header = { inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })), parameters: { binary_data_output: true } };
  const packed = packBinary(header, inputs);
  return { bytes: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
}

/** One request; its client-side latency (ms), status, and the time the edge held it (Server-Timing total, ms). */
async function timed(url: string, request: ReturnType<typeof body>): Promise<{ ms: number; status: number; text: string; serverMs: number }> {
  const startMs = performance.now();
  const response = await fetch(url, { method: "POST", body: request.bytes, headers: request.headers, signal: AbortSignal.timeout(30_000) });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const serverMs = Number(/total;dur=([\d.]+)/.exec(response.headers.get("server-timing") ?? "")?.[1] ?? NaN);
  return { ms: performance.now() - startMs, status: response.status, text: response.status === 200 ? "" : new TextDecoder().decode(bytes), serverMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Requests every buffer shard of `model` has seen: admitted, refused at admission, or expired before queueing. */
async function bufferArrivals(edge: Started, model: string): Promise<number> {
  type Counts = { admitted: number; rejectedFull: number; rejectedLate: number; expired: number };
  const stats = (await (await fetch(`${edge.url}/v2/models/${model}/stats`)).json()) as { model_stats: Array<{ shards: Counts[] }> };
  return stats.model_stats[0]!.shards.reduce((sum, s) => sum + s.admitted + s.rejectedFull + s.rejectedLate + s.expired, 0);
}

interface Trial {
  start: "ready" | "live";
  startMs: number;
  firstMs: Record<string, number>;
  warmMedianMs: Record<string, number>;
}

/** Starts a fresh edge, then sends each model's first request and WARM_REQUESTS more, one at a time. */
async function trial(start: "ready" | "live"): Promise<Trial> {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "bench-deploy-"));
  const t0 = performance.now();
  const edge = await startEdge({ port, vars: { CONTROL_MODE: "static" }, waitFor: start, persistTo: state });
  const startMs = performance.now() - t0;
  try {
    const firstMs: Record<string, number> = {};
    const warmMedianMs: Record<string, number> = {};
    for (const [model, inputs] of Object.entries(REQUESTS)) {
      const url = `${edge.url}/v2/models/${model}/infer`;
      const request = body(inputs);
      const first = await timed(url, request);
      if (first.status !== 200) throw new Error(`${model}: first request answered ${first.status}: ${first.text}`);
      firstMs[model] = first.ms;
      const warm: number[] = [];
      for (let i = 0; i < WARM_REQUESTS; i++) warm.push((await timed(url, request)).ms);
      warmMedianMs[model] = median(warm);
    }
    return { start, startMs, firstMs, warmMedianMs };
  } finally {
    await edge.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

/**
 * The over-limit request against a ready edge: 413 latencies, and the buffers' arrivals before and
 * after; beside it, the transfer floor: the same bytes with a header length the edge can only
 * refuse (400) once the whole body has arrived, so that both pay the same upload.
 */
async function overLimit(): Promise<{ statuses: number[]; medianMs: number; maxMs: number; serverMedianMs: number; floorStatuses: number[]; floorMedianMs: number; floorServerMedianMs: number; message: string; bufferArrivalsBefore: number; bufferArrivalsAfter: number }> {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "bench-deploy-"));
  const edge = await startEdge({ port, vars: { CONTROL_MODE: "static" }, persistTo: state });
  try {
    const url = `${edge.url}/v2/models/ppocr-rec/infer`;
    const request = body(OVER_LIMIT);
    const floorRequest = { bytes: request.bytes, headers: { ...request.headers, [INFERENCE_HEADER_LENGTH]: "1" } };
    const bufferArrivalsBefore = await bufferArrivals(edge, "ppocr-rec");
    const answers = [];
    const floor = [];
    for (let i = 0; i < OVER_LIMIT_REQUESTS; i++) {
      answers.push(await timed(url, request));
      floor.push(await timed(url, floorRequest));
    }
    const bufferArrivalsAfter = await bufferArrivals(edge, "ppocr-rec");
    const ms = answers.map((a) => a.ms);
    return {
      statuses: [...new Set(answers.map((a) => a.status))],
      medianMs: median(ms),
      maxMs: Math.max(...ms),
      serverMedianMs: median(answers.map((a) => a.serverMs)),
      floorStatuses: [...new Set(floor.map((a) => a.status))],
      floorMedianMs: median(floor.map((a) => a.ms)),
      floorServerMedianMs: median(floor.map((a) => a.serverMs)),
      message: answers[0]!.text,
      bufferArrivalsBefore,
      bufferArrivalsAfter,
    };
  } finally {
    await edge.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

/** `wrangler deploy --dry-run`: the upload's size as wrangler reports it. */
async function dryRun(): Promise<{ totalKiB: number; gzipKiB: number }> {
  const outDir = mkdtempSync(join(tmpdir(), "bench-dry-run-"));
  try {
    const output = await new Promise<string>((done, fail) => {
      const child = spawn(resolve(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outDir], { cwd: ROOT, env: wranglerEnv() });
      let text = "";
      child.stdout.on("data", (c) => (text += c));
      child.stderr.on("data", (c) => (text += c));
      child.once("exit", (code) => (code === 0 ? done(text) : fail(new Error(`wrangler deploy --dry-run exited ${code}: ${text}`))));
    });
    const [, total, gzip] = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output)!;
    return { totalKiB: Number(total), gzipKiB: Number(gzip) };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** Runs the deploy benchmark: `trials` (1-10) fresh starts of each kind; options from `npm run bench -- deploy` (bench/index.ts). */
export async function main({ trials }: { trials: number }): Promise<void> {
  const upload = await dryRun();
  console.log(`dry run: ${upload.totalKiB} KiB (gzip ${upload.gzipKiB} KiB)`);
  const runs: Trial[] = [];
  const progress = startProgress("deploy", 2 * trials);
  try {
    for (let i = 0; i < trials; i++) {
      for (const start of ["ready", "live"] as const) {
        progress.step(`trial ${i + 1}/${trials} (${start})`);
        const run = await trial(start);
        runs.push(run);
        console.log(`trial ${i + 1}/${trials} (${start}): first ${JSON.stringify(run.firstMs)} warm median ${JSON.stringify(run.warmMedianMs)}`);
        progress.tick();
      }
    }
  } finally {
    progress.stop();
  }
  const limit = await overLimit();
  console.log(`over-limit: statuses ${limit.statuses.join(",")}, median ${limit.medianMs.toFixed(1)} ms, buffer arrivals ${limit.bufferArrivalsBefore} -> ${limit.bufferArrivalsAfter}`);

  const rows = Object.keys(REQUESTS).flatMap((model) =>
    (["ready", "live"] as const).map((start) => {
      const of = runs.filter((r) => r.start === start);
      const first = median(of.map((r) => r.firstMs[model]!));
      const warm = median(of.map((r) => r.warmMedianMs[model]!));
      return { model, start, firstMs: first, warmMs: warm, ratio: first / warm, firstEach: of.map((r) => r.firstMs[model]!) };
    }),
  );
  const report = { generatedBy: "npm run bench -- deploy (bench/deploy.ts)", measuredAt: new Date().toISOString(), trials, upload, firstRequest: rows, startMs: runs.map((r) => ({ start: r.start, ms: r.startMs })), overLimit: limit };
  writeFileSync(resolve(ROOT, "bench/reports/deploy.json"), JSON.stringify(report, null, 2) + "\n");
  const md = [
    "# Deploy path (issue 10)",
    "",
    `Generated by \`npm run bench -- deploy\` (bench/deploy.ts) at ${report.measuredAt}, ${trials} trials, each on a fresh \`wrangler dev\` (local workerd, 2 cores).`,
    "",
    `**Upload** (\`wrangler deploy --dry-run\`): ${upload.totalKiB.toFixed(0)} KiB (${(upload.totalKiB / 1024).toFixed(1)} MiB), gzip ${upload.gzipKiB.toFixed(0)} KiB; no model weights (they deploy as static assets). Target: under 16 MiB.`,
    "",
    "**First request after start** against the median of the next 30 (one at a time, binary bodies, one row). `ready`: the edge is started as `npm start` starts it, serving once `GET /v2/health/ready` has warmed the planned sessions; `live`: serving as soon as it answers liveness (no warm-up: a cold start). Median over trials. Target: first within 2x a warm request.",
    "",
    "| model | start | first (ms) | warm (ms) | first / warm | first, each trial (ms) |",
    "|---|---|---:|---:|---:|---|",
    ...rows.map((r) => `| ${r.model} | ${r.start} | ${r.firstMs.toFixed(1)} | ${r.warmMs.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.firstEach.map((x) => x.toFixed(0)).join(", ")} |`),
    "",
    `**Over the platform's limits**: ppocr-rec [8, 3, 48, 1280] (binary body, ${(OVER_LIMIT[0]!.data.byteLength / 1024 / 1024).toFixed(1)} MiB) x ${OVER_LIMIT_REQUESTS}: status ${limit.statuses.join(", ")}; latency median ${limit.medianMs.toFixed(1)} ms, max ${limit.maxMs.toFixed(1)} ms client side, ${limit.serverMedianMs.toFixed(1)} ms held by the edge (Server-Timing total: from the request's arrival, so it includes waiting for the body). The transfer floor, the same bytes refused (${limit.floorStatuses.join(", ")}) only once all of them arrived, interleaved: ${limit.floorMedianMs.toFixed(1)} ms client side, ${limit.floorServerMedianMs.toFixed(1)} ms at the edge. The edge decides from the binary header as soon as it arrives, then reads and drops the rest (closing the connection under a client still sending resets it, and the client never reads the 413). Requests counted by the model's buffers before and after: ${limit.bufferArrivalsBefore} and ${limit.bufferArrivalsAfter}. Target: 413 in under 10 ms, nothing sent to a Durable Object.`,
    "",
    `> ${limit.message}`,
    "",
  ].join("\n");
  writeFileSync(resolve(ROOT, "bench/reports/deploy.md"), md);
  console.log(md);
}
