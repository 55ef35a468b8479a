/**
 * What a request costs outside its batch's service time, measured on the running stack:
 * `latencyMs` at light load (one request at a time), the client's latency minus its wait in the
 * queue and its batch's service time as the scheduler sees them (HTTP, parsing, the dev proxy, the Durable Object call;
 * the planner's overheadMs), and `cpuMs`, the CPU the runtime process (the Worker and its Durable
 * Objects share one workerd thread locally) spends per request beyond its share of batch time, at a
 * moderate rate and net of the idle runtime's CPU: work that delays the batches, so the planner's
 * service time per batch of k rows is s(k) + k cpuMs there.
 *
 * The CPU is then read again at the rate that keeps the thread about CPU_LOAD_SHARE busy by the
 * reading before (fixed costs amortise with load, so the rate is found in two steps), paced and in
 * bursts of CPU_BURST requests sent at once (they share a batch). Per request the runtime then
 * spends cpuMs + batchCpuMs x (batches per request), a line through the two readings: what a batch
 * costs beyond its kernel (the Durable Object's dispatch, its answers) is batchCpuMs, and the
 * planner's service per batch becomes s(k) + batchCpuMs + k cpuMs (src/models/profile.ts).
 * measureEdgePaths does this for both edge paths, buffered and direct, each on an edge of its own.
 * Used by `npm run profile` and `npm run bench -- fidelity` and `-- edge`. Loopback only.
 */
import { header, post, serverTimingMs } from "./loopback-http";
import { runtimeCpuReader } from "./process-cpu";
import type { Started } from "./processes";

/** How long the idle runtime's CPU is sampled, ms. */
export const IDLE_MS = 2_000;

/** Most requests of a CPU reading whose connection may fail (they are left out of it). */
const MAX_RESET_SHARE = 0.01;

/** Requests sent at once in the bursty CPU reading. */
const CPU_BURST = 8;

/**
 * How busy the loaded CPU readings keep workerd's thread: near the load plans run at (the planner
 * keeps a server at most 85 % busy), where per-request costs are lower than at light load (the
 * event loop wakes once for several requests, a batch's fixed costs spread over its rows).
 */
const CPU_LOAD_SHARE = 0.6;

/**
 * The buffered path's window while its overheads are measured: long enough that a burst of requests
 * sent at once shares a batch (with no window each finds the server free: workerd runs the
 * Worker's handling of the next request only after the batch before it), short next to the gaps
 * of the paced readings (the light-load latency leaves the queue's wait out).
 */
const BURST_WINDOW_MS = 2;

/** A request's cost outside its batch, and the batch service time seen at light load (ms). */
export interface RequestOverhead {
  latencyMs: number;
  cpuMs: number;
  /** CPU per batch beyond its kernel and its requests' cpuMs. */
  batchCpuMs: number;
  /**
   * Batch time at batch size 1 as the scheduler measured it (Server-Timing infer): the mean of the
   * middle 80 % of the readings (workerd's clock counts whole ms, so their median would too).
   */
  serviceB1Ms: number;
  /** The rate the CPU was read at, /s. */
  cpuRatePerS: number;
  /**
   * The batch time by batch size as the scheduler measured it (Server-Timing infer) in the loaded
   * readings, a line through the two (liveServiceLine): the live line the controller learns.
   */
  serviceLine: { baseMs: number; perItemMs: number };
  /** The two readings batchCpuMs is fitted to. */
  readings: { paced: CpuReading; bursts: CpuReading };
  requests: number;
}

/** The runtime's CPU per request beyond its share of batch time, the batches per request it saw, and their mean time (Server-Timing infer). */
export interface CpuReading {
  cpuMs: number;
  batchesPerRequest: number;
  batchMs: number;
}

/**
 * Sends one-row requests to `model` on `edge`: `count` one at a time at `ratePerS` (latency), then
 * `cpuCount` open-loop at `cpuRatePerS` (CPU), then for `cpuSeconds` each at the rate that keeps
 * the thread about CPU_LOAD_SHARE busy: once paced to find it, then paced and in bursts.
 */
export async function measureRequestOverhead(
  edge: Started,
  model: string,
  body: { body: string | Uint8Array; headers: Record<string, string> },
  { ratePerS = 20, count = 120, cpuRatePerS = 60, cpuCount = 300, warmUp = 60, isBatchOnRuntime = true, cpuSeconds = 5 } = {},
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
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const latencyMs = sorted(outsideMs)[Math.floor(count / 2)]!;
  const middle = sorted(serviceMs).slice(Math.floor(count / 10), count - Math.floor(count / 10));
  const serviceB1Ms = middle.reduce((a, b) => a + b, 0) / middle.length;
  // CPU per request beyond its share of batch time, at a moderate rate, net of the idle runtime's CPU.
  const first = await readCpu(edge, model, body, cpuRatePerS, cpuCount, isBatchOnRuntime);
  const loadedRate = (reading: CpuReading) => Math.max(1, Math.round((CPU_LOAD_SHARE * 1000) / (reading.cpuMs + serviceB1Ms)));
  const nearRatePerS = loadedRate(first);
  const nearCount = Math.ceil(nearRatePerS * cpuSeconds);
  const near = await readCpu(edge, model, body, nearRatePerS, nearCount, isBatchOnRuntime);
  const loadedRatePerS = loadedRate(near);
  const loadedCount = Math.ceil(loadedRatePerS * cpuSeconds);
  const paced = await readCpu(edge, model, body, loadedRatePerS, loadedCount, isBatchOnRuntime);
  const bursts = await readCpu(edge, model, body, loadedRatePerS, loadedCount, isBatchOnRuntime, CPU_BURST);
  const round = (r: CpuReading): CpuReading => ({ cpuMs: Math.round(r.cpuMs * 1000) / 1000, batchesPerRequest: Math.round(r.batchesPerRequest * 1000) / 1000, batchMs: Math.round(r.batchMs * 1000) / 1000 });
  return { latencyMs, ...splitBatchCpu(paced, bursts), serviceB1Ms, cpuRatePerS: loadedRatePerS, serviceLine: liveServiceLine(paced, bursts), readings: { paced: round(paced), bursts: round(bursts) }, requests: count + cpuCount + nearCount + 2 * loadedCount };
}

/** Both edge paths' overheads, as profile.json keeps them. */
export interface EdgePathOverheads {
  requestOverhead: RequestOverhead & { measuredAt: string };
  directOverhead: RequestOverhead & { measuredAt: string };
}

/** How an edge is started for a path's measurement (static plans, no origin; the model's plan in MODEL_OVERRIDES). */
export type EdgeStarter = (options: { port: number; vars: Record<string, string> }) => Promise<Started>;

/** Starts the edge a path of `model` is measured on: static plans, no origin, no request log, `override` applied to the model's manifest. */
export function startMeasurementEdge(start: EdgeStarter, port: number, model: string, override: Record<string, unknown>): Promise<Started> {
  return start({ port, vars: { ORIGIN_URLS: "", CONTROL_MODE: "static", LOG_REQUESTS: "false", MODEL_OVERRIDES: JSON.stringify({ [model]: override }) } });
}

/**
 * Measures `model`'s overheads on one edge path, buffered (`edge`: through a Durable Object, window
 * BURST_WINDOW_MS) or `direct` (in the Worker), on an edge of its own started by `start`: `count`
 * requests at light load, CPU first paced at `cpuRatePerS`, then at CPU_LOAD_SHARE of the thread.
 */
export async function measureEdgePath(
  start: EdgeStarter,
  port: number,
  model: string,
  body: { body: string | Uint8Array; headers: Record<string, string> },
  placement: "edge" | "direct",
  { count = 120, cpuRatePerS = 60 }: { count?: number; cpuRatePerS?: number } = {},
): Promise<RequestOverhead & { measuredAt: string }> {
  const batching = { windowMs: placement === "edge" ? BURST_WINDOW_MS : 0, adaptiveWindow: false };
  const edge = await startMeasurementEdge(start, port, model, { placement, batching });
  try {
    const overhead = await measureRequestOverhead(edge, model, body, { count, cpuRatePerS, cpuCount: Math.ceil(cpuRatePerS * 5) });
    return { ...overhead, measuredAt: new Date().toISOString() };
  } finally {
    await edge.stop();
  }
}

/** Both edge paths' overheads (measureEdgePath), buffered then direct; `onPath` is told when each is done. */
export async function measureEdgePaths(
  start: EdgeStarter,
  port: number,
  model: string,
  body: { body: string | Uint8Array; headers: Record<string, string> },
  { count = 120, cpuRatePerS = 60, onPath = () => {} }: { count?: number; cpuRatePerS?: number; onPath?: () => void } = {},
): Promise<EdgePathOverheads> {
  const measure = async (placement: "edge" | "direct") => {
    const overhead = await measureEdgePath(start, port, model, body, placement, { count, cpuRatePerS });
    onPath();
    return overhead;
  };
  return { requestOverhead: await measure("edge"), directOverhead: await measure("direct") };
}

/**
 * Per request and per batch CPU from two readings at different batches per request (a line through
 * them: cpu = cpuMs + batchCpuMs x batches per request), both at least 0. Readings that batched
 * alike (or a per-batch part that would be negative) leave it all per request: the paced reading's.
 */
export function splitBatchCpu(paced: CpuReading, bursts: CpuReading): { cpuMs: number; batchCpuMs: number } {
  const spread = paced.batchesPerRequest - bursts.batchesPerRequest;
  const batchCpuMs = spread > 0.1 ? (paced.cpuMs - bursts.cpuMs) / spread : 0;
  if (!(batchCpuMs > 0)) return { cpuMs: paced.cpuMs, batchCpuMs: 0 };
  const perRequest = bursts.cpuMs - batchCpuMs * bursts.batchesPerRequest;
  return perRequest >= 0 ? { cpuMs: perRequest, batchCpuMs } : { cpuMs: 0, batchCpuMs: paced.cpuMs / paced.batchesPerRequest };
}

/**
 * The batch time by batch size through two readings' mean batches (rows per batch = 1 / batches per
 * request) and mean batch times. Readings that batched alike, or a line falling with the batch
 * size, give a line through the origin and the larger batches' point; a negative base is clipped
 * to 0 the same way.
 */
export function liveServiceLine(paced: CpuReading, bursts: CpuReading): { baseMs: number; perItemMs: number } {
  const [small, large] = [1 / paced.batchesPerRequest, 1 / bursts.batchesPerRequest];
  const perItemMs = (bursts.batchMs - paced.batchMs) / (large - small);
  const baseMs = bursts.batchMs - perItemMs * large;
  if (large - small > 0.5 && perItemMs >= 0 && baseMs >= 0) return { baseMs, perItemMs };
  return { baseMs: 0, perItemMs: bursts.batchMs / large };
}

/**
 * The runtime's CPU per request beyond its share of batch time (when batches run on the runtime),
 * net of the idle runtime's CPU, with `count` requests sent open-loop at `ratePerS`, and the
 * batches per request the answers reported; `burst` requests are sent at once, `ratePerS` on average.
 */
async function readCpu(edge: Started, model: string, body: { body: string | Uint8Array; headers: Record<string, string> }, ratePerS: number, count: number, isBatchOnRuntime: boolean, burst = 1): Promise<CpuReading> {
  const url = `${edge.url}/v2/models/${model}/infer`;
  const runtimeCpuMs = runtimeCpuReader(edge.process.pid!, new URL(edge.url).port);
  const idleStart = { cpu: runtimeCpuMs(), at: performance.now() };
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCpuPerMs = (runtimeCpuMs() - idleStart.cpu) / (performance.now() - idleStart.at);
  const cpuBefore = runtimeCpuMs();
  const startMs = performance.now();
  let batchMsShare = 0;
  let batches = 0;
  let failure: string | undefined;
  // Connections the runtime reset (its thread's connection intake, late after a stall of the host's
  // workerd): those requests never reached the Worker, so the reading is per answered request; a
  // few are tolerated, more fail the reading.
  const resets: string[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i += burst) {
    const waitMs = startMs + (i * 1000) / ratePerS - performance.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    for (let j = i; j < Math.min(count, i + burst); j++) {
      pending.push(
        post(url, body.body, body.headers).then(
          (answer) => {
            // Thrown after every request has answered: a rejection now would leave the others unawaited.
            if (answer.status !== 200) failure ??= `request overhead: ${model} answered ${answer.status} at ${ratePerS}/s${burst > 1 ? ` in bursts of ${burst}` : ""}`;
            const rows = Number(header(answer, "x-batch-size") ?? 1);
            batchMsShare += serverTimingMs(answer, "infer") / rows;
            batches += 1 / rows;
          },
          // Handled at once: the loop is still sending, and an unhandled rejection would end the process.
          (error: NodeJS.ErrnoException) => void resets.push(error.code ?? error.message),
        ),
      );
    }
  }
  await Promise.all(pending);
  if (failure) throw new Error(failure);
  if (resets.length > count * MAX_RESET_SHARE) throw new Error(`request overhead: ${resets.length} of ${count} requests to ${model} at ${ratePerS}/s failed (${[...new Set(resets)].join(", ")})`);
  const answered = count - resets.length;
  const elapsedMs = performance.now() - startMs;
  return { cpuMs: Math.max(0, (runtimeCpuMs() - cpuBefore - idleCpuPerMs * elapsedMs - (isBatchOnRuntime ? batchMsShare : 0)) / answered), batchesPerRequest: batches / answered, batchMs: batchMsShare / batches };
}
