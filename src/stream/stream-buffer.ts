/**
 * StreamBuffer: the Durable Object that serves one shard of a model's streams at one set of scalars
 * (named `<model>#stream#<key>#<shard>`, e.g. `silero-vad#stream#sr=16000#0`), over WebSockets with
 * the hibernation API. A stream stays on its shard for its life; each stream's recurrent state and
 * answered count live with its socket (stream-attachment.ts), so they survive hibernation.
 *
 * Cellular batching on the shared scheduler: every chunk is one row submitted to a BatchLoop whose
 * flush policy is the step policy (src/scheduler/step-policy.ts), told how many streams are open.
 * The step window is the manifest's while that keeps the open real-time streams within the SLO,
 * else the narrowest wider one that does (planStreamWindows): chunks of streams that send apart
 * then share batches, and a batch costs the shard far more than a row. A
 * stream has at most one chunk in the scheduler: its next chunk (or reset, or close) waits in the
 * stream's own queue, in order, until the previous one is answered, and then runs with that
 * answer's state. So a step is one chunk of every active stream, formed as soon as all are in or
 * when the window ends. The scheduler's maxBatch is also capped at the open streams, since no step
 * can hold more: its admission then predicts a step's time from the sizes steps can have (the step
 * policy decides the same either way). Batches are concatenated, run on the model's runner and
 * split as in the buffers (src/buffer/model-server.ts). A chunk's deadline is its arrival plus the
 * model's maxLatencyMs; a chunk the scheduler refuses or that misses its deadline closes its stream
 * (1013). Bad input on one stream closes that stream only (stream-protocol.ts has the codes).
 *
 * Admission at open: a shard takes a new stream only while its open streams, each sending a chunk
 * in real time (spec.realTimeIntervalMs), keep the chunk latency within 80 % of the model's SLO
 * (the rest is the client's hops and the host's jitter) and the shard busy at most
 * STREAM_MAX_UTILISATION of the time, as the planner's step model predicts it at the best step
 * window (planStreamWindows) for the model's profiled kernel line plus what its thread spends
 * beyond the kernel per chunk and per step, as the profile measured them for real-time streams
 * (`pathCpu.stream`: `npm run profile`, src/cli/stream-overhead.ts); and while the chunks it
 * answered in the last 5 s met the SLO (the host may be slower than the profile says). Otherwise
 * the upgrade is refused with 503 and Retry-After (the Worker tries the model's other shards
 * first), so the streams already open keep their latency instead of all of them degrading.
 *
 * Metrics (src/observability/stream-metrics.ts: opens, closes, chunks, chunk latency, step sizes)
 * go to the model's controller at most every FLUSH_EVERY_MS (10 s), and within that of the last
 * record. The shard also reports its streams (open, the most it admits, refused) to the controller,
 * which sizes the plan's stream shards from them (src/control/stream-load.ts): within a second of a
 * change, and every 10 s while chunks flow.
 */
import { DurableObject } from "cloudflare:workers";
import { concatBatch, splitBatch } from "../batching/tensor-batch";
import { runtimeConfig } from "../config";
import { controllerOf } from "../control/model-controller";
import { PLAN_SLO_SHARE } from "../control/replan";
import { learnPlan, servingManifest } from "../control/plan-cache";
import { REPORT_EVERY_MS, type StreamReport } from "../control/stream-load";
import type { CatalogEntry } from "../models/catalog";
import type { PathCpu } from "../models/profile";
import { maxLatencyMsOf, runtimeOf, type BatchingConfig, type ModelManifest } from "../models/manifest";
import { planStreamWindows, windowForStreams, type StreamWindowPlan } from "../planner/stream-steps";
import { errorResponse, InferenceError, unavailable } from "../protocol/errors";
import type { Tensor } from "../protocol/tensor";
import { runnerFor } from "../runner/runner-for";
import { BatchLoop, type Executed } from "../scheduler/batch-loop";
import { Scheduler, type SchedulerLimits } from "../scheduler/scheduler";
import { ServiceEstimate } from "../scheduler/service-estimate";
import { stepPolicy } from "../scheduler/step-policy";
import { reportStateOf, statsSnapshot, type BufferStatsSnapshot } from "../buffer/model-server";
import { FLUSH_EVERY_MS, MetricsDelivery } from "../edge/request-metrics";
import { StreamMetrics } from "../observability/stream-metrics";
import { readAttachment, type StreamAttachment } from "./stream-attachment";
import { answerText, CLOSE_CODES, closeCodeFor, closeReason, errorText, MAX_CHUNKS_IN_FLIGHT, parseFrame, streamSpecOf, type StreamSpec } from "./stream-protocol";
import { chunkInputs, chunkResult, scalarTensors, zeroState, type ChunkResult } from "./stream-step";

/**
 * What the statistics show of one stream shard: the scheduler's counters (a batch is a step, or part
 * of one), the open streams, the most it admits now (absent for a stream without a real-time pace),
 * the streams it refused at open and the step window in use.
 */
export type StreamStatsSnapshot = BufferStatsSnapshot & { streams: number; maxStreams?: number; refusedStreams: number; stepWindowMs?: number };

/**
 * The most of its time a stream shard may be busy, kernel and handling (the step model's
 * utilisation). Lower than the buffers' 0.85: real-time chunks arrive on a clock, and a stall of
 * the host (this one's workerd stops for 80-170 ms every 5-15 s) delays every chunk that arrives
 * until the backlog drains, which takes longer the busier the shard. Locally, with the clients on
 * the same two cores, paced clients' p99 at the client was 42-105 ms (SLO 50) with the 41-46
 * streams a cap of 0.7 admitted (by the learnt line, 2026-12-07), and 40-47 ms on plain workerd
 * (44-63 under wrangler dev, whose proxy shares the cores) with the 24 a cap of 0.5 admits.
 */
export const STREAM_MAX_UTILISATION = 0.5;
/**
 * Admission plans the open streams' chunk latency within this share of the SLO's ms, as the
 * controller plans every new plan (PLAN_SLO_SHARE): the model is of the shard, arrival to answer,
 * and a client also waits for the hops to and from it and for the host's jitter.
 */
export const STREAM_SLO_SHARE = PLAN_SLO_SHARE;
/** The step windows a shard considers beyond the manifest's: this many even steps up to the chunk interval. */
const WINDOW_STEPS = 8;
/** How often the admission limit follows the learnt service line (of a model without a profiled one), ms. */
const CAPACITY_REFRESH_MS = 1000;
/** How far back the shard looks at its answered chunks' latency when admitting, ms. */
const RECENT_LATENCY_MS = 5000;
/** Least time between two reports of the shard's streams to the controller, ms. */
const REPORT_MIN_INTERVAL_MS = 1000;
/** Fewest recent answers that say the shard is late (fewer: too few to judge), and the most kept. */
const RECENT_LATENCY_MIN_CHUNKS = 64;
const RECENT_LATENCY_LIMIT = 1024;

/** A message of a stream waiting for its turn. */
type Pending = { kind: "chunk"; seq: number; samples: Float32Array; receivedAtMs: number; settled: () => void } | { kind: "reset" } | { kind: "close" };

/** One open stream. */
interface Stream {
  ws: WebSocket;
  /** Names its chunks in the scheduler. */
  id: number;
  state: Float32Array;
  /** Seq of the next answer, and of the next chunk to arrive. */
  nextSeq: number;
  receivedSeq: number;
  pending: Pending[];
  /** Whether a chunk of it is in the scheduler. */
  isRunning: boolean;
  isOpen: boolean;
}

/** The header in which the Worker tells a stream shard its number (the client's own is replaced). */
export const STREAM_SHARD_HEADER = "x-eir-stream-shard";
/** Storage key of the shard's number (its reports name it after a hibernation). */
const SHARD_KEY = "shard";

/** The latency target admission plans for: the model's SLO at STREAM_SLO_SHARE of its ms. */
const admissionSlo = ({ slo }: ModelManifest) => ({ percentile: slo.percentile, ms: slo.ms * STREAM_SLO_SHARE });

/** The stub of a stream shard. */
export function streamStub(namespace: DurableObjectNamespace<StreamBuffer>, model: string, key: string, shard: number, locationHint?: DurableObjectLocationHint): DurableObjectStub<StreamBuffer> {
  return namespace.get(namespace.idFromName(`${model}#stream#${key}#${shard}`), locationHint ? { locationHint } : undefined);
}

/** Serves one shard of a model's streams. */
export class StreamBuffer extends DurableObject<Env> {
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();
  /** What a chunk and a step cost this shard's thread beyond the kernel, ms (admission); undefined: the model's profile's. Tests raise it to fill a shard with few streams. */
  handlingCpu?: PathCpu;
  /** Recently answered chunks: when (ms) and how long each took from arrival, oldest first, bounded. */
  private readonly recent: Array<{ atMs: number; ms: number }> = [];
  private readonly streams = new Map<WebSocket, Stream>();
  /** Whether the streams of sockets accepted before a hibernation are back in `streams`. */
  private isRestored = false;
  private nextStreamId = 1;
  private spec?: StreamSpec;
  private batching?: BatchingConfig;
  private scalars?: Map<string, Tensor>;
  private loop?: BatchLoop<Tensor[], ChunkResult>;
  /** The admission limit, for the inputs it was computed from (recomputed when they change). */
  private capacity?: { key: string; computedAtMs: number; plan: StreamWindowPlan };
  /** The step window in use, ms. */
  private stepWindowMs?: number;
  private refusedStreams = 0;
  /** Streams admitted and not yet open (waiting for a warm session): they count towards the limit. */
  private joining = 0;
  private metrics?: MetricsDelivery<StreamMetrics>;
  private flushTimer?: ReturnType<typeof setTimeout>;
  /** This shard's number among its key's (from its name), for its reports. */
  private shard?: number;
  /** When the controller was last told of this shard's streams, and what. */
  private reported?: { atMs: number; state: string };
  private reportTimer?: ReturnType<typeof setTimeout>;

  /** Opens a stream: a WebSocket upgrade forwarded by the Worker (src/routes/stream.ts). */
  override async fetch(request: Request): Promise<Response> {
    try {
      const entry = this.entryOf(new URL(request.url).pathname.split("/")[3] ?? "");
      const spec = streamSpecOf(entry.manifest, Object.fromEntries(new URL(request.url).searchParams));
      this.restore();
      const shard = Number(request.headers.get(STREAM_SHARD_HEADER) ?? NaN);
      if (Number.isInteger(shard) && shard >= 0 && shard !== this.shard) this.ctx.storage.kv.put(SHARD_KEY, (this.shard = shard));
      this.serve(entry, spec);
      this.admit(entry);
      this.joining++;
      try {
        // The first stream waits for a warm session, so its first chunk is not a cold start.
        await runnerFor(entry, runtimeConfig(this.env)).warm?.();
      } finally {
        this.joining--;
      }
      const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      this.ctx.acceptWebSocket(server);
      const stream = this.track(server, { v: 1, model: spec.model, scalars: spec.scalars, nextSeq: 0, state: zeroState(spec) });
      this.save(stream);
      this.record((m) => m.opened(101));
      this.reportStreams("change");
      return new Response(null, { status: 101, webSocket: client });
    } catch (error) {
      if (!(error instanceof InferenceError)) console.error("stream buffer: opening a stream failed:", error);
      return errorResponse(error);
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.restore();
    const stream = this.streams.get(ws);
    if (!stream?.isOpen || !this.spec) return;
    const frame = parseFrame(message, this.spec.chunkSamples);
    if (frame.kind === "invalid") return this.fail(stream, frame.code, frame.message);
    if (frame.kind !== "chunk") {
      stream.pending.push(frame);
      return this.advance(stream);
    }
    if (stream.receivedSeq - stream.nextSeq >= MAX_CHUNKS_IN_FLIGHT) return this.fail(stream, CLOSE_CODES.policy, `more than ${MAX_CHUNKS_IN_FLIGHT} chunks in flight; wait for answers`);
    // The event stays open until this chunk is answered (or its stream ends), which keeps the object awake meanwhile.
    await new Promise<void>((settled) => {
      stream.pending.push({ kind: "chunk", seq: stream.receivedSeq++, samples: frame.samples, receivedAtMs: this.now(), settled });
      this.advance(stream);
    });
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.restore();
    const stream = this.streams.get(ws);
    if (stream) this.forget(stream, code);
    // Completes the closing handshake (before the auto-reply compatibility date it is ours to send).
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? CLOSE_CODES.normal : code, "");
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.restore();
    const stream = this.streams.get(ws);
    if (stream) this.forget(stream, CLOSE_CODES.abnormal);
  }

  /** Delivers the metrics recorded so far and the streams' report to the model's controller now (tests; otherwise within FLUSH_EVERY_MS and REPORT_MIN_INTERVAL_MS). */
  async flush(): Promise<void> {
    await Promise.all([this.metrics?.flush(this.env), this.reportStreams("now")]);
  }

  /** This shard's step counters and recent step sizes (rows per batch), and its open streams. */
  stats(): StreamStatsSnapshot {
    this.restore();
    const maxStreams = this.spec && this.maxStreams(this.entryOf(this.spec.model));
    return { ...statsSnapshot(this.loop?.stats, reportStateOf(this.loop?.scheduler)), streams: this.streams.size, ...(maxStreams !== undefined && { maxStreams }), refusedStreams: this.refusedStreams, ...(this.stepWindowMs !== undefined && { stepWindowMs: this.stepWindowMs }) };
  }

  /** Refuses (503) a new stream when the open ones already fill the shard (see the module doc). */
  private admit(entry: CatalogEntry): void {
    const maxStreams = this.maxStreams(entry);
    if (maxStreams === undefined) return;
    const { manifest } = entry;
    const { percentile, ms } = manifest.slo;
    const lateMs = this.recentLatencyMs(percentile);
    const refusal =
      this.streams.size + this.joining >= maxStreams ? `stream shard full: it serves ${this.streams.size} real-time streams, the most that keep p${100 * percentile} chunk latency within ${admissionSlo(manifest).ms} ms (${100 * STREAM_SLO_SHARE} % of the ${ms} ms SLO)`
      : lateMs !== undefined && lateMs > ms ? `stream shard overloaded: its p${100 * percentile} chunk latency over the last ${RECENT_LATENCY_MS / 1000} s is ${Math.round(lateMs)} ms, over the ${ms} ms SLO`
      : undefined;
    if (!refusal) return;
    this.refusedStreams++;
    this.record((m) => m.opened(503));
    this.reportStreams("change");
    throw unavailable(`${refusal}; try again later`, 1, "queue_full");
  }

  /** The `percentile` of the chunk latency over the last RECENT_LATENCY_MS, undefined with too few answers to judge. */
  private recentLatencyMs(percentile: number): number | undefined {
    const sinceMs = this.now() - RECENT_LATENCY_MS;
    while (this.recent.length && this.recent[0]!.atMs < sinceMs) this.recent.shift();
    if (this.recent.length < RECENT_LATENCY_MIN_CHUNKS) return undefined;
    const sorted = this.recent.map((r) => r.ms).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(percentile * sorted.length) - 1)];
  }

  /** The most real-time streams this shard admits now (undefined when its streams have no real-time pace). */
  private maxStreams(entry: CatalogEntry): number | undefined {
    return this.windowPlan(entry)?.maxStreams;
  }

  /**
   * The shard's step windows for real-time streams (planStreamWindows over the manifest's window and
   * eighths of the chunk interval), for the profile's kernel line (the learnt one where the profile
   * has none) and the handling costs; undefined when its streams have no real-time pace. Not the
   * learnt line where there is a profile: workerd's clock counts whole ms, and one stall of the
   * host moves that line for a while (2-10x), which would admit or refuse streams by chance.
   */
  private windowPlan(entry: CatalogEntry): StreamWindowPlan | undefined {
    const intervalMs = this.spec?.realTimeIntervalMs;
    if (intervalMs === undefined || !this.loop || !this.batching) return undefined;
    const { maxBatch, windowMs } = this.batching;
    const { manifest } = entry;
    const handling = this.handlingCpu ?? entry.pathCpu.stream;
    const profiled = entry.service[runtimeOf(manifest.placement)];
    // A learnt line moves with every batch: the plan follows it at most once a second (a burst of
    // opens costs one plan, not one each); a change of plan or SLO applies at once.
    const key = [handling.perRequestMs, handling.perBatchMs, maxBatch, windowMs, intervalMs, manifest.slo.percentile, manifest.slo.ms, manifest.placement].join();
    const nowMs = this.now();
    if (this.capacity?.key !== key || (!profiled && nowMs - this.capacity.computedAtMs >= CAPACITY_REFRESH_MS)) {
      const line = profiled ?? this.loop.scheduler.service.fit() ?? { baseMs: 0, perRowMs: 0 };
      const service = { kind: "linear" as const, baseMs: line.baseMs + handling.perBatchMs, perItemMs: line.perRowMs + handling.perRequestMs };
      const windowsMs = [windowMs, ...Array.from({ length: WINDOW_STEPS }, (_, k) => ((k + 1) * intervalMs) / WINDOW_STEPS).filter((w) => w > windowMs)];
      this.capacity = { key, computedAtMs: nowMs, plan: planStreamWindows({ load: { kind: "paced", intervalMs }, service, maxBatch }, admissionSlo(manifest), windowsMs, 0, STREAM_MAX_UTILISATION) };
    }
    return this.capacity.plan;
  }

  /** Runs what waits in `stream`'s queue, in order, while none of its chunks is in the scheduler. */
  private advance(stream: Stream): void {
    while (stream.isOpen && !stream.isRunning && stream.pending.length) {
      const next = stream.pending.shift()!;
      if (next.kind === "reset") {
        stream.state = zeroState(this.spec!);
        if (!this.save(stream)) return;
      } else if (next.kind === "close") {
        this.close(stream, CLOSE_CODES.normal, "closed as asked");
      } else {
        stream.isRunning = true;
        void this.run(stream, next);
      }
    }
  }

  /** Submits one chunk as a row of the next step; answers it and moves the stream on. */
  private async run(stream: Stream, chunk: Extract<Pending, { kind: "chunk" }>): Promise<void> {
    const manifest = this.entryOf(this.spec!.model).manifest;
    const outcome = await this.loop!.submit({
      id: `${stream.id}:${chunk.seq}`,
      rows: 1,
      batchKey: this.spec!.key,
      deadlineAtMs: chunk.receivedAtMs + maxLatencyMsOf(manifest),
      input: chunkInputs(manifest, this.spec!, this.scalars!, chunk.samples, stream.state),
    });
    stream.isRunning = false;
    chunk.settled();
    const rejection = outcome.ok ? undefined : outcome.error instanceof InferenceError ? outcome.error.rejection : undefined;
    const nowMs = this.now();
    if (outcome.ok) {
      this.recent.push({ atMs: nowMs, ms: nowMs - chunk.receivedAtMs });
      if (this.recent.length > RECENT_LATENCY_LIMIT) this.recent.shift();
    }
    this.record((m) => (!stream.isOpen ? m.chunk("cancelled") : outcome.ok ? m.chunk("answered", nowMs - chunk.receivedAtMs) : m.chunk(rejection ?? "failed")));
    this.reportStreams("chunk");
    if (!stream.isOpen) return;
    if (!outcome.ok) {
      const message = outcome.error instanceof InferenceError ? outcome.error.message : "internal error";
      return this.fail(stream, closeCodeFor(outcome.error), message, chunk.seq);
    }
    stream.state = outcome.value.state;
    stream.nextSeq = chunk.seq + 1;
    if (this.send(stream, answerText(chunk.seq, outcome.value.probability)) && this.save(stream)) this.advance(stream);
  }

  /** Concatenates the step's chunks, runs them on the model's runner and splits the outputs. */
  private async execute(inputs: Tensor[][], deadlineAtMs: number): Promise<Executed<ChunkResult>> {
    const entry = this.entryOf(this.spec!.model);
    // The runner reads the platform's clock: the time left, on it.
    const result = await runnerFor(entry, runtimeConfig(this.env)).run(concatBatch(entry.manifest.inputs, inputs), Date.now() + (deadlineAtMs - this.now()));
    const rows = splitBatch(entry.manifest.outputs, result.outputs, inputs.map(() => 1));
    this.record((m) => m.step(inputs.length));
    return { results: rows.map((outputs) => chunkResult(entry.manifest, this.spec!, outputs)), ...(result.serviceMs !== undefined && { serviceMs: result.serviceMs }) };
  }

  /** Sends the error, then closes the stream with `code`. */
  private fail(stream: Stream, code: number, message: string, seq?: number): void {
    if (!stream.isOpen || !this.send(stream, errorText(message, seq))) return;
    this.close(stream, code, message);
  }

  private close(stream: Stream, code: number, reason: string): void {
    this.forget(stream, code);
    try {
      stream.ws.close(code, closeReason(reason));
    } catch {
      // the socket is already gone
    }
  }

  /** Ends a stream here (closed with `code`): it no longer counts towards steps; its waiting chunks are dropped. */
  private forget(stream: Stream, code: number): void {
    if (!stream.isOpen) return;
    stream.isOpen = false;
    this.record((m) => m.closed(code));
    this.streams.delete(stream.ws);
    this.loop?.cancel(`${stream.id}:${stream.nextSeq}`);
    this.configure();
    for (const p of stream.pending.splice(0)) if (p.kind === "chunk") p.settled();
    this.reportStreams("change");
  }

  /**
   * Keeps the stream's state and answered count with its socket. False when the socket is gone (the
   * client closed it while a chunk ran, its close event still queued): the stream ends here.
   */
  private save(stream: Stream): boolean {
    return this.withSocket(stream, () => stream.ws.serializeAttachment({ v: 1, model: this.spec!.model, scalars: this.spec!.scalars, nextSeq: stream.nextSeq, state: stream.state } satisfies StreamAttachment));
  }

  /** Sends `text` on the stream's socket; false when the socket is gone (as for save). */
  private send(stream: Stream, text: string): boolean {
    return this.withSocket(stream, () => stream.ws.send(text));
  }

  private withSocket(stream: Stream, use: () => void): boolean {
    try {
      use();
      return true;
    } catch {
      this.forget(stream, CLOSE_CODES.abnormal);
      return false;
    }
  }

  private track(ws: WebSocket, attachment: StreamAttachment): Stream {
    const stream: Stream = { ws, id: this.nextStreamId++, state: attachment.state, nextSeq: attachment.nextSeq, receivedSeq: attachment.nextSeq, pending: [], isRunning: false, isOpen: true };
    this.streams.set(ws, stream);
    this.configure();
    return stream;
  }

  /** After a hibernation: the streams of the sockets still open, from their attachments. */
  private restore(): void {
    if (this.isRestored) return;
    this.isRestored = true;
    this.shard = this.ctx.storage.kv.get<number>(SHARD_KEY);
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = readAttachment(ws.deserializeAttachment());
      if (!attachment || ws.readyState !== WebSocket.READY_STATE_OPEN) continue;
      try {
        const entry = this.entryOf(attachment.model);
        this.serve(entry, streamSpecOf(entry.manifest, Object.fromEntries(Object.entries(attachment.scalars).map(([k, v]) => [k, String(v)]))));
        this.track(ws, attachment);
      } catch (error) {
        console.error("stream buffer: a stream could not be restored:", error);
        ws.close(CLOSE_CODES.internalError, "stream could not be restored");
      }
    }
  }

  /** Sets this shard up for `spec`'s streams (the first stream names it), or re-reads the model's limits. */
  private serve(entry: CatalogEntry, spec: StreamSpec): void {
    if (this.spec && this.spec.key !== spec.key) throw new InferenceError(400, `this stream shard serves ${this.spec.key}, not ${spec.key}`);
    this.batching = entry.manifest.batching;
    if (this.loop) return this.configure();
    this.spec = spec;
    this.scalars = scalarTensors(entry.manifest, spec);
    this.metrics = new MetricsDelivery(entry.manifest.name, () => new StreamMetrics(entry.manifest.name));
    const service = new ServiceEstimate(entry.service[runtimeOf(entry.manifest.placement)]);
    this.loop = new BatchLoop(new Scheduler(this.limits(), stepPolicy(() => this.streams.size), service), {
      label: entry.manifest.name,
      now: () => this.now(),
      execute: (inputs, batch) => this.execute(inputs, Math.max(...batch.jobs.map((j) => j.deadlineAtMs))),
    });
  }

  /**
   * The model's batching limits, maxBatch capped at the open streams (a step holds one chunk of
   * each), and the step window: for real-time streams the narrowest that carries the open ones
   * within the SLO (windowPlan), else the manifest's.
   */
  private limits(): SchedulerLimits {
    const { maxBatch, windowMs, maxQueueRows } = this.batching!;
    const plan = this.spec && this.windowPlan(this.entryOf(this.spec.model));
    this.stepWindowMs = plan ? windowForStreams(plan, Math.max(1, this.streams.size)) : windowMs;
    return { maxBatch: Math.max(1, Math.min(maxBatch, this.streams.size)), windowMs: this.stepWindowMs, maxQueueRows };
  }

  /** Applies the limits after a stream joined or left (or the model's plan changed). */
  private configure(): void {
    if (this.loop && this.batching) this.loop.scheduler.configure(this.limits());
  }

  /** Records metrics; delivers them when due, or arms a timer that delivers them within FLUSH_EVERY_MS. */
  private record(observe: (metrics: StreamMetrics) => void): void {
    if (!this.metrics) return;
    this.metrics.record(this.env, observe, (task) => this.ctx.waitUntil(task));
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      void this.metrics?.flush(this.env);
    }, FLUSH_EVERY_MS);
  }

  /**
   * Tells the model's controller this shard's streams (stream-load.ts), which plans the stream
   * shards from them, and learns its plan from the answer: within REPORT_MIN_INTERVAL_MS of an open,
   * a refusal or a close, every REPORT_EVERY_MS while chunks flow (a chunk costs a clock read until
   * then), and at once when asked (`flush`).
   */
  private reportStreams(why: "change" | "chunk" | "now"): Promise<void> | undefined {
    if (!this.spec || this.shard === undefined || (why !== "now" && this.reportTimer)) return;
    const nowMs = this.now();
    const sinceMs = nowMs - (this.reported?.atMs ?? -Infinity);
    if (why === "chunk" && sinceMs < REPORT_EVERY_MS) return;
    const entry = this.entryOf(this.spec.model);
    const { manifest } = entry;
    const maxStreams = this.maxStreams(entry);
    const report: StreamReport = { model: manifest.name, key: this.spec.key, shard: this.shard, openStreams: this.streams.size + this.joining, refusedStreams: this.refusedStreams, ...(maxStreams !== undefined && { maxStreams }) };
    const state = `${report.openStreams}/${report.maxStreams}/${report.refusedStreams}`;
    if (why === "change" && state === this.reported?.state) return;
    if (why === "change" && sinceMs < REPORT_MIN_INTERVAL_MS) {
      this.reportTimer = setTimeout(() => {
        this.reportTimer = undefined;
        this.reportStreams("change");
      }, REPORT_MIN_INTERVAL_MS - sinceMs);
      return;
    }
    this.reported = { atMs: nowMs, state };
    const reporting = controllerOf(this.env, manifest.name)
      .reportStreams(report)
      .then((published) => learnPlan(manifest.name, published, Date.now()))
      .catch((error) => console.warn(`stream buffer: reporting streams to the controller failed: ${(error as Error).message}`));
    this.ctx.waitUntil(reporting);
    return reporting;
  }

  /** The served model `name` under its live plan. */
  private entryOf(name: string): CatalogEntry {
    const entry = runtimeConfig(this.env).models.get(name);
    if (!entry) throw new InferenceError(404, `unknown model ${JSON.stringify(name.slice(0, 64))}`);
    return { ...entry, manifest: servingManifest(entry.manifest) };
  }
}
