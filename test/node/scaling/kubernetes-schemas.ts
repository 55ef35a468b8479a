/**
 * Validators for the Kubernetes API objects the test double serves, compiled with ajv from the
 * JSON Schema copies in test/spec/kubernetes/ (their README says where each definition comes from).
 * OpenAPI's int32/int64 formats are checked as integer ranges, date-time as RFC 3339; the
 * `x-kubernetes-*` extension keywords are annotations.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";

const specDir = join(import.meta.dirname, "..", "..", "spec", "kubernetes");
const FILES = ["meta-v1.json", "autoscaling-v1.json", "discovery-v1.json", "serving.kserve.io-v1beta1.json"];
const BASE = "https://k8s.example/spec/";

const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addVocabulary(["x-kubernetes-group-version-kind", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-list-map-keys", "x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy"]);
ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);
for (const file of FILES) ajv.addSchema(JSON.parse(readFileSync(join(specDir, file), "utf8")));

/** Names of the definitions the double validates against. */
export const KUBERNETES_SCHEMAS = {
  Scale: "autoscaling-v1.json#/$defs/io.k8s.api.autoscaling.v1.Scale",
  Status: "meta-v1.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.Status",
  EndpointSlice: "discovery-v1.json#/$defs/io.k8s.api.discovery.v1.EndpointSlice",
  EndpointSliceList: "discovery-v1.json#/$defs/io.k8s.api.discovery.v1.EndpointSliceList",
  InferenceService: "serving.kserve.io-v1beta1.json#/$defs/serving.kserve.io.v1beta1.InferenceService",
} as const;

/** One of KUBERNETES_SCHEMAS' keys. */
export type KubernetesKind = keyof typeof KUBERNETES_SCHEMAS;

const compiled = new Map<KubernetesKind, ValidateFunction>();

/** Schema errors of `value` as a `kind` ("/spec/replicas: must be integer; ..."), or undefined when it conforms. */
export function schemaErrors(kind: KubernetesKind, value: unknown): string | undefined {
  let validate = compiled.get(kind);
  if (!validate) {
    validate = ajv.getSchema(BASE + KUBERNETES_SCHEMAS[kind]);
    if (!validate) throw new Error(`no schema ${KUBERNETES_SCHEMAS[kind]}`);
    compiled.set(kind, validate);
  }
  if (validate(value)) return undefined;
  return (validate.errors ?? []).map((e) => `${e.instancePath || "(root)"}: ${e.message}`).join("; ");
}
