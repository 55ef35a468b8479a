/**
 * Runtime configuration from the Worker's env, validated once per isolate with zod. Model overrides
 * (MODEL_OVERRIDES) adjust a manifest's placement, SLO or batching without rebuilding; the merged
 * manifest is validated again, so a bad override fails with a message naming the model and field.
 */
import { z } from "zod";
import { CATALOG, isOriginOnly, type CatalogEntry } from "./models/catalog";
import { PIPELINES } from "./ocr/pipeline-manifest";
import { ConfigError, describeIssues, manifestSchema, PLACEMENTS, type ModelManifest } from "./models/manifest";
import { apiKeySchema, type ApiKey } from "./edge/access";
import { MIN_SECRET_LENGTH } from "./origin/hop-signature";
import { DEFAULT_BODY_TIMEOUT_MS, type BodyLimits } from "./protocol/read-body";
import type { ControlMode } from "./control/controller";

const overridesSchema = z.record(
  z.string(),
  z
    .object({
      placement: z.enum(PLACEMENTS).optional(),
      slo: z.object({ percentile: z.number(), ms: z.number() }).partial().strict().optional(),
      maxLatencyMs: z.number().optional(),
      pinned: z.array(z.string()).optional(),
      batching: z
        .object({
          maxBatch: z.number(),
          windowMs: z.number(),
          maxQueueRows: z.number(),
          shards: z.number(),
          maxRowsPerRequest: z.number(),
          adaptiveWindow: z.boolean(),
          // Merged into the manifest's size classes: e.g. {"widths": [...]} sets the class widths (bench size-classes).
          sizeClasses: z.object({ input: z.string(), axis: z.number(), widths: z.array(z.number()), padValue: z.number(), outputs: z.record(z.string(), z.unknown()) }).partial().strict(),
        })
        .partial()
        .strict()
        .optional(),
    })
    .strict(),
);

/** What the Worker and its buffers run with. */
export interface RuntimeConfig {
  /** Served models with overrides applied. */
  models: ReadonlyMap<string, CatalogEntry>;
  /** Largest request body (413 beyond, before parsing) and longest time to receive it (408 beyond): MAX_BODY_BYTES, BODY_TIMEOUT_MS. */
  bodyLimits: BodyLimits;
  /** Origin pool base URLs (no trailing slash). */
  originUrls: string[];
  /** Shared HMAC secret that signs every edge-to-origin request (the ORIGIN_SECRET secret); required when originUrls is set. */
  originSecret?: string;
  /** Headers on every request to the origin pool: Cloudflare Access's service-token pair when ORIGIN_ACCESS_CLIENT_ID and ORIGIN_ACCESS_CLIENT_SECRET are set (docs/deploy.md). */
  originHeaders: Readonly<Record<string, string>>;
  /** How tensors travel to the origin (ORIGIN_WIRE): "binary", the OIP binary tensor extension (default; gpu-origin, Triton), or "json" for servers without it. */
  originWire: "binary" | "json";
  /** ORIGIN_EXTENSIONS ("true" by default, gpu-origin): the pool takes UINT8 pixel inputs and derived outputs; "false" for Triton or KServe servers (the edge normalises and derives). */
  originExtensions: boolean;
  /** The control plane (src/control/). */
  control: ControlConfig;
  /** Bearer token for the operator API (pins); the ADMIN_TOKEN secret. Without it, pins can only be set in manifests. */
  adminToken?: string;
  /** API_KEYS (a secret): the keys that may use the model routes, hashed (src/edge/access.ts); undefined: open. */
  apiKeys?: readonly ApiKey[];
  /** LOG_REQUESTS ("true" by default): one JSON line per inference request (id, trace, model, placement, shard, batch, timings, status). */
  logRequests: boolean;
  /** METRICS ("true" by default): inference metrics (/metrics, and Analytics Engine when bound). */
  metrics: boolean;
  /** BUFFER_LOCATION_HINT: the region where buffer Durable Objects are created (Cloudflare's location hints); unset: near their first caller. */
  bufferLocationHint?: LocationHint;
}

/** Cloudflare's Durable Object location hints (its DurableObjectLocationHint). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/** How plans are decided and bounded. */
export interface ControlConfig {
  /** CONTROL_MODE: "closed-loop" (default), "reactive" (Ray Serve's rule, a baseline) or "static" (manifests and pins only). */
  mode: ControlMode;
  /** CONTROL_MAX_SHARDS: most buffer shards a plan may use per model (default 8). */
  maxShards: number;
  /** POOL_MIN_REPLICAS / POOL_MAX_REPLICAS: bounds of the origin pool's size (defaults 0 and 4). */
  minReplicas: number;
  maxReplicas: number;
}

/** The env fields the config reads; ORIGIN_SECRET is a secret (.dev.vars locally), so it may be absent from the generated Env. */
type ConfigEnv = {
  MODEL_OVERRIDES?: string;
  MAX_BODY_BYTES?: string;
  ORIGIN_URLS?: string;
  BODY_TIMEOUT_MS?: string;
  ORIGIN_SECRET?: string;
  ORIGIN_WIRE?: string;
  ORIGIN_EXTENSIONS?: string;
  ORIGIN_ACCESS_CLIENT_ID?: string;
  ORIGIN_ACCESS_CLIENT_SECRET?: string;
  ADMIN_TOKEN?: string;
  CONTROL_MODE?: string;
  CONTROL_MAX_SHARDS?: string;
  POOL_MIN_REPLICAS?: string;
  POOL_MAX_REPLICAS?: string;
  BUFFER_LOCATION_HINT?: string;
  LOG_REQUESTS?: string;
  METRICS?: string;
  API_KEYS?: string;
};

const controlSchema = z.strictObject({
  mode: z.enum(["closed-loop", "reactive", "static"]),
  maxShards: z.coerce.number().int().min(1).max(256),
  minReplicas: z.coerce.number().int().min(0).max(1024),
  maxReplicas: z.coerce.number().int().min(0).max(1024),
});

let cached: { key: string; config: RuntimeConfig } | undefined;
/** The configuration of each env object seen (an isolate's env is one object; its vars do not change). */
const byEnv = new WeakMap<ConfigEnv, RuntimeConfig>();

/**
 * The validated configuration for `env`, computed once per isolate (and again if env changes). A
 * request of the isolate finds it by its env object, without building the key from every var (a
 * profile of a stream shard put that at 15 µs a chunk); another env object with the same vars (a
 * test's copy) shares the configuration by the key.
 */
export function runtimeConfig(env: ConfigEnv): RuntimeConfig {
  const known = byEnv.get(env);
  if (known) return known;
  const key = [env.MODEL_OVERRIDES, env.MAX_BODY_BYTES, env.BODY_TIMEOUT_MS, env.ORIGIN_URLS, env.ORIGIN_SECRET, env.ORIGIN_WIRE, env.ORIGIN_EXTENSIONS, env.ORIGIN_ACCESS_CLIENT_ID, env.ORIGIN_ACCESS_CLIENT_SECRET, env.ADMIN_TOKEN, env.CONTROL_MODE, env.CONTROL_MAX_SHARDS, env.POOL_MIN_REPLICAS, env.POOL_MAX_REPLICAS, env.BUFFER_LOCATION_HINT, env.LOG_REQUESTS, env.METRICS, env.API_KEYS].join("\n");
  if (cached?.key !== key) cached = { key, config: buildConfig(env) };
  byEnv.set(env, cached.config);
  return cached.config;
}

function buildConfig(env: ConfigEnv): RuntimeConfig {
  const overrides = overridesSchema.safeParse(parseJson("MODEL_OVERRIDES", env.MODEL_OVERRIDES || "{}"));
  if (!overrides.success) throw new ConfigError(describeIssues("MODEL_OVERRIDES", overrides.error));
  for (const name of Object.keys(overrides.data)) {
    if (!CATALOG.has(name)) throw new ConfigError(`MODEL_OVERRIDES: ${name}: no such model`);
  }
  const models = new Map<string, CatalogEntry>();
  for (const [name, entry] of CATALOG) {
    const o = overrides.data[name];
    const manifest = o ? applyOverride(entry.manifest, o) : entry.manifest;
    if (entry.originOnly && !isOriginOnly(manifest)) {
      throw new ConfigError(`MODEL_OVERRIDES.${name}: placement: must stay "origin" and pinned (its manifest keeps it on the origin, so its weights are not deployed to the edge)`);
    }
    models.set(name, o ? { ...entry, manifest } : entry);
  }
  for (const pipeline of PIPELINES.values()) {
    const missing = Object.values(pipeline.stages).find((stage) => !models.has(stage));
    if (missing !== undefined) throw new ConfigError(`pipeline ${pipeline.name}: stage model "${missing}" is not served`);
  }
  const maxBodyBytes = Number(env.MAX_BODY_BYTES || 33554432);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new ConfigError("MAX_BODY_BYTES: must be an integer >= 1024");
  const bodyTimeoutMs = Number(env.BODY_TIMEOUT_MS || DEFAULT_BODY_TIMEOUT_MS);
  if (!Number.isInteger(bodyTimeoutMs) || bodyTimeoutMs < 1 || bodyTimeoutMs > 600_000) throw new ConfigError("BODY_TIMEOUT_MS: must be an integer from 1 to 600000");
  const originUrls = (env.ORIGIN_URLS || "").split(",").map((u) => u.trim().replace(/\/+$/, "")).filter(Boolean);
  for (const url of originUrls) {
    if (!/^https?:\/\/[^/]+$/.test(url)) throw new ConfigError(`ORIGIN_URLS: "${url}" must be a base URL like http://127.0.0.1:8801`);
  }
  const originSecret = env.ORIGIN_SECRET || undefined;
  if (originSecret !== undefined && originSecret.length < MIN_SECRET_LENGTH) throw new ConfigError(`ORIGIN_SECRET: must be at least ${MIN_SECRET_LENGTH} characters`);
  if (originUrls.length && originSecret === undefined) throw new ConfigError("ORIGIN_SECRET: is required when ORIGIN_URLS is set (a Worker secret; .dev.vars locally)");
  const originWire = env.ORIGIN_WIRE || "binary";
  if (originWire !== "binary" && originWire !== "json") throw new ConfigError('ORIGIN_WIRE: must be "binary" or "json"');
  const originExtensions = flag("ORIGIN_EXTENSIONS", env.ORIGIN_EXTENSIONS);
  const accessId = env.ORIGIN_ACCESS_CLIENT_ID || undefined;
  const accessSecret = env.ORIGIN_ACCESS_CLIENT_SECRET || undefined;
  if ((accessId === undefined) !== (accessSecret === undefined)) throw new ConfigError("ORIGIN_ACCESS_CLIENT_ID: set together with ORIGIN_ACCESS_CLIENT_SECRET (a Cloudflare Access service token), or neither");
  const originHeaders: Record<string, string> = accessId && accessSecret ? { "CF-Access-Client-Id": accessId, "CF-Access-Client-Secret": accessSecret } : {};
  const control = controlSchema.safeParse({ mode: env.CONTROL_MODE || "closed-loop", maxShards: env.CONTROL_MAX_SHARDS || 8, minReplicas: env.POOL_MIN_REPLICAS || 0, maxReplicas: env.POOL_MAX_REPLICAS || 4 });
  if (!control.success) throw new ConfigError(describeIssues("control", control.error).replace(/control: (\w+)/g, (_, f: string) => CONTROL_VARS[f as keyof typeof CONTROL_VARS] ?? f));
  if (control.data.minReplicas > control.data.maxReplicas) throw new ConfigError("POOL_MIN_REPLICAS: must not exceed POOL_MAX_REPLICAS");
  const adminToken = env.ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < MIN_SECRET_LENGTH) throw new ConfigError(`ADMIN_TOKEN: must be at least ${MIN_SECRET_LENGTH} characters`);
  let apiKeys: ApiKey[] | undefined;
  if (env.API_KEYS) {
    const parsed = z.array(apiKeySchema).min(1).safeParse(parseJson("API_KEYS", env.API_KEYS));
    if (!parsed.success) throw new ConfigError(describeIssues("API_KEYS", parsed.error));
    for (const [i, key] of parsed.data.entries()) {
      const unknown = key.models.find((m) => m !== "*" && !models.has(m) && !PIPELINES.has(m));
      if (unknown !== undefined) throw new ConfigError(`API_KEYS: ${i}.models: no such model "${unknown}"`);
    }
    if (new Set(parsed.data.map((k) => k.name)).size !== parsed.data.length) throw new ConfigError("API_KEYS: names must be unique (they key the rate limits)");
    apiKeys = parsed.data;
  }
  const logRequests = flag("LOG_REQUESTS", env.LOG_REQUESTS);
  const metrics = flag("METRICS", env.METRICS);
  const bufferLocationHint = env.BUFFER_LOCATION_HINT || undefined;
  if (bufferLocationHint !== undefined && !(LOCATION_HINTS as readonly string[]).includes(bufferLocationHint)) throw new ConfigError(`BUFFER_LOCATION_HINT: must be one of ${LOCATION_HINTS.join(", ")}`);
  return {
    models,
    bodyLimits: { maxBytes: maxBodyBytes, timeoutMs: bodyTimeoutMs },
    originUrls,
    ...(originSecret !== undefined && { originSecret }),
    originHeaders,
    originWire,
    originExtensions,
    control: control.data,
    ...(adminToken !== undefined && { adminToken }),
    logRequests,
    metrics,
    ...(apiKeys && { apiKeys }),
    ...(bufferLocationHint !== undefined && { bufferLocationHint: bufferLocationHint as LocationHint }),
  };
}

/** The env var behind each control field, for error messages. */
const CONTROL_VARS = { mode: "CONTROL_MODE", maxShards: "CONTROL_MAX_SHARDS", minReplicas: "POOL_MIN_REPLICAS", maxReplicas: "POOL_MAX_REPLICAS" };

/** Whether origin placement can serve: a pool is configured (static replicas) or can register (a secret to verify them). */
export function hasOriginPool(config: RuntimeConfig): boolean {
  return config.originSecret !== undefined;
}

function applyOverride(manifest: ModelManifest, o: z.infer<typeof overridesSchema>[string]): ModelManifest {
  const sizeClasses = o.batching?.sizeClasses && { ...manifest.batching.sizeClasses, ...o.batching.sizeClasses };
  const merged = { ...manifest, placement: o.placement ?? manifest.placement, maxLatencyMs: o.maxLatencyMs ?? manifest.maxLatencyMs, pinned: o.pinned ?? manifest.pinned, slo: { ...manifest.slo, ...o.slo }, batching: { ...manifest.batching, ...o.batching, ...(sizeClasses && { sizeClasses }) } };
  const result = manifestSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssues(`MODEL_OVERRIDES.${manifest.name}`, result.error));
  return result.data;
}

function parseJson(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${field}: not valid JSON`);
  }
}

/** A "true"/"false" variable (unset: true). */
function flag(name: string, value: string | undefined): boolean {
  if (!value) return true;
  if (value !== "true" && value !== "false") throw new ConfigError(`${name}: must be "true" or "false"`);
  return value === "true";
}
