/**
 * The contract between the edge's scaling decision and whatever runs the origin replicas: a
 * PoolScaler applies a replica count. Three implementations: "local" launches gpu-origin processes
 * on this machine (local-scaler.ts, Node only), "kubernetes" patches a Deployment's scale
 * subresource or a KServe InferenceService (kubernetes-scaler.ts, fetch only), "webhook" POSTs the
 * count, signed, to a URL (webhook-scaler.ts, fetch only). Their configuration is validated here,
 * once, with zod; `createPoolScaler` (create-pool-scaler.ts) picks the implementation.
 *
 * Platform-free: this file imports neither Node nor Workers modules, so the Worker may use the
 * fetch-only scalers with the same types.
 */
import { z } from "zod";
import { ConfigError, describeIssues } from "../models/manifest";
import { MIN_SECRET_LENGTH } from "../origin/hop-signature";

/** Applies a replica count to an origin pool. */
export interface PoolScaler {
  readonly kind: "local" | "kubernetes" | "webhook";
  /** Asks for `replicas` replicas; resolves once the request is accepted (not when they are ready). `reason` is for logs and audit trails. */
  setReplicas(replicas: number, reason: string): Promise<void>;
  /** The count last asked for / observed (kubernetes: the scale subresource's spec.replicas). */
  replicas(): Promise<number>;
  /** Stops what this scaler started (local) — no-op elsewhere. */
  close(): Promise<void>;
}

/** Most replicas any scaler is asked for (a guard against a runaway controller). */
export const MAX_POOL_REPLICAS = 1000;

/** An http(s) URL, trailing slashes removed. */
const httpUrl = z
  .string()
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), "must be an http:// or https:// URL")
  .transform((s) => s.replace(/\/+$/, ""));

const secret = z.string().min(MIN_SECRET_LENGTH, `must be at least ${MIN_SECRET_LENGTH} characters`);
const count = z.number().int("must be an integer").min(0, "must be at least 0").max(MAX_POOL_REPLICAS, `must be at most ${MAX_POOL_REPLICAS}`);

/** Kubernetes names (RFC 1123 labels and subdomains). */
const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a lowercase RFC 1123 name");

const localSchema = z
  .object({
    kind: z.literal("local"),
    minReplicas: count,
    maxReplicas: count.max(64, "must be at most 64 on one machine"),
    /** First port replicas listen on (127.0.0.1); the next free ones upward follow. */
    basePort: z.number().int().min(1024, "must be at least 1024").max(65535, "must be at most 65535"),
    /** ORIGIN_SECRET the replicas verify (and sign their heartbeats) with. */
    secret,
    /** The edge the replicas register with (`--edge`). */
    edgeUrl: httpUrl,
    /** onnxruntime threads per replica; default: this machine's cores / maxReplicas, at least 1. */
    threads: z.number().int().min(1).max(256).optional(),
    /** Extra gpu-origin flags for every replica, e.g. ["--models", "ppocr-det"]. */
    originArgs: z.array(z.string()).optional(),
  })
  .strict()
  .refine((c) => c.minReplicas <= c.maxReplicas, { path: ["maxReplicas"], message: "must be at least minReplicas" });

const kubernetesTargetSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("Deployment"), name: k8sName }).strict(),
  z.object({ kind: z.literal("InferenceService"), name: k8sName }).strict(),
]);

const kubernetesSchema = z
  .object({
    kind: z.literal("kubernetes"),
    /** API server base URL, e.g. https://kubernetes.default.svc. */
    apiUrl: httpUrl,
    namespace: k8sName,
    /** Bearer token (e.g. the service account's); none: no Authorization header. */
    token: z.string().min(1).optional(),
    /** What to scale: a Deployment (its scale subresource) or a KServe InferenceService (spec.predictor.minReplicas). */
    target: kubernetesTargetSchema,
  })
  .strict();

const webhookSchema = z
  .object({
    kind: z.literal("webhook"),
    /** Receives POST {"replicas", "reason", "atMs"}, signed with the hop signature. */
    url: httpUrl,
    secret,
  })
  .strict();

/** Validates a scaler configuration. */
export const poolScalerConfigSchema = z.discriminatedUnion("kind", [localSchema, kubernetesSchema, webhookSchema]);

/** A validated scaler configuration, one of the three kinds. */
export type PoolScalerConfig = z.output<typeof poolScalerConfigSchema>;
/** Configuration of the local scaler. */
export type LocalScalerConfig = Extract<PoolScalerConfig, { kind: "local" }>;
/** Configuration of the Kubernetes scaler. */
export type KubernetesScalerConfig = Extract<PoolScalerConfig, { kind: "kubernetes" }>;
/** What the Kubernetes scaler scales. */
export type KubernetesTarget = KubernetesScalerConfig["target"];
/** Configuration of the webhook scaler. */
export type WebhookScalerConfig = Extract<PoolScalerConfig, { kind: "webhook" }>;

/** Parses and validates a scaler configuration; throws ConfigError naming the field and the rule ("pool scaler: maxReplicas: ..."). */
export function parsePoolScalerConfig(raw: unknown): PoolScalerConfig {
  const result = poolScalerConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues("pool scaler", result.error));
  return result.data;
}

/** `replicas` clamped to [min, max] and rounded to an integer. */
export function clampReplicas(replicas: number, min: number, max: number): number {
  if (!Number.isFinite(replicas)) throw new RangeError(`replicas must be a finite number, got ${replicas}`);
  return Math.min(max, Math.max(min, Math.round(replicas)));
}
