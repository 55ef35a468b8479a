/**
 * A model's measured service time (models/<name>/profile.json, written by `npm run profile`): the
 * fitted line baseMs + perItemMs * rows per runtime. The schedulers start from it as a prior until
 * they have measured batches of their own.
 */
import { z } from "zod";
import type { ServiceLine } from "../scheduler/service-estimate";

const fit = z.object({ baseMs: z.number().nonnegative(), perItemMs: z.number().nonnegative() });
const overhead = z.object({ latencyMs: z.number().nonnegative() });
const profileSchema = z.object({
  runtimes: z.object({ edge: z.object({ fit, requestOverhead: overhead.optional(), directOverhead: overhead.optional() }).optional(), origin: z.object({ fit }).optional() }),
});

/**
 * Per-request latency outside the batch on the buffered path (Worker, Durable Object RPC, parsing)
 * when a profile has not measured it, ms: the light-load overhead the fidelity benchmark measured
 * for ppocr-cls and silero-vad (1.8-2.0 ms).
 */
export const DEFAULT_REQUEST_OVERHEAD_MS = 2;

/** What the buffer hop (Worker -> Durable Object RPC and back) adds when a profile has not measured the direct path, ms (the edge benchmark's 1.5 ms). */
export const DEFAULT_HOP_MS = 1.5;

/**
 * Per-request latency outside the batch that a profile measured at the edge (or the defaults), ms:
 * `overheadMs` on the direct path and `hopMs`, what the buffered path adds to it.
 */
export function profileOverhead(profile: unknown): { overheadMs: number; hopMs: number } {
  const parsed = profileSchema.safeParse(profile);
  const edge = parsed.success ? parsed.data.runtimes.edge : undefined;
  const bufferedMs = edge?.requestOverhead?.latencyMs ?? DEFAULT_REQUEST_OVERHEAD_MS;
  const directMs = edge?.directOverhead?.latencyMs ?? Math.max(0, bufferedMs - DEFAULT_HOP_MS);
  return { overheadMs: Math.min(directMs, bufferedMs), hopMs: Math.max(0, bufferedMs - directMs) };
}

/** The service line a profile gives for `runtime`, or undefined when it has none (or is not a profile). */
export function profileServiceLine(profile: unknown, runtime: "edge" | "origin"): ServiceLine | undefined {
  const parsed = profileSchema.safeParse(profile);
  const line = parsed.success ? parsed.data.runtimes[runtime]?.fit : undefined;
  return line && { baseMs: line.baseMs, perRowMs: line.perItemMs };
}
