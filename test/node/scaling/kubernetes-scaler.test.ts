/**
 * The Kubernetes scaler and endpoint discovery against a test double of the Kubernetes API server
 * (fake-kubernetes-api.ts), which checks every request and its own answers against the API's
 * schemas (test/spec/kubernetes/). After each test the double must have kept to its schemas.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { discoverEndpoints, KubernetesApiError, KubernetesScaler } from "../../../src/scaling/kubernetes-scaler";
import { parsePoolScalerConfig, type KubernetesScalerConfig } from "../../../src/scaling/pool-scaler";
import { FakeKubernetesApi } from "./fake-kubernetes-api";

const TOKEN = "sa-token-for-the-test";
const SCALE_PATH = "/apis/apps/v1/namespaces/inference/deployments/gpu-origin/scale";

let api: FakeKubernetesApi;

beforeAll(async () => {
  api = await FakeKubernetesApi.start({ namespace: "inference", token: TOKEN });
  api.addDeployment("gpu-origin", 2);
  api.addInferenceService("ppocr-det", 1);
  api.addInferenceService("defaulted");
});

afterEach(() => {
  expect(api.violations).toEqual([]);
});

afterAll(async () => {
  await api?.close();
});

/** A validated scaler config; `token` null: no token. */
const config = (target: KubernetesScalerConfig["target"], token: string | null = TOKEN): KubernetesScalerConfig =>
  parsePoolScalerConfig({ kind: "kubernetes", apiUrl: api.url, namespace: "inference", ...(token && { token }), target }) as KubernetesScalerConfig;

describe("KubernetesScaler", () => {
  it("sets a Deployment's replicas with a merge patch of its scale subresource and reads them back", async () => {
    const scaler = new KubernetesScaler(config({ kind: "Deployment", name: "gpu-origin" }));
    expect(await scaler.replicas()).toBe(2);
    await scaler.setReplicas(5, "load rose");
    expect(await scaler.replicas()).toBe(5);
    expect(api.deploymentReplicas("gpu-origin")).toBe(5);
    const patch = api.requests.find((r) => r.method === "PATCH" && r.path.startsWith(SCALE_PATH))!;
    expect(patch.contentType).toBe("application/merge-patch+json");
    expect(patch.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(patch.body)).toEqual({ spec: { replicas: 5 } });
  });

  it("reads 0 when the scale omits spec.replicas, as the API does for zero", async () => {
    const scaler = new KubernetesScaler(config({ kind: "Deployment", name: "gpu-origin" }));
    await scaler.setReplicas(0, "idle");
    expect(await scaler.replicas()).toBe(0);
  });

  it("sets an InferenceService's spec.predictor.minReplicas and reads it back", async () => {
    const scaler = new KubernetesScaler(config({ kind: "InferenceService", name: "ppocr-det" }));
    expect(await scaler.replicas()).toBe(1);
    await scaler.setReplicas(3, "load rose");
    expect(await scaler.replicas()).toBe(3);
    const stored = api.inferenceService("ppocr-det") as { spec: { predictor: Record<string, unknown> } };
    expect(stored.spec.predictor).toMatchObject({ minReplicas: 3, maxReplicas: 8, model: { storageUri: "pvc://models/ppocr-det" } });
  });

  it("reads KServe's default of 1 when the predictor sets no minReplicas", async () => {
    expect(await new KubernetesScaler(config({ kind: "InferenceService", name: "defaulted" })).replicas()).toBe(1);
  });

  it("surfaces the API's Status message when the Deployment does not exist", async () => {
    const scaler = new KubernetesScaler(config({ kind: "Deployment", name: "missing" }));
    const error = await scaler.setReplicas(1, "test").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect((error as KubernetesApiError).status).toBe(404);
    expect((error as KubernetesApiError).reason).toBe("NotFound");
    expect((error as Error).message).toBe('kubernetes: PATCH /apis/apps/v1/namespaces/inference/deployments/missing/scale: 404 NotFound: deployments.apps "missing" not found');
  });

  it("surfaces 401 Unauthorized when the token is missing or wrong", async () => {
    for (const token of [null, "wrong-token"]) {
      const error = await new KubernetesScaler(config({ kind: "Deployment", name: "gpu-origin" }, token)).replicas().catch((e: unknown) => e);
      expect((error as KubernetesApiError).status).toBe(401);
      expect((error as Error).message).toMatch(/401 Unauthorized: Unauthorized$/);
    }
  });

  it("refuses a negative or fractional count without calling the API", async () => {
    const before = api.requests.length;
    const scaler = new KubernetesScaler(config({ kind: "Deployment", name: "gpu-origin" }));
    await expect(scaler.setReplicas(-1, "test")).rejects.toThrow(RangeError);
    await expect(scaler.setReplicas(1.5, "test")).rejects.toThrow(RangeError);
    expect(api.requests.length).toBe(before);
  });
});

describe("FakeKubernetesApi", () => {
  const call = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(api.url + path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });

  it("answers 415 with a Status to a PATCH that is not a merge patch", async () => {
    const response = await call(SCALE_PATH, { method: "PATCH", headers: { "content-type": "application/json" }, body: '{"spec":{"replicas":1}}' });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ kind: "Status", status: "Failure", reason: "UnsupportedMediaType", code: 415 });
    expect(api.deploymentReplicas("gpu-origin")).not.toBe(1);
  });

  it("answers 404 with a Status for an unknown path", async () => {
    const response = await call("/apis/apps/v1/namespaces/inference/statefulsets/x/scale");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "the server could not find the requested resource", reason: "NotFound", code: 404 });
  });

  it("answers 401 with a Status without a bearer token", async () => {
    const response = await fetch(api.url + SCALE_PATH);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
  });

  it("answers 422 Invalid to a patch that breaks the Scale schema or its validation", async () => {
    const patch = (body: object) => call(SCALE_PATH, { method: "PATCH", headers: { "content-type": "application/merge-patch+json" }, body: JSON.stringify(body) });
    const wrongType = await patch({ spec: { replicas: "three" } });
    expect(wrongType.status).toBe(422);
    expect(((await wrongType.json()) as { message: string }).message).toMatch(/\/spec\/replicas: must be integer/);
    const tooLarge = await patch({ spec: { replicas: 2 ** 31 } });
    expect(tooLarge.status).toBe(422);
    const negative = await patch({ spec: { replicas: -1 } });
    expect(negative.status).toBe(422);
    expect(((await negative.json()) as { message: string }).message).toBe('Scale.autoscaling "gpu-origin" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0');
  });

  it("refuses to hold an EndpointSlice that breaks the schema", () => {
    expect(() => api.addEndpointSlice({ metadata: { name: "bad", namespace: "inference" }, endpoints: [] })).toThrow(/must have required property 'addressType'/);
  });
});

describe("discoverEndpoints", () => {
  beforeAll(() => {
    const labels = (service: string) => ({ "kubernetes.io/service-name": service });
    api.addEndpointSlice({
      metadata: { name: "gpu-origin-a", namespace: "inference", labels: labels("gpu-origin") },
      addressType: "IPv4",
      ports: [{ name: "metrics", port: 9090, protocol: "TCP" }, { name: "http", port: 8801, protocol: "TCP" }],
      endpoints: [
        { addresses: ["10.0.0.1"], conditions: { ready: true, serving: true, terminating: false } },
        { addresses: ["10.0.0.2"], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ["10.0.0.3"] },
      ],
    });
    api.addEndpointSlice({
      metadata: { name: "gpu-origin-b", namespace: "inference", labels: labels("gpu-origin") },
      addressType: "IPv6",
      ports: [{ name: "http", port: 8801 }],
      endpoints: [{ addresses: ["fd00::4"], conditions: { ready: true } }],
    });
    api.addEndpointSlice({
      metadata: { name: "other", namespace: "inference", labels: labels("other") },
      addressType: "IPv4",
      ports: [{ name: "http", port: 80 }],
      endpoints: [{ addresses: ["10.9.9.9"], conditions: { ready: true } }],
    });
  });

  const access = () => ({ apiUrl: api.url, namespace: "inference", token: TOKEN });

  it("returns the ready endpoints of the Service on the named port, skipping not-ready ones and other Services", async () => {
    expect(await discoverEndpoints(access(), "gpu-origin", "http")).toEqual(["http://10.0.0.1:8801", "http://10.0.0.3:8801", "http://[fd00::4]:8801"]);
    expect(api.requests.at(-1)!.path).toBe("/apis/discovery.k8s.io/v1/namespaces/inference/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dgpu-origin");
  });

  it("takes each slice's first port when no port is named", async () => {
    expect(await discoverEndpoints(access(), "gpu-origin")).toEqual(["http://10.0.0.1:9090", "http://10.0.0.3:9090", "http://[fd00::4]:8801"]);
  });

  it("returns nothing for a Service without slices", async () => {
    expect(await discoverEndpoints(access(), "nobody", "http")).toEqual([]);
  });
});
