/**
 * The Kubernetes and KServe manifests (deploy/k8s/, deploy/kserve/), without a cluster:
 *
 * - every object conforms to its schema (kubernetes-models for built-in kinds, the vendored KServe
 *   CRDs for ServingRuntime and InferenceService; manifest-schemas.ts), and broken copies do not;
 * - each gpu-origin container agrees with gpu-origin and its image: the process Kubernetes would
 *   start (the image's ENTRYPOINT from deploy/origin/Dockerfile.*, the container's args) parses with
 *   gpu-origin's own configuration parser, listens on the container port, the probes hit open health
 *   routes of the real app, the grace period outlasts preStop + drain, ORIGIN_SECRET comes from a
 *   Secret, it runs as the image's non-root user, and the CUDA variant asks for a GPU;
 * - names and labels are those the pool scaler and endpoint discovery are configured with in
 *   docs/origin.md, and the pool agent's Role allows exactly the API calls the scaler makes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ModelHost } from "../../../gpu-origin/model-host";
import { createOriginApp } from "../../../gpu-origin/origin-app";
import { parseOriginConfig, type OriginConfig } from "../../../gpu-origin/origin-config";
import { targetPath } from "../../../src/scaling/kubernetes-scaler";
import { parsePoolScalerConfig, type KubernetesScalerConfig } from "../../../src/scaling/pool-scaler";
import { asWritten, containerProcess, finalInstruction, imageCommand, originArgs, readDockerfile, readManifests, ROOT, yamlFiles, type ManifestObject } from "./deploy-files";
import { schemaErrors } from "./manifest-schemas";

/** The fields of a container the checks read (the schema check has vouched for their types). */
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: SecurityContext;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[] };
}

/** A gpu-origin container as it would run: the merged container and its pod's settings. */
interface OriginWorkload {
  where: string;
  container: Container;
  terminationGracePeriodSeconds: number | undefined;
  podSecurityContext: SecurityContext | undefined;
}

/** Worst-case seconds gpu-origin spends after SIGTERM besides the drain: its leaving heartbeat (gpu-origin/registration.ts: an in-flight heartbeat, then the leaving one, 2 s each) and closing the server (gpu-origin/main.ts, 1 s). */
const SHUTDOWN_OVERHEAD_S = 4 + 1;

/** A stand-in ORIGIN_SECRET for parsing flags (the real one is in a Secret). */
const PARSE_ENV = { ORIGIN_SECRET: "x".repeat(32) };

const FILES = yamlFiles("deploy/k8s", "deploy/kserve");
const objects = readManifests(FILES);
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const spec = <T>(o: ManifestObject) => o.spec as T;

/** Every gpu-origin container: the Deployments' and the KServe runtime's as each InferenceService merges it. */
function originWorkloads(): OriginWorkload[] {
  const workloads: OriginWorkload[] = [];
  for (const deployment of ofKind("Deployment")) {
    const pod = spec<{ template: { spec: { containers: Container[]; terminationGracePeriodSeconds?: number; securityContext?: SecurityContext } } }>(deployment).template.spec;
    for (const container of pod.containers) {
      workloads.push({ where: `${deployment.file} ${container.name}`, container, terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds, podSecurityContext: pod.securityContext });
    }
  }
  for (const service of ofKind("InferenceService")) {
    const predictor = spec<{ predictor: { model: { runtime: string; resources?: Container["resources"]; args?: string[] }; terminationGracePeriodSeconds?: number; securityContext?: SecurityContext } }>(service).predictor;
    const runtime = ofKind("ServingRuntime").find((r) => r.metadata.name === predictor.model.runtime);
    if (!runtime) throw new Error(`${service.file}: no ServingRuntime ${predictor.model.runtime}`);
    const container = spec<{ containers: Container[] }>(runtime).containers.find((c) => c.name === "kserve-container")!;
    // KServe merges the InferenceService's model container into the runtime's and appends its args.
    const merged: Container = { ...container, ...(predictor.model.resources && { resources: predictor.model.resources }), args: [...(container.args ?? []), ...(predictor.model.args ?? [])] };
    workloads.push({ where: `${service.file} on ${runtime.file}`, container: merged, terminationGracePeriodSeconds: predictor.terminationGracePeriodSeconds, podSecurityContext: predictor.securityContext });
  }
  return workloads;
}

/** The image variant of a container, from its tag (`...-cpu`, `...-cuda`). */
function variantOf(image: string): "cpu" | "cuda" {
  const match = /-(cpu|cuda)$/.exec(image);
  if (!match) throw new Error(`image ${image}: tag it -cpu or -cuda (the Dockerfile it is built from)`);
  return match[1] as "cpu" | "cuda";
}

/** The gpu-origin configuration a container runs with: the image's ENTRYPOINT and the container's args, parsed by gpu-origin itself. */
function configOf(container: Container): OriginConfig {
  const process = containerProcess(container, imageCommand(readDockerfile(variantOf(container.image))));
  return parseOriginConfig(originArgs(process), PARSE_ENV);
}

describe("manifest schemas", () => {
  it("covers the Namespace, Service, both Deployments, the pool agent's RBAC and the KServe runtime and service", () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      "Deployment/gpu-origin",
      "Deployment/gpu-origin",
      "InferenceService/gpu-origin",
      "Namespace/inference",
      "Role/edge-pool-agent",
      "RoleBinding/edge-pool-agent",
      "Service/gpu-origin",
      "ServiceAccount/edge-pool-agent",
      "ServingRuntime/gpu-origin",
    ]);
  });

  it.each(objects.map((o) => [`${o.file}: ${o.kind} ${o.metadata.name}`, o] as const))("%s conforms to its schema", (_, object) => {
    expect(schemaErrors(asWritten(object))).toEqual([]);
  });

  it("rejects broken copies: wrong types, missing required fields, undeclared fields, bad metadata, unknown kinds", () => {
    const copy = (kind: string) => structuredClone(ofKind(kind)[0]!) as ManifestObject & { spec: Record<string, any> };
    const deployment = copy("Deployment");
    deployment.spec.replicas = "2";
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "http";
    delete deployment.spec.selector;
    expect(schemaErrors(asWritten(deployment)).sort()).toEqual([
      "/spec/replicas: must be integer",
      "/spec/template/spec/containers/0/ports/0/containerPort: must be integer",
      "/spec: must have required property selector",
    ]);

    const service = copy("InferenceService");
    service.spec.predictor.minReplicas = "1";
    service.spec.predictor.model.protocolVerison = "v2";
    service.metadata.labels = { tier: 1 as unknown as string };
    expect(schemaErrors(asWritten(service))).toEqual(
      expect.arrayContaining([
        "/spec/predictor/minReplicas: must be integer",
        "/spec/predictor/model: must NOT have additional properties 'protocolVerison'",
        '/metadata/labels/tier: fails type {"type":"string"}',
      ]),
    );

    const runtime = copy("ServingRuntime");
    delete runtime.spec.containers;
    runtime.spec.supportedModelFormats[0].priority = 0;
    expect(schemaErrors(asWritten(runtime))).toEqual(expect.arrayContaining(["/spec: must have required property 'containers'", "/spec/supportedModelFormats/0/priority: must be >= 1"]));

    expect(schemaErrors({ apiVersion: "serving.kserve.io/v1beta1", kind: "InferenceGraph" })).toEqual(["no schema for serving.kserve.io/v1beta1/InferenceGraph: add its kind to test/node/deploy/manifest-schemas.ts"]);
  });
});

describe("gpu-origin containers", () => {
  const workloads = originWorkloads();
  const cases = workloads.map((w) => [w.where, w] as const);

  it("finds the CPU and CUDA Deployments and the KServe runtime", () => {
    expect(workloads.map((w) => variantOf(w.container.image)).sort()).toEqual(["cpu", "cuda", "cuda"]);
  });

  it.each(cases)("%s: its process parses with gpu-origin's flags and listens on the container port", (_, { container }) => {
    const config = configOf(container);
    expect(config.host).toBe("0.0.0.0");
    expect(container.ports).toEqual([{ name: "http", containerPort: config.port, protocol: "TCP" }]);
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      expect([config.port, "http"]).toContain(probe?.httpGet?.port);
    }
  });

  it.each(cases)("%s: startup and readiness probe /v2/health/ready, liveness /v2/health/live", (_, { container }) => {
    expect(container.startupProbe?.httpGet?.path).toBe("/v2/health/ready");
    expect(container.readinessProbe?.httpGet?.path).toBe("/v2/health/ready");
    expect(container.livenessProbe?.httpGet?.path).toBe("/v2/health/live");
  });

  it("probes open routes of gpu-origin's app (unsigned GET answered 200 or 503 with its state, not 401 or 404)", async () => {
    const host = new ModelHost({ modelsDir: join(ROOT, "models"), maxBatch: 32, windowMs: 0, maxQueueRows: 256 });
    const app = createOriginApp({ host, secret: PARSE_ENV.ORIGIN_SECRET, provider: "cpu", maxBatch: 32, bodyLimits: { maxBytes: 1 << 20, timeoutMs: 1000 }, isDraining: () => false });
    const paths = new Set(workloads.flatMap(({ container: c }) => [c.startupProbe, c.readinessProbe, c.livenessProbe].map((p) => p!.httpGet!.path)));
    expect([...paths].sort()).toEqual(["/v2/health/live", "/v2/health/ready"]);
    // Models are still "loading" here (no session was created), so ready answers 503.
    expect(await (await app.request("/v2/health/live")).json()).toEqual({ live: true });
    const ready = await app.request("/v2/health/ready");
    expect([ready.status, await ready.json()]).toEqual([503, { ready: false }]);
    // The check can fail: a path that is not an open route is refused unsigned.
    expect((await app.request("/v2/health/readyz")).status).toBe(401);
  });

  it.each(cases)("%s: the grace period outlasts preStop, gpu-origin's drain timeout and its shutdown", (_, { container, terminationGracePeriodSeconds }) => {
    const config = configOf(container);
    const preStop = container.lifecycle?.preStop;
    const preStopS = preStop?.sleep?.seconds ?? (preStop?.exec?.command[0] === "sleep" ? Number(preStop.exec.command[1]) : NaN);
    expect(preStopS).toBeGreaterThan(0);
    expect(terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopS + SHUTDOWN_OVERHEAD_S + config.drainTimeoutMs / 1000);
  });

  it.each(cases)("%s: ORIGIN_SECRET comes from a Secret, never a literal", (_, { container }) => {
    const secret = container.env?.filter((e) => e.name === "ORIGIN_SECRET") ?? [];
    expect(secret).toHaveLength(1);
    expect(secret[0]!.value).toBeUndefined();
    expect(secret[0]!.valueFrom?.secretKeyRef).toEqual({ name: "gpu-origin", key: "ORIGIN_SECRET" });
  });

  it.each(cases)("%s: runs as the image's non-root user, without privilege escalation or capabilities", (_, { container, podSecurityContext }) => {
    const user = finalInstruction(readDockerfile(variantOf(container.image)), "USER").args;
    const uid = Number(user.split(":")[0]);
    expect(uid).toBeGreaterThan(0);
    const runAsNonRoot = container.securityContext?.runAsNonRoot ?? podSecurityContext?.runAsNonRoot;
    const runAsUser = container.securityContext?.runAsUser ?? podSecurityContext?.runAsUser;
    expect([runAsNonRoot, runAsUser]).toEqual([true, uid]);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  });

  it.each(cases)("%s: the CUDA image runs --provider cuda on one GPU, the CPU image on none; --threads matches the CPU request", (_, { container }) => {
    const config = configOf(container);
    const gpus = container.resources?.limits?.["nvidia.com/gpu"];
    if (variantOf(container.image) === "cuda") expect([config.provider, gpus]).toEqual(["cuda", 1]);
    else expect([config.provider, gpus]).toEqual(["cpu", undefined]);
    expect(config.threads).toBe(Number(container.resources?.requests?.cpu));
    const cpuLimit = container.resources?.limits?.cpu;
    if (cpuLimit !== undefined) expect(Number(cpuLimit)).toBe(config.threads);
  });
});

describe("names the pool scaler and endpoint discovery use", () => {
  const namespace = ofKind("Namespace")[0]!.metadata.name;

  /** The Kubernetes scaler configurations docs/origin.md gives (its ```json blocks of kind "kubernetes"). */
  const documented = [...readFileSync(join(ROOT, "docs", "origin.md"), "utf8").matchAll(/```json\n([\s\S]*?)```/g)]
    .map((m) => JSON.parse(m[1]!) as { kind?: string })
    .filter((c) => c.kind === "kubernetes")
    .map((c) => parsePoolScalerConfig(c) as KubernetesScalerConfig);

  it("puts every namespaced object in the Namespace", () => {
    for (const object of objects.filter((o) => o.kind !== "Namespace")) expect([object.file, object.metadata.namespace]).toEqual([object.file, namespace]);
  });

  it("has the Deployment and InferenceService that docs/origin.md's scaler configurations target, in their namespace", () => {
    expect(documented.map((c) => c.target.kind).sort()).toEqual(["Deployment", "InferenceService"]);
    for (const config of documented) {
      expect(config.namespace).toBe(namespace);
      expect(ofKind(config.target.kind).map((o) => o.metadata.name)).toContain(config.target.name);
    }
  });

  it("selects the Deployments' pods with the Service, whose port `http` (the one endpoint discovery reads) is the container's", () => {
    const service = ofKind("Service")[0]!;
    const { selector, ports } = spec<{ selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] }>(service);
    expect(ports.map((p) => [p.name, p.targetPort])).toEqual([["http", "http"]]);
    for (const deployment of ofKind("Deployment")) {
      const { selector: own, template } = spec<{ selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } }>(deployment);
      expect(template.metadata.labels).toMatchObject(selector);
      expect(template.metadata.labels).toMatchObject(own.matchLabels);
    }
    expect(service.metadata.name).toBe(ofKind("Deployment")[0]!.metadata.name);
  });

  it("lets the pool agent's Role make exactly the scaler's API calls and list EndpointSlices, bound to its ServiceAccount", () => {
    const rules = (ofKind("Role")[0]!.rules as { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[]).map((r) => ({ ...r, resourceNames: r.resourceNames ?? [] }));
    const allows = (group: string, resource: string, name: string | undefined, verb: string) =>
      rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb) && (r.resourceNames.length === 0 || (name !== undefined && r.resourceNames.includes(name))));
    for (const config of documented) {
      // /apis/{group}/{version}/namespaces/{ns}/{resource}/{name}[/{subresource}]
      const [, , group, , , , resource, name, subresource] = targetPath(config.namespace, config.target).split("/");
      const scoped = subresource ? `${resource}/${subresource}` : resource!;
      for (const verb of ["get", "patch"]) expect(allows(group!, scoped, name, verb), `${verb} ${group}/${scoped}/${name}`).toBe(true);
      expect(allows(group!, scoped, "another", "patch")).toBe(false);
    }
    expect(allows("discovery.k8s.io", "endpointslices", undefined, "list")).toBe(true);
    expect(rules.flatMap((r) => r.verbs).sort()).toEqual(["get", "get", "list", "patch", "patch"]);
    const binding = ofKind("RoleBinding")[0]! as ManifestObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    expect(binding.roleRef).toMatchObject({ kind: "Role", name: ofKind("Role")[0]!.metadata.name });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: ofKind("ServiceAccount")[0]!.metadata.name, namespace }]);
  });

  it("runs the InferenceService on the gpu-origin runtime, in a format and protocol it declares", () => {
    const runtime = spec<{ supportedModelFormats: { name: string; version?: string; autoSelect?: boolean }[]; protocolVersions: string[]; containers: Container[] }>(ofKind("ServingRuntime")[0]!);
    const model = spec<{ predictor: { model: { runtime: string; modelFormat: { name: string; version?: string }; protocolVersion: string } } }>(ofKind("InferenceService")[0]!).predictor.model;
    expect(model.runtime).toBe(ofKind("ServingRuntime")[0]!.metadata.name);
    expect(runtime.supportedModelFormats).toContainEqual(expect.objectContaining(model.modelFormat));
    expect(runtime.protocolVersions).toContain(model.protocolVersion);
    expect(model.protocolVersion).toBe("v2");
    expect(runtime.containers.map((c) => c.name)).toEqual(["kserve-container"]);
  });
});
