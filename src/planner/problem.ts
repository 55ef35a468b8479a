/**
 * The planner's problem format: the stable JSON contract read by `npm run plan -- --problem FILE`
 * and by scripts. Validation with zod; every error names the field (e.g. `slo.percentile`).
 *
 * {
 *   "arrival":  {"kind": "poisson", "ratePerS": 40} | {"kind": "map", "D0": [[..]], "D1": [[..]]},
 *   "serviceMs": {"kind": "linear", "baseMs": 10, "perItemMs": 34} | {"kind": "table", "ms": [..]},
 *   "servers":  {"kind": "unbounded"} | {"kind": "fixed", "count": 2, "scope"?: "shared" | "per-shard",
 *                "formation"?: "sealed" (default) | "lazy", "sharedThread"?: false (default) | true,
 *                "answerMsPerRow"?: 0},
 *   "slo":      {"percentile": 0.95, "ms": 900},
 *   "overheadMs"?: 0,   // per-request latency outside the batch servers (parsing, hops), ms
 *   "evaluate"?: [{"maxBatch": 20, "windowMs": 100, "shards"?: 1}],
 *   optional, for optimisation (when "evaluate" is absent):
 *   "placements"?: {"edge"?: {"serviceMs"?: ..}, "origin"?: {"serviceMs"?: .., "networkMs"?: 20, "formation"?: "lazy"}},
 *   "search"?: {"maxBatch"?: [..] | {"max": 64}, "windowMs"?: [..] | {"minMs": 1, "maxMs": 500, "count": 50},
 *               "shards"?: [..] | {"max": 16}, "poolSize"?: [..] | {"max": 64}},
 *   "prices"?: {..overrides..}, "cost"?: {"alarmsPerBatch"?, "workerCpuMsPerRequest"?, "isServiceBilledAsCpu"?},
 *   "limits"?: {"maxRequestsPerSPerShard"?: 1000}, "alternatives"?: 4,
 *   "costSlack"?: 0   // a plan may cost this fraction more than the cheapest for a shorter window and lower latency
 * }
 */
import { z } from "zod";
import { mapProblems } from "./arrival";
import { priceOverridesSchema } from "./prices";
import { serviceTable } from "./service-time";

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const matrixSchema = z.array(z.array(finite)).min(1, "must have at least one row");

const arrivalSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("poisson"), ratePerS: finite.positive("must be > 0 (requests per second)") }),
  z
    .strictObject({ kind: z.literal("map"), D0: matrixSchema, D1: matrixSchema })
    .superRefine((value, ctx) => {
      for (const message of mapProblems(value.D0, value.D1)) ctx.addIssue({ code: "custom", message, path: [message.startsWith("D1") ? "D1" : "D0"] });
    }),
]);

const serviceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("linear"), baseMs: finite.nonnegative("must be >= 0"), perItemMs: finite.nonnegative("must be >= 0") }),
  z.strictObject({ kind: z.literal("table"), ms: z.array(finite.positive("must be > 0")).min(1, "must list the ms for batch sizes 1..n") }),
]);

const serversSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("unbounded") }),
  z.strictObject({
    kind: z.literal("fixed"),
    count: z.int().min(1, "must be >= 1"),
    scope: z.enum(["shared", "per-shard"]).optional(),
    formation: z.enum(["sealed", "lazy"]).default("sealed"),
    /** The front door runs on the server's thread (src/planner/queueing.ts ServerSpec): lazy formation, one server. */
    sharedThread: z.boolean().optional(),
    /** Of a batch's service, what answering each of its requests in turn takes, ms (src/planner/queueing.ts ServerSpec); every s(k) must be at least k times this. */
    answerMsPerRow: finite.nonnegative("must be >= 0").optional(),
  }).refine((s) => !s.sharedThread || (s.formation === "lazy" && s.count === 1), { message: "a shared thread needs formation \"lazy\" and count 1", path: ["sharedThread"] }),
]);

const maxBatchSchema = z.int().min(1, "must be >= 1").max(1024, "must be <= 1024");
const windowSchema = finite.nonnegative("must be >= 0");
const integerRange = (what: z.ZodInt) => z.union([z.array(what).min(1, "must not be empty"), z.strictObject({ max: what })]);

const searchSchema = z.strictObject({
  maxBatch: integerRange(maxBatchSchema).optional(),
  windowMs: z
    .union([
      z.array(windowSchema).min(1, "must not be empty"),
      z.strictObject({ minMs: finite.positive("must be > 0"), maxMs: finite.positive("must be > 0"), count: z.int().min(1, "must be >= 1") }).refine((w) => w.maxMs >= w.minMs, "maxMs must be >= minMs"),
    ])
    .optional(),
  shards: integerRange(z.int().min(1, "must be >= 1").max(1024)).optional(),
  poolSize: integerRange(z.int().min(1, "must be >= 1").max(1024)).optional(),
});

/** Schema of a planning problem (see the module doc for the format). */
export const problemSchema = z.strictObject({
  arrival: arrivalSchema,
  serviceMs: serviceSchema,
  servers: serversSchema.optional(),
  slo: z.strictObject({
    percentile: finite.gt(0, "must be in (0, 1)").lt(1, "must be in (0, 1)"),
    ms: finite.positive("must be > 0"),
  }),
  shards: z.int().min(1, "must be >= 1").optional(),
  overheadMs: finite.nonnegative("must be >= 0 (ms)").optional(),
  evaluate: z.array(z.strictObject({ maxBatch: maxBatchSchema, windowMs: windowSchema, shards: z.int().min(1, "must be >= 1").optional() })).min(1, "must list at least one configuration").optional(),
  placements: z
    .strictObject({
      edge: z.strictObject({ serviceMs: serviceSchema.optional() }).optional(),
      origin: z.strictObject({ serviceMs: serviceSchema.optional(), networkMs: finite.nonnegative("must be >= 0").optional(), formation: z.enum(["sealed", "lazy"]).optional() }).optional(),
    })
    .refine((p) => p.edge || p.origin, "must name at least one of edge, origin")
    .optional(),
  search: searchSchema.optional(),
  prices: priceOverridesSchema.optional(),
  cost: z.strictObject({ alarmsPerBatch: finite.nonnegative().optional(), workerCpuMsPerRequest: finite.nonnegative().optional(), isServiceBilledAsCpu: z.boolean().optional() }).optional(),
  limits: z.strictObject({ maxRequestsPerSPerShard: finite.positive("must be > 0").optional() }).optional(),
  alternatives: z.int().min(0).max(50).optional(),
  costSlack: finite.min(0, "must be >= 0").max(1, "must be <= 1 (a fraction of the cheapest plan's cost)").optional(),
}).superRefine((problem, ctx) => {
  // Answers in turn are part of each batch's service: every s(k) evaluated must hold k of them.
  const answerMs = problem.servers?.kind === "fixed" ? (problem.servers.answerMsPerRow ?? 0) : 0;
  if (!(answerMs > 0)) return;
  const table = serviceTable(problem.serviceMs, Math.max(1, ...(problem.evaluate ?? []).map((e) => e.maxBatch)));
  const k = table.findIndex((ms, i) => ms < (i + 1) * answerMs);
  if (k >= 0) ctx.addIssue({ code: "custom", path: ["servers", "answerMsPerRow"], message: `must fit each batch's service: s(${k + 1}) = ${table[k]} ms is less than ${k + 1} answers of ${answerMs} ms` });
});

/** A validated problem. */
export type Problem = z.infer<typeof problemSchema>;

/** The outcome of parsing: the problem, or the errors, each naming its field. */
export type ParsedProblem = { ok: true; problem: Problem } | { ok: false; errors: string[] };

/** Validates untrusted JSON as a Problem. */
export function parseProblem(json: unknown): ParsedProblem {
  const result = problemSchema.safeParse(json);
  if (result.success) return { ok: true, problem: result.data };
  return { ok: false, errors: result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(problem)"}: ${issue.message}`) };
}
