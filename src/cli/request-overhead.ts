/**
 * What a request costs outside its batch's service time, measured on the running stack:
 * `latencyMs` at light load (one request at a time), the client's latency minus its wait in the
 * queue and its batch's service time as the scheduler sees them (HTTP, parsing, the dev proxy, the Durable Object call;
 * the planner's overheadMs), and `cpuMs`, the CPU the runtime process (the Worker and its Durable
 * Objects share one workerd thread locally) spends per request beyond its share of batch time, at a
 * moderate rate (fixed costs amortise with load) and net of the idle runtime's CPU: work that
 * delays the batches, so the planner's service time per batch of k rows is s(k) + k cpuMs there.
 * Used by `npm run profile` and `npm run bench -- fidelity`. Loopback only.
 */
import { header, post, serverTimingMs } from "./loopback-http";
import { cpuMs, processTree } from "./process-cpu";
import type { Started } from "./processes";

/** How long the idle runtime's CPU is sampled, ms. */
const IDLE_MS = 2_000;

/** A request's cost outside its batch, and the batch service time seen at light load (ms). */
export interface RequestOverhead {
  latencyMs: number;
  cpuMs: number;
  /** Median batch time at batch size 1 as the scheduler measured it (Server-Timing infer). */
  serviceB1Ms: number;
  requests: number;
}

/** Sends one-row requests to `model` on `edge`: `count` one at a time at `ratePerS` (latency), then `cpuCount` open-loop at `cpuRatePerS` (CPU). */
export async function measureRequestOverhead(
  edge: Started,
  model: string,
  body: { body: string | Uint8Array; headers: Record<string, string> },
  { ratePerS = 20, count = 120, cpuRatePerS = 60, cpuCount = 300, warmUp = 60, isBatchOnRuntime = true } = {},
): Promise<RequestOverhead> {
  const url = `${edge.url}/v2/models/${model}/infer`;
  for (let i = 0; i < warmUp; i++) await post(url, body.body, body.headers);
  // Latency outside queue and batch, at light load, one request at a time.
  const outsideMs: number[] = [];
  const serviceMs: number[] = [];
  const startMs = performance.now();
  for (let i = 0; i < count; i++) {
    const waitMs = startMs + (i * 1000) / ratePerS - performance.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    const t0 = performance.now();
    const answer = await post(url, body.body, body.headers);
    if (answer.status !== 200) throw new Error(`request overhead: ${model} answered ${answer.status}`);
    outsideMs.push(performance.now() - t0 - serverTimingMs(answer, "queue") - serverTimingMs(answer, "infer"));
    serviceMs.push(serverTimingMs(answer, "infer"));
  }
  // CPU per request beyond its share of batch time, at a moderate rate, net of the idle runtime's CPU.
  const cpuPerRequestMs = await measureCpuPerRequest(edge, model, body, cpuRatePerS, cpuCount, isBatchOnRuntime);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { latencyMs: median(outsideMs), cpuMs: cpuPerRequestMs, serviceB1Ms: median(serviceMs), requests: count + cpuCount };
}

/**
 * The runtime's CPU per request beyond its share of batch time (when batches run on the runtime),
 * net of the idle runtime's CPU, with `count` requests sent open-loop at `ratePerS` (it falls as
 * the rate grows: fixed costs amortise over larger batches).
 */
export async function measureCpuPerRequest(edge: Started, model: string, body: { body: string | Uint8Array; headers: Record<string, string> }, ratePerS: number, count: number, isBatchOnRuntime = true): Promise<number> {
  const url = `${edge.url}/v2/models/${model}/infer`;
  const runtime = processTree(edge.process.pid!).filter((p) => p.command.includes("workerd") && !p.command.includes(`entry=127.0.0.1:${new URL(edge.url).port}`));
  const runtimeCpuMs = () => runtime.reduce((sum, p) => sum + cpuMs(p.pid), 0);
  const idleStart = { cpu: runtimeCpuMs(), at: performance.now() };
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCpuPerMs = (runtimeCpuMs() - idleStart.cpu) / (performance.now() - idleStart.at);
  const cpuBefore = runtimeCpuMs();
  const startMs = performance.now();
  let batchMsShare = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const waitMs = startMs + (i * 1000) / ratePerS - performance.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    pending.push(
      post(url, body.body, body.headers).then((answer) => {
        if (answer.status !== 200) throw new Error(`request overhead: ${model} answered ${answer.status}`);
        batchMsShare += serverTimingMs(answer, "infer") / Number(header(answer, "x-batch-size") ?? 1);
      }),
    );
  }
  await Promise.all(pending);
  const elapsedMs = performance.now() - startMs;
  return Math.max(0, (runtimeCpuMs() - cpuBefore - idleCpuPerMs * elapsedMs - (isBatchOnRuntime ? batchMsShare : 0)) / count);
}
