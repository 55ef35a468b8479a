/**
 * A model's measured service time (models/<name>/profile.json, written by `npm run profile`): the
 * fitted line baseMs + perItemMs * rows per runtime. The schedulers start from it as a prior until
 * they have measured batches of their own.
 */
import { z } from "zod";
import type { ServiceLine } from "../scheduler/service-estimate";

const fit = z.object({ baseMs: z.number().nonnegative(), perItemMs: z.number().nonnegative() });
const overhead = z.object({ latencyMs: z.number().nonnegative(), cpuMs: z.number().nonnegative().optional(), batchCpuMs: z.number().nonnegative().optional() });
const streamOverhead = z.object({ cpuMs: z.number().nonnegative(), batchCpuMs: z.number().nonnegative() });
const memory = z.object({
  referenceRowShapes: z.record(z.string(), z.array(z.number().int().nonnegative())),
  inputBytesPerRow: z.number().nonnegative(),
  outputBytesPerRow: z.number().nonnegative(),
  sessionBytes: z.number(),
  bytesPerRow: z.number(),
  /** The same, counted as the platform counts an isolate's memory (its V8 heap and WebAssembly memory), not the process's RSS. */
  isolate: z.object({ sessionBytes: z.number(), bytesPerRow: z.number() }).optional(),
  /** Bytes per row measured at a second row shape (a wider one), for how they grow with a row's elements. */
  scaling: z.object({ rowShape: z.record(z.string(), z.array(z.number().int().nonnegative())), bytesPerRow: z.number(), isolateBytesPerRow: z.number().optional() }).optional(),
});
const profileSchema = z.object({
  memory: memory.optional(),
  runtimes: z.object({ edge: z.object({ fit, requestOverhead: overhead.optional(), directOverhead: overhead.optional(), streamOverhead: streamOverhead.optional() }).optional(), origin: z.object({ fit }).optional() }),
});

/**
 * Per-request latency outside the batch on the buffered path (Worker, Durable Object RPC, parsing)
 * when a profile has not measured it, ms: the light-load overhead the fidelity benchmark measured
 * for ppocr-cls and silero-vad (1.8-2.0 ms).
 */
export const DEFAULT_REQUEST_OVERHEAD_MS = 2;

/** What the buffer hop (Worker -> Durable Object RPC and back) adds when a profile has not measured the direct path, ms (the edge benchmark's 1.5 ms). */
export const DEFAULT_HOP_MS = 1.5;

/** CPU that a path spends on the thread that runs its batches, beyond the kernel, ms. */
export interface PathCpu {
  perRequestMs: number;
  perBatchMs: number;
}

/**
 * Per-request costs outside the batch that a profile measured at the edge (or the defaults):
 * - `pathCpu`, per edge placement, what the Worker and Durable Object work of a request and of a
 *   batch (parsing, the RPC, dispatch, the answers) costs the thread that runs the batches. Locally
 *   the Worker and its Durable Objects share one workerd thread, so this work holds the batches
 *   back: the planner serves a batch of k rows there in s(k) + perBatchMs + k perRequestMs. And for
 *   `stream`, what a stream's chunk and a step cost its stream shard beyond the kernel (a WebSocket
 *   message, the answer, the state kept; src/cli/stream-overhead.ts), which the shard's admission
 *   adds the same way. 0 where a profile has not measured it.
 * - `overheadMs`, the latency on the direct path beyond that CPU (HTTP, the dev proxy), and
 *   `hopMs`, what the buffered path adds to it (the Durable Object call's wait, not its CPU).
 */
export function profileOverhead(profile: unknown): { overheadMs: number; hopMs: number; pathCpu: Record<"edge" | "direct" | "stream", PathCpu> } {
  const parsed = profileSchema.safeParse(profile);
  const edge = parsed.success ? parsed.data.runtimes.edge : undefined;
  const cpuOf = (o: { cpuMs?: number; batchCpuMs?: number } | undefined): PathCpu => ({ perRequestMs: o?.cpuMs ?? 0, perBatchMs: o?.batchCpuMs ?? 0 });
  const pathCpu = { edge: cpuOf(edge?.requestOverhead), direct: cpuOf(edge?.directOverhead), stream: cpuOf(edge?.streamOverhead) };
  // At light load each request is a batch of its own: its latency holds both parts.
  const lightCpuMs = (cpu: PathCpu) => cpu.perRequestMs + cpu.perBatchMs;
  const bufferedMs = Math.max(0, (edge?.requestOverhead?.latencyMs ?? DEFAULT_REQUEST_OVERHEAD_MS) - lightCpuMs(pathCpu.edge));
  const directMs = edge?.directOverhead ? Math.max(0, edge.directOverhead.latencyMs - lightCpuMs(pathCpu.direct)) : Math.max(0, bufferedMs - DEFAULT_HOP_MS);
  return { overheadMs: Math.min(directMs, bufferedMs), hopMs: Math.max(0, bufferedMs - directMs), pathCpu };
}

/**
 * What a model takes in the isolate that runs it, measured in workerd (`npm run bench -- memory`,
 * counted as the platform counts an isolate: heap and WebAssembly memory) at a reference row shape:
 * the session's own bytes, peak bytes per batch row, and one row's output bytes. For a wider row
 * (more input elements; the models here are convolutional or recurrent over their dynamic axes, so
 * a ppocr-rec line twice as wide has twice the time steps) outputs grow in proportion and memory
 * per row by `bytesPerRowPerElement` for each element beyond the reference: measured at a second
 * shape where the profile has one, else in proportion too (an upper bound: fixed costs do not grow).
 */
export interface ModelFootprint {
  sessionBytes: number;
  bytesPerRow: number;
  bytesPerRowPerElement: number;
  outputBytesPerRow: number;
  /** Input elements of one row at which the per-row figures were measured. */
  referenceRowElements: number;
}

/** The footprint a profile measured, or undefined when it has none. */
export function profileFootprint(profile: unknown): ModelFootprint | undefined {
  const parsed = profileSchema.safeParse(profile);
  const m = parsed.success ? parsed.data.memory : undefined;
  if (!m) return undefined;
  const elementsOf = (shapes: Record<string, number[]>) => Object.values(shapes).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
  const referenceRowElements = elementsOf(m.referenceRowShapes);
  const counted = m.isolate ?? m;
  const bytesPerRow = Math.max(0, counted.bytesPerRow);
  const wide = m.scaling && { elements: elementsOf(m.scaling.rowShape), bytesPerRow: m.isolate ? (m.scaling.isolateBytesPerRow ?? m.scaling.bytesPerRow) : m.scaling.bytesPerRow };
  const bytesPerRowPerElement = wide && wide.elements > referenceRowElements ? Math.max(0, (wide.bytesPerRow - bytesPerRow) / (wide.elements - referenceRowElements)) : referenceRowElements > 0 ? bytesPerRow / referenceRowElements : 0;
  return { sessionBytes: Math.max(0, counted.sessionBytes), bytesPerRow, bytesPerRowPerElement, outputBytesPerRow: m.outputBytesPerRow, referenceRowElements };
}

/** The service line a profile gives for `runtime`, or undefined when it has none (or is not a profile). */
export function profileServiceLine(profile: unknown, runtime: "edge" | "origin"): ServiceLine | undefined {
  const parsed = profileSchema.safeParse(profile);
  const line = parsed.success ? parsed.data.runtimes[runtime]?.fit : undefined;
  return line && { baseMs: line.baseMs, perRowMs: line.perItemMs };
}
