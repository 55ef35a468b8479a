/**
 * Unit prices the cost model uses, with defaults from prices.json (public price lists; the file
 * names its sources and the date they were read). A problem may override any field.
 */
import { z } from "zod";
import defaults from "./prices.json";

/** Schema of a full price list; every number must be finite and >= 0. */
export const pricesSchema = z.object({
  workers: z.object({
    /** USD per million Worker requests. */
    usdPerMillionRequests: z.number().nonnegative(),
    /** USD per million Worker CPU milliseconds. */
    usdPerMillionCpuMs: z.number().nonnegative(),
  }),
  durableObjects: z.object({
    /** USD per million Durable Object requests (each inference request, and each alarm). */
    usdPerMillionRequests: z.number().nonnegative(),
    /** USD per million GB-seconds of Durable Object duration. */
    usdPerMillionGbS: z.number().nonnegative(),
    /** Memory billed per object, GB (128 MB). */
    memoryGb: z.number().positive(),
  }),
  origin: z.object({
    /** USD per instance-hour of one origin replica (a GPU instance). */
    usdPerHour: z.number().nonnegative(),
    /** Time for a new replica to become ready, seconds (reported; billed once per start). */
    startupS: z.number().nonnegative(),
  }),
});

/** A complete price list. */
export type Prices = z.infer<typeof pricesSchema>;

/** Any subset of a price list, merged over the defaults. */
export const priceOverridesSchema = z.object({
  workers: pricesSchema.shape.workers.partial().optional(),
  durableObjects: pricesSchema.shape.durableObjects.partial().optional(),
  origin: pricesSchema.shape.origin.partial().optional(),
});

/** Overrides for some prices. */
export type PriceOverrides = z.infer<typeof priceOverridesSchema>;

/** The default prices (see prices.json for sources and date). */
export const DEFAULT_PRICES: Prices = pricesSchema.parse(defaults);

/** The defaults with `overrides` applied field by field. */
export function withPrices(overrides: PriceOverrides = {}, base: Prices = DEFAULT_PRICES): Prices {
  return {
    workers: { ...base.workers, ...overrides.workers },
    durableObjects: { ...base.durableObjects, ...overrides.durableObjects },
    origin: { ...base.origin, ...overrides.origin },
  };
}
