/**
 * Configuration of a gpu-origin process, from its command line and environment, validated once at
 * start-up with zod. A bad value stops the process with a message naming the flag and the rule.
 *
 * Flags: --port (required), --host (127.0.0.1), --provider cpu|cuda|webgpu|timed (cpu; timed: gpu-origin/timed-backend.ts), --models a,b
 * (every folder of --models-dir), --models-dir (or MODELS_DIR; `models`, relative to the working
 * directory: the repository root, or the image's /app), --max-batch (32), --window-ms (0),
 * --max-queue-rows (256), --drain-timeout-ms (10000), --max-body-bytes (536870912), --threads (0:
 * onnxruntime's default), --insecure (accept unsigned requests; local experiments only),
 * --edge URL (or EDGE_URL: register with that edge's pool by signed heartbeats; off by default),
 * --advertise-url URL (or ADVERTISE_URL: the base URL announced to the edge; default
 * http://<host>:<port>). A flag wins over its environment variable.
 * Environment: ORIGIN_SECRET, the shared HMAC secret (at least 16 characters), required unless --insecure
 * (and with --edge, which signs its heartbeats with it); MODELS_DIR, EDGE_URL, ADVERTISE_URL as above.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError } from "../src/models/manifest";
import { MIN_SECRET_LENGTH } from "../src/origin/hop-signature";
import { DEFAULT_BODY_TIMEOUT_MS } from "../src/protocol/read-body";

/** Execution providers an origin can run sessions on. */
export const PROVIDERS = ["cpu", "cuda", "webgpu", "timed"] as const;

/** One of PROVIDERS. */
export type Provider = (typeof PROVIDERS)[number];

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** An http(s) base URL without query or fragment, trailing slashes removed. */
const baseUrl = z
  .string()
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), "must be an http:// or https:// URL")
  .refine((s) => !URL.canParse(s) || (!new URL(s).search && !new URL(s).hash), "must have no query or fragment")
  .transform((s) => s.replace(/\/+$/, ""));

/** Addresses that accept connections on every interface but cannot be dialled as a destination. */
const UNSPECIFIED_HOSTS = new Set(["0.0.0.0", "::", "[::]"]);

const configSchema = z
  .object({
    /** 0 picks a free port (printed in the start-up line). */
    port: int(0, 65535),
    host: z.string().min(1).default("127.0.0.1"),
    provider: z.enum(PROVIDERS).default("cpu"),
    models: z
      .string()
      .transform((s) => s.split(",").map((m) => m.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "model names are lowercase letters, digits, '.', '_' and '-'")).min(1, "name at least one model"))
      .optional(),
    modelsDir: z.string().min(1).default("models"),
    /** Most rows the origin merges into one session run. */
    maxBatch: int(1, 1024).default(32),
    /** How long a lone batch waits for company before it runs, in ms (0: merge only what queued while busy). */
    windowMs: z.coerce.number().min(0).max(60_000).default(0),
    /** Most rows waiting per model; more get 503 with Retry-After. */
    maxQueueRows: int(1, 1 << 20).default(256),
    /** Longest wait for in-flight work after SIGTERM, in ms. */
    drainTimeoutMs: int(0, 600_000).default(10_000),
    /** Largest request body, in bytes. */
    maxBodyBytes: int(1024, 2 ** 31 - 1).default(536_870_912),
    /** Longest time a client may take to send its whole body, in ms (then 408). */
    bodyTimeoutMs: int(1, 600_000).default(DEFAULT_BODY_TIMEOUT_MS),
    /** onnxruntime intra-op threads per session (0: its default). */
    threads: int(0, 256).default(0),
    isInsecure: z.boolean().default(false),
    secret: z.string().min(MIN_SECRET_LENGTH, `must be at least ${MIN_SECRET_LENGTH} characters`).optional(),
    /** The edge whose pool this replica joins (heartbeats to `${edgeUrl}/v2/pool/heartbeat`); none: no registration. */
    edgeUrl: baseUrl.optional(),
    /** The base URL announced to the edge; default http://<host>:<port>. */
    advertiseUrl: baseUrl.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.secret && !c.isInsecure) ctx.addIssue({ code: "custom", path: ["ORIGIN_SECRET"], message: "is required (or pass --insecure for a local experiment)" });
    if (c.maxQueueRows < c.maxBatch) ctx.addIssue({ code: "custom", path: ["maxQueueRows"], message: "must be at least --max-batch" });
    if (c.edgeUrl && !c.secret) ctx.addIssue({ code: "custom", path: ["edgeUrl"], message: "needs ORIGIN_SECRET to sign its heartbeats" });
    if (c.edgeUrl && !c.advertiseUrl && UNSPECIFIED_HOSTS.has(c.host)) {
      ctx.addIssue({ code: "custom", path: ["advertiseUrl"], message: `is required with --edge when --host is ${c.host} (the edge cannot dial it)` });
    }
  });

/** A validated origin configuration. */
export type OriginConfig = z.infer<typeof configSchema>;

/** Parses argv (without the node and script entries) and env. Throws ConfigError naming the field. */
export function parseOriginConfig(argv: string[], env: Record<string, string | undefined>): OriginConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: "string" }, host: { type: "string" }, provider: { type: "string" }, models: { type: "string" },
        "models-dir": { type: "string" }, "max-batch": { type: "string" }, "window-ms": { type: "string" },
        "max-queue-rows": { type: "string" }, "drain-timeout-ms": { type: "string" }, "max-body-bytes": { type: "string" },
        "body-timeout-ms": { type: "string" }, threads: { type: "string" }, insecure: { type: "boolean" }, edge: { type: "string" }, "advertise-url": { type: "string" },
      },
    }).values;
  } catch (error) {
    throw new ConfigError(`gpu-origin: ${(error as Error).message}`);
  }
  const raw = {
    port: values.port, host: values.host, provider: values.provider, models: values.models, modelsDir: values["models-dir"] ?? (env.MODELS_DIR || undefined),
    maxBatch: values["max-batch"], windowMs: values["window-ms"], maxQueueRows: values["max-queue-rows"],
    drainTimeoutMs: values["drain-timeout-ms"], maxBodyBytes: values["max-body-bytes"], bodyTimeoutMs: values["body-timeout-ms"], threads: values.threads,
    isInsecure: values.insecure, secret: env.ORIGIN_SECRET || undefined,
    edgeUrl: values.edge ?? (env.EDGE_URL || undefined), advertiseUrl: values["advertise-url"] ?? (env.ADVERTISE_URL || undefined),
  };
  const result = configSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `gpu-origin: ${nameOf(String(i.path[0] ?? "(root)"))}: ${i.message}`).join("\n"));
  }
  return result.data;
}

/** The flag (or env variable) a config field comes from, for error messages. */
function nameOf(field: string): string {
  if (field === "secret" || field === "ORIGIN_SECRET") return "ORIGIN_SECRET";
  if (field === "isInsecure") return "--insecure";
  if (field === "edgeUrl") return "--edge (EDGE_URL)";
  if (field === "advertiseUrl") return "--advertise-url (ADVERTISE_URL)";
  if (field === "modelsDir") return "--models-dir (MODELS_DIR)";
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
