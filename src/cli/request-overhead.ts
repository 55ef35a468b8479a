/**
 * What a request costs outside its batch's service time, measured on the running stack at light
 * load (batches of one row): `latencyMs`, the client's latency minus its wait in the queue and its
 * batch's service time as the scheduler sees them (HTTP, parsing, the dev proxy, the Durable Object call;
 * the planner's overheadMs), and `cpuMs`, the CPU the runtime process (the Worker and its Durable
 * Objects share one workerd thread locally) spends per request beyond that service time: work that
 * delays the batches, so the planner's service time per batch of k rows is s(k) + k cpuMs there.
 * Used by `npm run profile` and `npm run bench -- fidelity`. Loopback only.
 */
import { post, header } from "./loopback-http";
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

/** Sends `count` one-row requests at `ratePerS` (Poisson-free: evenly spaced) to `model` on `edge`, one at a time. */
export async function measureRequestOverhead(edge: Started, model: string, body: { body: string | Uint8Array; headers: Record<string, string> }, { ratePerS = 20, count = 120, warmUp = 60 } = {}): Promise<RequestOverhead> {
  const url = `${edge.url}/v2/models/${model}/infer`;
  for (let i = 0; i < warmUp; i++) await post(url, body.body, body.headers);
  const runtime = processTree(edge.process.pid!).filter((p) => p.command.includes("workerd") && !p.command.includes(`entry=127.0.0.1:${new URL(edge.url).port}`));
  const runtimeCpuMs = () => runtime.reduce((sum, p) => sum + cpuMs(p.pid), 0);
  // The runtime's CPU when idle (timers, housekeeping) is not a request's cost: measure it first.
  const idleStart = { cpu: runtimeCpuMs(), at: performance.now() };
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCpuPerMs = (runtimeCpuMs() - idleStart.cpu) / (performance.now() - idleStart.at);
  const cpuBefore = runtimeCpuMs();
  const outsideMs: number[] = [];
  const serviceMs: number[] = [];
  const startMs = performance.now();
  for (let i = 0; i < count; i++) {
    const waitMs = startMs + (i * 1000) / ratePerS - performance.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    const t0 = performance.now();
    const answer = await post(url, body.body, body.headers);
    const totalMs = performance.now() - t0;
    if (answer.status !== 200) throw new Error(`request overhead: ${model} answered ${answer.status}`);
    const timing = header(answer, "server-timing") ?? "";
    const infer = Number(/infer;dur=([\d.]+)/.exec(timing)?.[1] ?? NaN);
    const queue = Number(/queue;dur=([\d.]+)/.exec(timing)?.[1] ?? NaN);
    outsideMs.push(totalMs - queue - infer);
    serviceMs.push(infer);
  }
  const cpuPerRequestMs = (runtimeCpuMs() - cpuBefore - idleCpuPerMs * (performance.now() - startMs)) / count;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const serviceB1Ms = median(serviceMs);
  return { latencyMs: median(outsideMs), cpuMs: Math.max(0, cpuPerRequestMs - serviceB1Ms), serviceB1Ms, requests: count };
}
