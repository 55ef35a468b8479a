/**
 * A model's measured service time (models/<name>/profile.json, written by `npm run profile`): the
 * fitted line baseMs + perItemMs * rows per runtime. The schedulers start from it as a prior until
 * they have measured batches of their own.
 */
import { z } from "zod";
import type { ServiceLine } from "../scheduler/service-estimate";

const fit = z.object({ baseMs: z.number().nonnegative(), perItemMs: z.number().nonnegative() });
const profileSchema = z.object({ runtimes: z.object({ edge: z.object({ fit }).optional(), origin: z.object({ fit }).optional() }) });

/** The service line a profile gives for `runtime`, or undefined when it has none (or is not a profile). */
export function profileServiceLine(profile: unknown, runtime: "edge" | "origin"): ServiceLine | undefined {
  const parsed = profileSchema.safeParse(profile);
  const line = parsed.success ? parsed.data.runtimes[runtime]?.fit : undefined;
  return line && { baseMs: line.baseMs, perRowMs: line.perItemMs };
}
