/**
 * The streaming wire protocol (docs/streaming.md), pure. A client opens
 * `GET /v2/models/{m}/stream?sr=16000` with `Upgrade: websocket`, then sends binary frames of one
 * chunk each (little-endian float32 samples: 512 at 16 kHz, 256 at 8 kHz, i.e. 2048 or 1024 bytes)
 * or the text messages `{"type":"reset"}` (the stream's state back to zeros) and `{"type":"close"}`
 * (answer what was sent, then close with 1000). The server answers every chunk, in order, with the
 * text `{"seq":n,"probability":p}` (seq counts the connection's chunks from 0), and a failure with
 * `{"error":"...","seq"?:n}` followed by a close with one of CLOSE_CODES.
 *
 * Which models stream: those with one recurrent state, an input X with a batch axis and fixed other
 * dims and an output named XN (Silero VAD: state -> stateN); one other batched input, the chunk
 * ([rows, samples], its length fixed by the model or by the variant the query picks); one other
 * output, the result (its first value per row is the "probability"); and shared scalar inputs
 * (sr) taken from the query or their defaults.
 */
import { z } from "zod";
import type { ModelManifest, TensorSpec } from "../models/manifest";
import { badRequest, InferenceError } from "../protocol/errors";

/** The close codes the server sends (RFC 6455, section 7.4.1). */
export const CLOSE_CODES = {
  /** Closed as the client asked ({"type":"close"}), after the chunks it sent were answered. */
  normal: 1000,
  /** A binary frame of the wrong size, or a text frame that is not a known message. */
  unsupportedData: 1003,
  /** A chunk with a sample that is not a finite number. */
  invalidData: 1007,
  /** Policy: more than MAX_CHUNKS_IN_FLIGHT unanswered chunks. */
  policy: 1008,
  /** The model failed on the stream's step. */
  internalError: 1011,
  /** Overloaded: a chunk was refused at admission or could not be answered within the model's deadline; reconnect later. */
  tryAgainLater: 1013,
  /** Never sent: the connection dropped without a close frame (how the metrics count a stream lost that way). */
  abnormal: 1006,
} as const;

/** Most chunks of one stream sent but not yet answered; one more closes the stream with 1008. */
export const MAX_CHUNKS_IN_FLIGHT = 8;

/** Longest text frame read, in characters. */
const MAX_TEXT_FRAME = 256;

/** One stream's shape: how its chunks become model inputs and its answers come back. */
export interface StreamSpec {
  model: string;
  /** The input that takes a chunk ([1, chunkSamples]), the recurrent state's input and output, the result output. */
  chunkInput: string;
  stateInput: string;
  stateOutput: string;
  resultOutput: string;
  chunkSamples: number;
  /** One row's state shape (the batch axis is 1). */
  stateShape: number[];
  /** The shared scalar inputs' values (query or default), by name. */
  scalars: Record<string, number>;
  /** The scalars as `name=value&...`: streams with equal keys batch together (one stream buffer each). */
  key: string;
  /**
   * How often a real-time stream sends a chunk, ms: the chunk's samples at the sample rate of the
   * scalar `sr` (Silero: 512 at 16 kHz, 32 ms). Undefined for a model without one: its shards
   * then admit every stream (the scheduler still refuses chunks).
   */
  realTimeIntervalMs?: number;
}

/** The recurrent structure of a model, or why it does not stream. */
function structureOf(manifest: ModelManifest): { state: TensorSpec; chunk: TensorSpec; result: TensorSpec; scalars: TensorSpec[] } | string {
  const batched = manifest.inputs.filter((t) => t.batchAxis !== null);
  const state = batched.find((t) => manifest.outputs.some((o) => o.name === `${t.name}N`) && t.shape.every((d, axis) => axis === t.batchAxis || d > 0));
  if (!state) return "it has no recurrent state (an input X with fixed dims and an output XN)";
  const chunk = batched.filter((t) => t !== state);
  const result = manifest.outputs.filter((o) => o.name !== `${state.name}N`);
  if (chunk.length !== 1 || chunk[0]!.shape.length !== 2 || chunk[0]!.batchAxis !== 0 || chunk[0]!.datatype !== "FP32") return "it needs exactly one other batched input, FP32 [rows, samples]";
  if (result.length !== 1 || result[0]!.batchAxis !== 0) return "it needs exactly one output besides the state";
  const scalars = manifest.inputs.filter((t) => t.batchAxis === null);
  if (scalars.some((t) => t.shape.length !== 0)) return "its shared inputs must be scalars";
  return { state, chunk: chunk[0]!, result: result[0]!, scalars };
}

/** The scalar input that gives a stream's sample rate in Hz, which paces a real-time stream. */
const SAMPLE_RATE_INPUT = "sr";

const integerText = z.string().regex(/^-?\d{1,15}$/, "must be an integer");

/**
 * The stream a request for `manifest` with `query` (the URL's parameters) opens. Throws a 400
 * InferenceError when the model does not stream or the query does not fit it.
 */
export function streamSpecOf(manifest: ModelManifest, query: Record<string, string>): StreamSpec {
  const structure = structureOf(manifest);
  if (typeof structure === "string") throw badRequest(`model '${manifest.name}' does not stream: ${structure}`);
  const { state, chunk, result } = structure;
  const names = structure.scalars.map((t) => t.name);
  const unknown = Object.keys(query).find((name) => !names.includes(name));
  if (unknown !== undefined) throw badRequest(`unknown query parameter ${JSON.stringify(unknown.slice(0, 32))}; this stream takes ${names.join(", ") || "none"}`);
  const scalars: Record<string, number> = {};
  for (const spec of structure.scalars) {
    const given = query[spec.name];
    const parsed = given === undefined ? undefined : integerText.safeParse(given);
    if (parsed && !parsed.success) throw badRequest(`query parameter ${spec.name}: ${parsed.error.issues[0]!.message}`);
    const value = parsed ? Number(parsed.data) : spec.default;
    if (value === undefined) throw badRequest(`query parameter ${spec.name} is required`);
    scalars[spec.name] = value;
  }
  // The variant the scalars pick fixes the chunk's length (Silero: 512 samples at 16 kHz, 256 at 8 kHz).
  let samples = chunk.shape[1]!;
  if (manifest.variants) {
    const variant = manifest.variants.find((v) => Object.entries(v.values).every(([name, value]) => scalars[name] === value));
    if (!variant) throw badRequest(`model '${manifest.name}' streams with ${manifest.variants.map((v) => Object.entries(v.values).map(([n, x]) => `${n}=${x}`).join("&")).join(" or ")}`);
    samples = variant.shapes[chunk.name]?.[1] ?? samples;
  }
  if (!(samples > 0)) throw badRequest(`model '${manifest.name}' does not stream: its chunk length is not fixed`);
  const stateShape = state.shape.map((d, axis) => (axis === state.batchAxis ? 1 : d));
  const key = Object.entries(scalars).map(([name, value]) => `${name}=${value}`).join("&");
  const sampleRate = scalars[SAMPLE_RATE_INPUT];
  return {
    model: manifest.name, chunkInput: chunk.name, stateInput: state.name, stateOutput: `${state.name}N`, resultOutput: result.name, chunkSamples: samples, stateShape, scalars, key,
    ...(sampleRate !== undefined && sampleRate > 0 && { realTimeIntervalMs: (1000 * samples) / sampleRate }),
  };
}

/** A frame from the client, decoded. */
export type ClientFrame =
  | { kind: "chunk"; samples: Float32Array }
  | { kind: "reset" }
  | { kind: "close" }
  | { kind: "invalid"; code: typeof CLOSE_CODES.unsupportedData | typeof CLOSE_CODES.invalidData; message: string };

const controlMessage = z.discriminatedUnion("type", [z.strictObject({ type: z.literal("reset") }), z.strictObject({ type: z.literal("close") })]);

/** Decodes one WebSocket message of a stream whose chunks hold `chunkSamples` samples. */
export function parseFrame(message: string | ArrayBuffer, chunkSamples: number): ClientFrame {
  if (typeof message === "string") {
    let parsed: unknown;
    try {
      parsed = message.length <= MAX_TEXT_FRAME ? JSON.parse(message) : undefined;
    } catch {
      parsed = undefined;
    }
    const control = controlMessage.safeParse(parsed);
    if (!control.success) return { kind: "invalid", code: CLOSE_CODES.unsupportedData, message: 'a text frame must be {"type":"reset"} or {"type":"close"}' };
    return { kind: control.data.type };
  }
  const bytes = chunkSamples * 4;
  if (message.byteLength !== bytes) return { kind: "invalid", code: CLOSE_CODES.unsupportedData, message: `a binary frame must hold ${chunkSamples} little-endian float32 samples (${bytes} bytes); got ${message.byteLength} bytes` };
  const view = new DataView(message);
  const samples = new Float32Array(chunkSamples);
  for (let i = 0; i < chunkSamples; i++) {
    const value = view.getFloat32(4 * i, true);
    if (!Number.isFinite(value)) return { kind: "invalid", code: CLOSE_CODES.invalidData, message: `sample ${i} is not a finite number` };
    samples[i] = value;
  }
  return { kind: "chunk", samples };
}

/** The answer to chunk `seq`. */
export function answerText(seq: number, probability: number): string {
  return `{"seq":${seq},"probability":${probability}}`;
}

/** An error message (the close that follows carries its code). */
export function errorText(message: string, seq?: number): string {
  return JSON.stringify({ error: message, ...(seq !== undefined && { seq }) });
}

/** A close reason within the protocol's 123 bytes (messages are ASCII). */
export function closeReason(message: string): string {
  return message.length <= 120 ? message : `${message.slice(0, 117)}...`;
}

/** The close code for a chunk's failure: 1013 when the model was overloaded or late (503), 1011 otherwise. */
export function closeCodeFor(error: unknown): number {
  return error instanceof InferenceError && error.status === 503 ? CLOSE_CODES.tryAgainLater : CLOSE_CODES.internalError;
}
