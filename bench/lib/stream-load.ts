/**
 * The load generators of the streams benchmark (bench/streams.ts), both bounded by a chunk count
 * per client and a time limit:
 * - `runStreams`: N WebSocket streams (Node's global WebSocket) of silero-vad at 16 kHz, each
 *   sending binary 512-sample chunks, closed-loop (the next chunk when the previous answer arrives)
 *   or paced at real time (a chunk every 32 ms at the stream's own phase, unless 8 are already
 *   unanswered: a missed slot);
 * - `runStateless`: N clients each POSTing its chunk with the `state` of its previous answer
 *   (binary tensor extension both ways, so one request at a time per client), closed-loop or at
 *   the next free 32 ms slot (slots passed while a request was out are missed).
 * Latency is the client's, send to answer; chunks per second count answers within the measured
 * window (the run less its first warmUpS), and of them, those answered within silero-vad's SLO
 * (ms) of their sending.
 */
import { decodeAnswer } from "./oip-answer";
import { quantile, round } from "./stats";
import { INFERENCE_HEADER_LENGTH, packBinary } from "../../src/protocol/oip-binary";
import { MAX_CHUNKS_IN_FLIGHT } from "../../src/stream/stream-protocol";
import { openSocket, pacer } from "../../src/cli/stream-overhead";
import { seededFloats } from "../../test/fixtures/model-inputs";
import vadManifest from "../../models/silero-vad/manifest.json";

/** Closed-loop, or paced at real time. */
export type Pacing = "closed" | "paced";

/** One chunk of audio at 16 kHz, ms. */
export const CHUNK_MS = 32;
const SAMPLES = 512;
/** Most chunks one client sends in a run (the other bound is the time). */
const MAX_CHUNKS_PER_CLIENT = 100_000;
/** WebSockets opened at once. */
const OPEN_WAVE = 50;
const DRAIN_MS = 5_000;

/** What a run is asked to do. */
export interface LoadOptions {
  baseUrl: string;
  clients: number;
  pacing: Pacing;
  durationS: number;
  warmUpS: number;
  /** Streams: called once they are open (before the first chunk) and when the time is up (before draining), while the shard is surely awake. */
  onPhase?(phase: "start" | "end"): Promise<void>;
}

/** What a run measured. */
export interface LoadResult {
  clients: number;
  /** Streams that opened (stateless: every client). */
  opened: number;
  openFailures: Record<string, number>;
  answered: number;
  chunksPerS: number;
  /** Chunks a second sent and answered in the measured window within silero-vad's SLO ms. */
  withinSloPerS: number;
  latencyMs: { p50: number; p99: number; mean: number };
  /** Paced: slots a client could not send in (8 unanswered, or its previous request still out). */
  missedSlots: number;
  /** Error messages (streams) or HTTP statuses (stateless), with counts. */
  errors: Record<string, number>;
  /** Streams the server closed, by close code. */
  closedByServer: Record<string, number>;
  clientCpuMsPerChunk: number;
}

/** 64 chunks of a tone with noise; client i sends them in turn from its own offset. */
const CHUNKS = Array.from({ length: 64 }, (_, c) => Float32Array.from(seededFloats(SAMPLES, 50 + c), (v, k) => 0.4 * Math.sin((k + c * SAMPLES) / 3) + 0.05 * v));
const chunkOf = (client: number, k: number) => CHUNKS[(client * 7 + k) % CHUNKS.length]!;

/** Counts and latencies of one run. */
class Tally {
  readonly latencies: number[] = [];
  answered = 0;
  missedSlots = 0;
  readonly errors: Record<string, number> = {};
  readonly closedByServer: Record<string, number> = {};
  readonly openFailures: Record<string, number> = {};
  measureFromMs = Infinity;
  endMs = Infinity;

  answer(sentAtMs: number, nowMs: number): void {
    if (nowMs < this.measureFromMs || nowMs > this.endMs) return;
    this.answered++;
    if (sentAtMs >= this.measureFromMs) this.latencies.push(nowMs - sentAtMs);
  }

  static add(counts: Record<string, number>, key: string): void {
    counts[key] = (counts[key] ?? 0) + 1;
  }

  result(clients: number, opened: number, windowS: number, cpuMs: number): LoadResult {
    const mean = this.latencies.reduce((a, b) => a + b, 0) / Math.max(1, this.latencies.length);
    return {
      clients,
      opened,
      openFailures: this.openFailures,
      answered: this.answered,
      chunksPerS: round(this.answered / windowS, 1),
      withinSloPerS: round(this.latencies.filter((ms) => ms <= vadManifest.slo.ms).length / windowS, 1),
      latencyMs: { p50: round(quantile(this.latencies, 0.5)), p99: round(quantile(this.latencies, 0.99)), mean: round(mean) },
      missedSlots: this.missedSlots,
      errors: this.errors,
      closedByServer: this.closedByServer,
      clientCpuMsPerChunk: round(cpuMs / Math.max(1, this.answered), 3),
    };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clientCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** N WebSocket streams (see the module doc). */
export async function runStreams(o: LoadOptions): Promise<LoadResult> {
  const url = `${o.baseUrl.replace(/^http/, "ws")}/v2/models/silero-vad/stream?sr=16000`;
  const tally = new Tally();
  const sockets: WebSocket[] = [];
  for (let i = 0; i < o.clients; i += OPEN_WAVE) {
    for (const opened of await Promise.all(Array.from({ length: Math.min(OPEN_WAVE, o.clients - i) }, () => openSocket(url)))) {
      if ("ws" in opened) sockets.push(opened.ws);
      else Tally.add(tally.openFailures, opened.reason);
    }
  }
  await o.onPhase?.("start");
  const cpuBefore = clientCpuMs();
  const startMs = performance.now();
  tally.measureFromMs = startMs + o.warmUpS * 1000;
  tally.endMs = startMs + o.durationS * 1000;
  const streams = sockets.map((ws, i) => {
    const stream = { ws, sentAtMs: [] as number[], sent: 0, isOpen: true };
    const send = () => {
      if (!stream.isOpen || stream.sent >= MAX_CHUNKS_PER_CLIENT || performance.now() >= tally.endMs) return false;
      ws.send(chunkOf(i, stream.sent++));
      stream.sentAtMs.push(performance.now());
      return true;
    };
    ws.addEventListener("message", (event) => {
      const text = event.data as string;
      if (text.startsWith('{"error"')) return Tally.add(tally.errors, (JSON.parse(text) as { error: string }).error.replace(/\d+/g, "N"));
      tally.answer(stream.sentAtMs.shift()!, performance.now());
      if (o.pacing === "closed") send();
    });
    ws.addEventListener("close", (event) => {
      if (stream.isOpen) Tally.add(tally.closedByServer, String(event.code));
      stream.isOpen = false;
    });
    return { stream, send };
  });
  let stopPacer = () => {};
  if (o.pacing === "closed") for (const s of streams) s.send();
  else {
    stopPacer = pacer(streams.length, CHUNK_MS, tally.endMs, (i) => {
      const { stream, send } = streams[i]!;
      if (stream.sentAtMs.length >= MAX_CHUNKS_IN_FLIGHT) tally.missedSlots++;
      else send();
    });
  }
  await sleep(Math.max(0, tally.endMs - performance.now()));
  stopPacer();
  const cpuMs = clientCpuMs() - cpuBefore;
  await o.onPhase?.("end");
  for (const drainUntil = performance.now() + DRAIN_MS; performance.now() < drainUntil && streams.some((s) => s.stream.isOpen && s.stream.sentAtMs.length); ) await sleep(20);
  const closed = streams.map(({ stream }) => new Promise<void>((resolve) => (stream.isOpen ? stream.ws.addEventListener("close", () => resolve(), { once: true }) : resolve())));
  for (const { stream } of streams) {
    if (!stream.isOpen) continue;
    stream.isOpen = false;
    stream.ws.close(1000, "bench over");
  }
  await Promise.race([Promise.all(closed), sleep(DRAIN_MS)]);
  return tally.result(o.clients, sockets.length, o.durationS - o.warmUpS, cpuMs);
}

/** The binary request of one chunk with its state, asking for binary outputs. */
function statelessBody(chunk: Float32Array, state: Float32Array): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const inputs = [
    { name: "input", datatype: "FP32" as const, shape: [1, SAMPLES], data: chunk },
    { name: "state", datatype: "FP32" as const, shape: [2, 1, 128], data: state },
  ];
  const packed = packBinary({ parameters: { binary_data_output: true }, inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })) }, inputs);
  return { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
}

/** N stateless clients carrying `state` (see the module doc). */
export async function runStateless(o: LoadOptions): Promise<LoadResult> {
  const url = `${o.baseUrl}/v2/models/silero-vad/infer`;
  const tally = new Tally();
  const cpuBefore = clientCpuMs();
  const startMs = performance.now();
  tally.measureFromMs = startMs + o.warmUpS * 1000;
  tally.endMs = startMs + o.durationS * 1000;
  const client = async (i: number) => {
    let state = new Float32Array(256);
    const phaseMs = startMs + (i * CHUNK_MS) / o.clients;
    let nextSlotMs = phaseMs;
    for (let k = 0; k < MAX_CHUNKS_PER_CLIENT; ) {
      if (o.pacing === "paced") {
        const nowMs = performance.now();
        if (nextSlotMs < nowMs) {
          const missed = Math.ceil((nowMs - nextSlotMs) / CHUNK_MS);
          tally.missedSlots += missed;
          nextSlotMs += missed * CHUNK_MS;
        }
        await sleep(Math.max(0, nextSlotMs - performance.now()));
        nextSlotMs += CHUNK_MS;
      }
      if (performance.now() >= tally.endMs) return;
      const { body, headers } = statelessBody(chunkOf(i, k), state);
      const sentAtMs = performance.now();
      try {
        const response = await fetch(url, { method: "POST", body, headers, signal: AbortSignal.timeout(10_000) });
        const bytes = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200) {
          Tally.add(tally.errors, `HTTP ${response.status}`);
          if (o.pacing === "closed") await sleep(5); // the same chunk again, shortly
          continue;
        }
        const answer = decodeAnswer(bytes, response.headers.get(INFERENCE_HEADER_LENGTH) ?? undefined);
        if (!answer.isReadable) throw new Error(answer.reason);
        state = Float32Array.from(answer.outputs.get("stateN")!.data);
        tally.answer(sentAtMs, performance.now());
        k++;
      } catch (error) {
        Tally.add(tally.errors, (error as Error).name === "TimeoutError" ? "timeout" : `fetch failed: ${(error as Error).message}`);
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)));
  return tally.result(o.clients, o.clients, o.durationS - o.warmUpS, clientCpuMs() - cpuBefore);
}
