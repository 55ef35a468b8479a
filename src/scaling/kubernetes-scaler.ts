/**
 * Scales the origin pool through the Kubernetes API with fetch alone (so it runs in Node and in
 * workerd): a Deployment through its scale subresource (autoscaling/v1 Scale, GET and PATCH
 * `/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale` with a JSON merge patch
 * `{"spec":{"replicas":n}}`), or a KServe InferenceService through its predictor's floor
 * (`/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}`, merge-patching
 * `spec.predictor.minReplicas`; KServe's own autoscaler may run more). Bearer-token auth when a
 * token is given. A non-2xx answer becomes a KubernetesApiError carrying the API's Status message.
 *
 * `discoverEndpoints` lists a Service's EndpointSlices and returns the base URLs of its ready
 * endpoints, for a pool that follows a Service instead of heartbeats.
 */
import { z } from "zod";
import type { KubernetesScalerConfig, KubernetesTarget, PoolScaler } from "./pool-scaler";

/** A refusal or failure of the Kubernetes API; `status` is the HTTP status (0: no answer), `reason` the Status reason (e.g. "NotFound"). */
export class KubernetesApiError extends Error {
  override name = "KubernetesApiError";

  constructor(
    message: string,
    readonly status: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** How to reach the API server. */
export type KubernetesAccess = Pick<KubernetesScalerConfig, "apiUrl" | "namespace" | "token">;

/** Transport options. */
export interface KubernetesClientOptions {
  fetch?: typeof fetch;
  /** Longest wait for one API request, in ms (default 10000). */
  timeoutMs?: number;
  /** Field manager recorded for the patches (default "edge-pool-scaler"). */
  fieldManager?: string;
}

/** KServe's default predictor minReplicas, read when the field is absent. */
export const KSERVE_DEFAULT_MIN_REPLICAS = 1;

const scaleSchema = z.object({ spec: z.object({ replicas: z.number().int().optional() }).optional() });
const inferenceServiceSchema = z.object({ spec: z.object({ predictor: z.object({ minReplicas: z.number().int().optional() }).optional() }) });
const statusSchema = z.object({ kind: z.literal("Status"), message: z.string().optional(), reason: z.string().optional() });
const endpointSliceListSchema = z.object({
  metadata: z.object({ continue: z.string().optional() }).optional(),
  items: z.array(
    z.object({
      addressType: z.string(),
      endpoints: z.array(z.object({ addresses: z.array(z.string()), conditions: z.object({ ready: z.boolean().optional() }).optional() })).nullish(),
      ports: z.array(z.object({ name: z.string().optional(), port: z.number().int().optional() })).nullish(),
    }),
  ),
});

/** The API path of what `target` names. */
export function targetPath(namespace: string, target: KubernetesTarget): string {
  const ns = encodeURIComponent(namespace);
  const name = encodeURIComponent(target.name);
  return target.kind === "Deployment"
    ? `/apis/apps/v1/namespaces/${ns}/deployments/${name}/scale`
    : `/apis/serving.kserve.io/v1beta1/namespaces/${ns}/inferenceservices/${name}`;
}

/** The merge patch that asks `target` for `replicas`. */
export function replicasPatch(target: KubernetesTarget, replicas: number): object {
  return target.kind === "Deployment" ? { spec: { replicas } } : { spec: { predictor: { minReplicas: replicas } } };
}

/** Scales a Deployment or an InferenceService. */
export class KubernetesScaler implements PoolScaler {
  readonly kind = "kubernetes";

  constructor(
    private readonly config: KubernetesScalerConfig,
    private readonly options: KubernetesClientOptions = {},
  ) {}

  async setReplicas(replicas: number, _reason: string): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`replicas must be a non-negative integer, got ${replicas}`);
    const fieldManager = encodeURIComponent(this.options.fieldManager ?? "edge-pool-scaler");
    const path = `${targetPath(this.config.namespace, this.config.target)}?fieldManager=${fieldManager}`;
    await apiRequest(this.config, this.options, "PATCH", path, replicasPatch(this.config.target, replicas));
  }

  async replicas(): Promise<number> {
    const { target, namespace } = this.config;
    const body = await apiRequest(this.config, this.options, "GET", targetPath(namespace, target));
    if (target.kind === "Deployment") {
      const scale = parseAnswer(scaleSchema, body, `${target.kind} ${target.name}`);
      return scale.spec?.replicas ?? 0; // omitted when 0 (omitempty)
    }
    const service = parseAnswer(inferenceServiceSchema, body, `${target.kind} ${target.name}`);
    return service.spec.predictor?.minReplicas ?? KSERVE_DEFAULT_MIN_REPLICAS;
  }

  async close(): Promise<void> {}
}

/**
 * Base URLs (`${scheme}://address:port`) of the ready endpoints (conditions.ready not false) of the
 * Service `serviceName`, from its EndpointSlices. The port is the slice's port named `port`, the
 * number `port`, or (no `port`) the slice's first port; slices without it are skipped.
 */
export async function discoverEndpoints(
  access: KubernetesAccess,
  serviceName: string,
  port?: string | number,
  options: KubernetesClientOptions & { scheme?: "http" | "https" } = {},
): Promise<string[]> {
  const selector = encodeURIComponent(`kubernetes.io/service-name=${serviceName}`);
  const base = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(access.namespace)}/endpointslices?labelSelector=${selector}`;
  const urls = new Set<string>();
  let token: string | undefined;
  do {
    const body = await apiRequest(access, options, "GET", token ? `${base}&continue=${encodeURIComponent(token)}` : base);
    const list = parseAnswer(endpointSliceListSchema, body, `EndpointSlices of ${serviceName}`);
    for (const slice of list.items) {
      const ports = slice.ports ?? [];
      const chosen = typeof port === "number" ? port : (port === undefined ? ports[0] : ports.find((p) => (p.name ?? "") === port))?.port;
      if (chosen === undefined) continue;
      for (const endpoint of slice.endpoints ?? []) {
        if (endpoint.conditions?.ready === false) continue;
        const address = endpoint.addresses[0];
        if (!address) continue;
        const host = address.includes(":") ? `[${address}]` : address;
        urls.add(`${options.scheme ?? "http"}://${host}:${chosen}`);
      }
    }
    token = list.metadata?.continue || undefined;
  } while (token);
  return [...urls];
}

/** Sends one request to the API server; resolves with the parsed JSON answer, throws KubernetesApiError otherwise. */
async function apiRequest(access: KubernetesAccess, options: KubernetesClientOptions, method: "GET" | "PATCH", path: string, body?: object): Promise<unknown> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (access.token) headers.authorization = `Bearer ${access.token}`;
  if (body) headers["content-type"] = "application/merge-patch+json";
  const what = `kubernetes: ${method} ${path.split("?")[0]}`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(access.apiUrl + path, {
      method,
      headers,
      ...(body && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new KubernetesApiError(`${what}: ${(error as Error).message}`, 0);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const status = statusSchema.safeParse(json);
    const detail = status.success ? `${status.data.reason ?? response.statusText}: ${status.data.message ?? ""}` : text.slice(0, 200) || response.statusText;
    throw new KubernetesApiError(`${what}: ${response.status} ${detail}`.trim(), response.status, status.success ? status.data.reason : undefined);
  }
  if (json === undefined) throw new KubernetesApiError(`${what}: ${response.status} answer is not JSON`, response.status);
  return json;
}

function parseAnswer<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new KubernetesApiError(`kubernetes: unexpected answer for ${what}: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, 200);
  return result.data;
}
