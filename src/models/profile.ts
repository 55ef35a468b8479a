/**
 * A model's measured service time (models/<name>/profile.json, written by `npm run profile`): the
 * fitted line baseMs + perItemMs * rows per runtime. The schedulers start from it as a prior until
 * they have measured batches of their own.
 */
import { z } from "zod";
import type { ServiceLine } from "../scheduler/service-estimate";

const fit = z.object({ baseMs: z.number().nonnegative(), perItemMs: z.number().nonnegative() });
const overhead = z.object({ latencyMs: z.number().nonnegative() });
const profileSchema = z.object({ runtimes: z.object({ edge: z.object({ fit, requestOverhead: overhead.optional() }).optional(), origin: z.object({ fit }).optional() }) });

/**
 * Per-request latency outside the batch (Worker, Durable Object RPC, parsing) when a profile has not
 * measured it, ms: the light-load overhead the fidelity benchmark measured for ppocr-cls and
 * silero-vad (1.8-2.0 ms).
 */
export const DEFAULT_REQUEST_OVERHEAD_MS = 2;

/** The per-request latency outside the batch that a profile measured at the edge (or the default), ms. */
export function profileOverheadMs(profile: unknown): number {
  const parsed = profileSchema.safeParse(profile);
  return (parsed.success ? parsed.data.runtimes.edge?.requestOverhead?.latencyMs : undefined) ?? DEFAULT_REQUEST_OVERHEAD_MS;
}

/** The service line a profile gives for `runtime`, or undefined when it has none (or is not a profile). */
export function profileServiceLine(profile: unknown, runtime: "edge" | "origin"): ServiceLine | undefined {
  const parsed = profileSchema.safeParse(profile);
  const line = parsed.success ? parsed.data.runtimes[runtime]?.fit : undefined;
  return line && { baseMs: line.baseMs, perRowMs: line.perItemMs };
}
