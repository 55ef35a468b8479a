/**
 * What a stream's chunk costs the thread that runs its shard's steps beyond the kernel, measured on
 * the running edge: the stream shards' admission adds it to the model's kernel line
 * (src/stream/stream-buffer.ts), as the planner adds a request's CPU to the buffered path's batches
 * (request-overhead.ts).
 *
 * Real-time streams each send a chunk every chunk interval at their own phase (spread evenly over
 * the interval), so each chunk arrives as an event of its own, as real clients' do. Two readings
 * that batch differently, with the step window at 3/4 of the interval: FEW_STREAMS (one row a step)
 * and up to MANY_STREAMS (several rows a step; fewer streams when the shard admits fewer), after a
 * short run that warms the session up. Each is the runtime's CPU per chunk over MEASURE_MS after
 * WARM_MS, net of its idle CPU (read after the warm-up) and of the kernel's time by the profile's
 * line, with the steps per chunk from the shard's counters. (Not by the line the shard learns:
 * workerd's clock counts whole ms, and a stall of the host moves that line for a while.) A line
 * through the two readings splits it into a part per chunk (its WebSocket message, the answer, the
 * attachment) and a part per step (its timer, concat and split, the session call): splitBatchCpu.
 * Used by `npm run profile` for the models that stream. Loopback only; bounded in time.
 */
import type { ServiceLine } from "../scheduler/service-estimate";
import { runtimeCpuReader } from "./process-cpu";
import type { Started } from "./processes";
import { type CpuReading, type EdgeStarter, IDLE_MS, splitBatchCpu, startMeasurementEdge } from "./request-overhead";

/**
 * Streams of the reading at one row a step, and the most of the one at many rows a step: near the
 * most a shard admits (its costs per chunk fall with the load: the runtime's event loop wakes for
 * several messages at once), as the buffered path's CPU is read near the load plans run at.
 */
const FEW_STREAMS = 1;
const MANY_STREAMS = 24;
/**
 * The share of the chunk interval the edge's step window is set to while measuring
 * (measureStreamPath): real-time streams spread over the interval then share steps of several rows
 * (24 streams: about 18), one alone has steps of one.
 */
const STREAM_WINDOW_SHARE = 0.75;
/** How long the streams run before a reading starts, and how long it lasts, ms. */
const WARM_MS = 2_000;
const MEASURE_MS = 8_000;
const OPEN_TIMEOUT_MS = 30_000;
/** How long the shard may take to see its streams closed after a reading, ms. */
const CLOSE_TIMEOUT_MS = 10_000;
/**
 * Tries of a reading: a stall of this shared host's workerd (80-170 ms, about once in 5-15 s) can
 * hold a chunk past its deadline, which closes its stream (1013) and spoils the reading.
 */
const READING_TRIES = 3;

/** One reading: the streams it ran, the chunks the shard ran in it, its steps per chunk, the runtime's CPU per chunk beyond the kernel and the kernel's per chunk by the profile's line. */
export interface StreamCpuReading {
  streams: number;
  chunks: number;
  stepsPerChunk: number;
  cpuMs: number;
  kernelMs: number;
}

/** A stream chunk's cost beyond the kernel (cpuMs per chunk, batchCpuMs per step) and the two readings it is fitted to. */
export interface StreamOverhead {
  cpuMs: number;
  batchCpuMs: number;
  intervalMs: number;
  readings: { few: StreamCpuReading; many: StreamCpuReading };
  measuredAt: string;
}

/** What a stream needs to be driven: its model, its chunk length and how often a real-time client sends one. */
export interface StreamDrive {
  model: string;
  chunkSamples: number;
  intervalMs: number;
  /** The kernel's line (the profile's). */
  kernel: ServiceLine;
}

/**
 * Calls `onSlot(client)` at each client's slot of every `intervalMs` (client i at phase
 * i x intervalMs / clients, to the ms) until `endMs` (performance.now()); returns a stopper.
 */
export function pacer(clients: number, intervalMs: number, endMs: number, onSlot: (client: number) => void): () => void {
  const slots = Math.max(1, Math.round(intervalMs));
  const buckets = Array.from({ length: slots }, () => [] as number[]);
  for (let i = 0; i < clients; i++) buckets[Math.floor((i * slots) / clients)]!.push(i);
  let lastSlot = Math.floor(performance.now()) - 1;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now >= endMs) return clearInterval(timer);
    for (let slot = lastSlot + 1; slot <= Math.floor(now); slot++) for (const i of buckets[slot % slots]!) onSlot(i);
    lastSlot = Math.floor(now);
  }, 1);
  return () => clearInterval(timer);
}

/** Opens a WebSocket (binary frames as ArrayBuffers), or says why it did not open within `timeoutMs`. */
export function openSocket(url: string, timeoutMs = OPEN_TIMEOUT_MS): Promise<{ ws: WebSocket } | { reason: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      ws.close();
      resolve({ reason: `not open within ${timeoutMs} ms` });
    }, timeoutMs);
    ws.addEventListener("open", () => (clearTimeout(timer), resolve({ ws })), { once: true });
    ws.addEventListener("error", (event) => (clearTimeout(timer), resolve({ reason: (event as ErrorEvent).message || "error event" })), { once: true });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The stream shards' counters, summed. */
async function shardCounters(edge: Started, model: string): Promise<{ batches: number; rows: number; streams: number }> {
  const response = await fetch(`${edge.url}/v2/models/${model}/stream/stats`);
  if (!response.ok) throw new Error(`stream overhead: ${model}'s stream stats answered ${response.status}`);
  const { shards } = (await response.json()) as { shards: Array<{ batches: number; rows: number; streams: number }> };
  const sum = (f: (s: (typeof shards)[number]) => number) => shards.reduce((n, s) => n + f(s), 0);
  return { batches: sum((s) => s.batches), rows: sum((s) => s.rows), streams: sum((s) => s.streams) };
}

/** Waits (at most CLOSE_TIMEOUT_MS) until `model`'s stream shards on `edge` have no stream open: they see closes after the client does. */
export async function waitForNoStreams(edge: Started, model: string): Promise<void> {
  for (const untilMs = performance.now() + CLOSE_TIMEOUT_MS; performance.now() < untilMs && (await shardCounters(edge, model)).streams > 0; ) await sleep(100);
}

/** One reading with up to `count` real-time streams (those the shard admits), net of `idleCpuPerMs`. */
async function readStreams(edge: Started, drive: StreamDrive, count: number, runtimeCpuMs: () => number, idleCpuPerMs: number, measureMs = MEASURE_MS): Promise<StreamCpuReading> {
  const url = `${edge.url.replace(/^http/, "ws")}/v2/models/${drive.model}/stream`;
  const sockets: WebSocket[] = [];
  // One at a time: the first refusal (the shard is full) ends the opening.
  while (sockets.length < count) {
    const opened = await openSocket(url);
    if (!("ws" in opened)) break;
    sockets.push(opened.ws);
  }
  if (!sockets.length) throw new Error(`stream overhead: no ${drive.model} stream opened`);
  const chunk = Float32Array.from({ length: drive.chunkSamples }, (_, k) => 0.4 * Math.sin(k / 3));
  const unanswered = sockets.map(() => 0);
  let failure: string | undefined;
  sockets.forEach((ws, i) => {
    ws.addEventListener("message", (event) => {
      if (String(event.data).startsWith('{"error"')) failure ??= String(event.data);
      else unanswered[i]!--;
    });
    ws.addEventListener("close", (event) => void (failure ??= `stream closed by the edge (${event.code})`), { once: true });
  });
  try {
    const endMs = performance.now() + WARM_MS + measureMs;
    // A stream whose last chunk is unanswered misses its slot, as a real-time client's chunk would queue behind it.
    const stop = pacer(sockets.length, drive.intervalMs, endMs, (i) => {
      if (unanswered[i]! > 0) return;
      unanswered[i]!++;
      sockets[i]!.send(chunk);
    });
    await sleep(WARM_MS);
    const before = { cpu: runtimeCpuMs(), counters: await shardCounters(edge, drive.model), atMs: performance.now() };
    await sleep(measureMs);
    const after = { cpu: runtimeCpuMs(), counters: await shardCounters(edge, drive.model), atMs: performance.now() };
    stop();
    if (failure) throw new Error(`stream overhead: a ${drive.model} stream failed: ${failure}`);
    const chunks = after.counters.rows - before.counters.rows;
    const steps = after.counters.batches - before.counters.batches;
    if (!(chunks > 0 && steps > 0)) throw new Error(`stream overhead: the ${drive.model} shard ran no chunks in ${measureMs} ms`);
    const totalMs = (after.cpu - before.cpu - idleCpuPerMs * (after.atMs - before.atMs)) / chunks;
    const kernelMs = (drive.kernel.baseMs * steps) / chunks + drive.kernel.perRowMs;
    return { streams: sockets.length, chunks, stepsPerChunk: steps / chunks, cpuMs: Math.max(0, totalMs - kernelMs), kernelMs };
  } finally {
    for (const ws of sockets) ws.close(1000, "reading over");
    await waitForNoStreams(edge, drive.model);
  }
}

/** Measures a stream chunk's cost beyond the kernel on `edge` (see the module doc). */
export async function measureStreamOverhead(edge: Started, drive: StreamDrive): Promise<StreamOverhead> {
  const runtimeCpuMs = runtimeCpuReader(edge.process.pid!, new URL(edge.url).port);
  // Streams for a while first: the session's first runs and the runtime's start-up work are not idle.
  await readStreams(edge, drive, FEW_STREAMS, runtimeCpuMs, 0, WARM_MS);
  const idleStart = { cpu: runtimeCpuMs(), atMs: performance.now() };
  await sleep(IDLE_MS);
  const idleCpuPerMs = (runtimeCpuMs() - idleStart.cpu) / (performance.now() - idleStart.atMs);
  const read = async (count: number): Promise<StreamCpuReading> => {
    for (let tries = 1; ; tries++) {
      try {
        return await readStreams(edge, drive, count, runtimeCpuMs, idleCpuPerMs);
      } catch (error) {
        if (tries >= READING_TRIES) throw error;
        console.warn(`${(error as Error).message}; reading again`);
      }
    }
  };
  const few = await read(FEW_STREAMS);
  const many = await read(MANY_STREAMS);
  const asRequests = (r: StreamCpuReading): CpuReading => ({ cpuMs: r.cpuMs, batchesPerRequest: r.stepsPerChunk, batchMs: 0 });
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const rounded = (r: StreamCpuReading): StreamCpuReading => ({ ...r, stepsPerChunk: round(r.stepsPerChunk), cpuMs: round(r.cpuMs), kernelMs: round(r.kernelMs) });
  const { cpuMs: perChunkMs, batchCpuMs } = splitBatchCpu(asRequests(few), asRequests(many));
  return { cpuMs: round(perChunkMs), batchCpuMs: round(batchCpuMs), intervalMs: drive.intervalMs, readings: { few: rounded(few), many: rounded(many) }, measuredAt: new Date().toISOString() };
}

/** Measures a stream chunk's cost beyond the kernel on an edge of its own started by `start`, its step window at STREAM_WINDOW_SHARE of the chunk interval. */
export async function measureStreamPath(start: EdgeStarter, port: number, drive: StreamDrive): Promise<StreamOverhead> {
  const edge = await startMeasurementEdge(start, port, drive.model, { batching: { windowMs: STREAM_WINDOW_SHARE * drive.intervalMs, adaptiveWindow: false } });
  try {
    return await measureStreamOverhead(edge, drive);
  } finally {
    await edge.stop();
  }
}
