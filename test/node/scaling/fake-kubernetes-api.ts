/**
 * TEST DOUBLE of the Kubernetes API server: the real API server cannot run here, so this node:http
 * server on 127.0.0.1 stands in for the few endpoints the pool scaler uses, holding Deployments'
 * Scale subresources, KServe InferenceServices and EndpointSlices in memory:
 *
 *   GET|PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale          (autoscaling/v1 Scale)
 *   GET|PATCH /apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}
 *   GET       /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=k=v[,k=v]
 *
 * Like the real server it answers errors with a meta/v1 Status object: 401 Unauthorized for a
 * missing or wrong bearer token (when a token is configured), 404 NotFound for unknown paths and
 * objects, 405 for other methods, 415 UnsupportedMediaType for a PATCH that is not
 * `application/merge-patch+json` (the real server also takes JSON patches and server-side apply;
 * the double only merge patches), 400 for a body that is not a JSON object, 422 Invalid for a body or
 * a result that breaks the schema or the field's validation (negative replicas). Every PATCH body
 * and every object it stores is validated against the schemas copied into test/spec/kubernetes/, and
 * so is each of its own answers: one that does not conform is recorded in `violations` and turned
 * into a 500, so a test fails instead of trusting a wrong double.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { schemaErrors, type KubernetesKind } from "./kubernetes-schemas";

/** A request as the double saw it. */
export interface RecordedRequest {
  method: string;
  /** Path and query. */
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

type Json = Record<string, unknown>;

const MERGE_PATCH = "application/merge-patch+json";

/** An in-memory stand-in for the Kubernetes API server. */
export class FakeKubernetesApi {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Answers of the double that broke the schema (should stay empty). */
  readonly violations: string[] = [];
  private readonly scales = new Map<string, Json>();
  private readonly services = new Map<string, Json>();
  private readonly slices: Json[] = [];
  private resourceVersion = 1;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly namespace: string,
    private readonly token: string | undefined,
  ) {}

  /** Starts the double on 127.0.0.1 (a free port); with `token`, requests need `Authorization: Bearer <token>`. */
  static async start({ namespace = "inference", token }: { namespace?: string; token?: string } = {}): Promise<FakeKubernetesApi> {
    let api: FakeKubernetesApi | undefined;
    const server = createServer((req, res) => void api!.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    api = new FakeKubernetesApi(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, namespace, token);
    return api;
  }

  /** Adds a Deployment (only its scale subresource is modelled). */
  addDeployment(name: string, replicas: number): void {
    this.scales.set(name, this.checked("Scale", {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: this.metadata(name),
      spec: replicas ? { replicas } : {},
      status: { replicas, selector: `app=${name}` },
    }));
  }

  /** Adds an InferenceService whose predictor has `minReplicas` (absent: KServe's default applies). */
  addInferenceService(name: string, minReplicas?: number): void {
    this.services.set(name, this.checked("InferenceService", {
      apiVersion: "serving.kserve.io/v1beta1",
      kind: "InferenceService",
      metadata: this.metadata(name),
      spec: { predictor: { ...(minReplicas !== undefined && { minReplicas }), maxReplicas: 8, model: { modelFormat: { name: "onnx" }, storageUri: "pvc://models/ppocr-det" } } },
      status: {},
    }));
  }

  /** Adds an EndpointSlice (validated; `metadata.labels["kubernetes.io/service-name"]` ties it to a Service). */
  addEndpointSlice(slice: Json): void {
    this.slices.push(this.checked("EndpointSlice", { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", ...slice }));
  }

  /** The stored spec.replicas of a Deployment (0 when omitted, as the API omits it). */
  deploymentReplicas(name: string): number | undefined {
    const scale = this.scales.get(name);
    return scale ? ((scale.spec as Json).replicas as number | undefined) ?? 0 : undefined;
  }

  /** The stored InferenceService. */
  inferenceService(name: string): Json | undefined {
    return this.services.get(name);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private metadata(name: string): Json {
    return { name, namespace: this.namespace, uid: `uid-${name}`, resourceVersion: String(this.resourceVersion++), creationTimestamp: "2025-01-01T00:00:00Z" };
  }

  /** Validates an object the double is about to store; a test that builds a wrong one fails at once. */
  private checked(kind: KubernetesKind, value: Json): Json {
    const errors = schemaErrors(kind, value);
    if (errors) throw new Error(`fake kubernetes api: invalid ${kind}: ${errors}`);
    return value;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const path = req.url ?? "/";
    this.requests.push({ method: req.method ?? "", path, contentType: req.headers["content-type"], authorization: req.headers.authorization, body });
    const answer = this.route(req.method ?? "", new URL(path, "http://double"), req.headers, body);
    const errors = schemaErrors(answer.kind, answer.body);
    if (errors) {
      this.violations.push(`${req.method} ${path}: ${answer.kind}: ${errors}`);
      res.writeHead(500, { "content-type": "text/plain" }).end(`test double answer broke the ${answer.kind} schema: ${errors}`);
      return;
    }
    res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
  }

  private route(method: string, url: URL, headers: IncomingHttpHeaders, body: string): Answer {
    if (this.token !== undefined && headers.authorization !== `Bearer ${this.token}`) return status(401, "Unauthorized", "Unauthorized");
    const contentType = headers["content-type"];
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if ((m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/.exec(p))) {
      return this.object(method, "Scale", this.scales, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), contentType, body, { resource: "deployments", group: "apps", gk: "Scale.autoscaling" });
    }
    if ((m = /^\/apis\/serving\.kserve\.io\/v1beta1\/namespaces\/([^/]+)\/inferenceservices\/([^/]+)$/.exec(p))) {
      return this.object(method, "InferenceService", this.services, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), contentType, body, { resource: "inferenceservices", group: "serving.kserve.io", gk: "InferenceService.serving.kserve.io" });
    }
    if ((m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/.exec(p))) {
      if (method !== "GET") return status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
      const selector = parseSelector(url.searchParams.get("labelSelector") ?? "");
      if (!selector) return status(400, "BadRequest", `unable to parse requirement: ${url.searchParams.get("labelSelector")}`);
      const namespace = decodeURIComponent(m[1]!);
      const items = this.slices.filter((s) => {
        const meta = s.metadata as Json;
        const labels = (meta.labels ?? {}) as Record<string, string>;
        return meta.namespace === namespace && selector.every(([k, v]) => labels[k] === v);
      });
      return { status: 200, kind: "EndpointSliceList", body: { kind: "EndpointSliceList", apiVersion: "discovery.k8s.io/v1", metadata: { resourceVersion: String(this.resourceVersion) }, items } };
    }
    return status(404, "NotFound", "the server could not find the requested resource");
  }

  /** GET or merge-PATCH one namespaced object. */
  private object(method: string, kind: "Scale" | "InferenceService", store: Map<string, Json>, namespace: string, name: string, contentType: string | undefined, body: string, names: { resource: string; group: string; gk: string }): Answer {
    const current = namespace === this.namespace ? store.get(name) : undefined;
    if (method !== "GET" && method !== "PATCH") return status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    if (!current) return status(404, "NotFound", `${names.resource}.${names.group} "${name}" not found`, { name, group: names.group, kind: names.resource });
    if (method === "GET") return { status: 200, kind, body: current };

    const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
    if (mediaType !== MERGE_PATCH) {
      return status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${MERGE_PATCH} (this test double implements JSON merge patch only)`);
    }
    let patch: unknown;
    try {
      patch = JSON.parse(body);
    } catch (error) {
      return status(400, "BadRequest", `error decoding patch: ${(error as Error).message}`);
    }
    if (!isObject(patch)) return status(400, "BadRequest", "error decoding patch: the patch is not a JSON object");
    const patchErrors = schemaErrors(kind, patch);
    if (patchErrors) return invalid(names.gk, name, patchErrors);
    const next = mergePatch(current, patch) as Json;
    const nextErrors = schemaErrors(kind, next);
    if (nextErrors) return invalid(names.gk, name, nextErrors);
    const replicas = kind === "Scale" ? ((next.spec as Json).replicas as number | undefined) : (((next.spec as Json).predictor as Json).minReplicas as number | undefined);
    if (replicas !== undefined && replicas < 0) {
      const field = kind === "Scale" ? "spec.replicas" : "spec.predictor.minReplicas";
      return invalid(names.gk, name, `${field}: Invalid value: ${replicas}: must be greater than or equal to 0`, field);
    }
    if (kind === "Scale") {
      const spec = next.spec as Json;
      if (spec.replicas === 0) delete spec.replicas; // omitempty, as the API serialises it
      next.status = { ...(next.status as Json), replicas: replicas ?? 0 };
    }
    next.metadata = { ...(next.metadata as Json), resourceVersion: String(this.resourceVersion++) };
    store.set(name, next);
    return { status: 200, kind, body: next };
  }
}

interface Answer {
  status: number;
  kind: KubernetesKind;
  body: Json;
}

function status(code: number, reason: string, message: string, details?: Json): Answer {
  return { status: code, kind: "Status", body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details && { details }), code } };
}

function invalid(groupKind: string, name: string, message: string, field?: string): Answer {
  const [kind, group] = [groupKind.split(".")[0]!, groupKind.split(".").slice(1).join(".")];
  return status(422, "Invalid", `${groupKind} "${name}" is invalid: ${message}`, { name, group, kind, causes: [{ reason: "FieldValueInvalid", message, ...(field && { field }) }] });
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Json = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** Equality-based label selector "k=v,k2=v2" (also "=="); undefined when it is not one. Empty: matches all. */
function parseSelector(text: string): [string, string][] | undefined {
  if (!text) return [];
  const pairs: [string, string][] = [];
  for (const term of text.split(",")) {
    const match = /^\s*([A-Za-z0-9./_-]+)\s*==?\s*([A-Za-z0-9._-]*)\s*$/.exec(term);
    if (!match) return undefined;
    pairs.push([match[1]!, match[2]!]);
  }
  return pairs;
}
