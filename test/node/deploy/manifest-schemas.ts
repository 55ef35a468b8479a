/**
 * Schema checks of Kubernetes objects, without a cluster:
 *
 * - Built-in kinds with `kubernetes-models` (npm), which validates each object with ajv against the
 *   Kubernetes OpenAPI definitions (types, formats such as quantities, required fields, enums).
 * - KServe's custom resources against the openAPIV3Schema of their CustomResourceDefinitions, vendored
 *   unchanged from kserve/kserve into test/fixtures/kserve/ (the header of each file names the commit),
 *   with ajv. As `kubectl apply` does by default (server-side field validation "Strict"), a field that
 *   the schema does not declare is an error (the API server would otherwise drop it silently), except
 *   under `x-kubernetes-preserve-unknown-fields`. The `x-kubernetes-*` keywords are annotations here:
 *   list-map key uniqueness and CEL rules (`x-kubernetes-validations`) are not evaluated. A CRD's
 *   schema leaves `metadata` open (the API server checks it as ObjectMeta), so metadata is checked
 *   with the ObjectMeta definition of `@kubernetes-models/apimachinery` (kubernetes-models' own).
 *
 * The InferenceService CRD is ~2 MB of schema; ajv compiles it in seconds. Only the parts an object
 * uses can affect its result (a keyword applies to locations that exist in the object), so each
 * object is validated against the schema cut down to the properties it has at each level, which
 * compiles in milliseconds and gives the same verdict.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv, { type ErrorObject } from "ajv";
import { validate as validateObjectMeta } from "@kubernetes-models/apimachinery/_schemas/IoK8sApimachineryPkgApisMetaV1ObjectMeta";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { parse } from "yaml";
import { ROOT } from "./deploy-files";

/** A model class of kubernetes-models: constructed from an object, `validate()` throws on a schema error. */
type BuiltinModel = new (data: never) => { validate(): void };

/** The built-in kinds the manifests use, by `apiVersion/kind`. */
const BUILTIN: Record<string, BuiltinModel> = {
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
};

/** KServe's kinds by `apiVersion/kind`: the vendored CRD file and the version served. */
const CUSTOM: Record<string, { file: string; version: string }> = {
  "serving.kserve.io/v1alpha1/ServingRuntime": { file: "serving.kserve.io_servingruntimes.yaml", version: "v1alpha1" },
  "serving.kserve.io/v1beta1/InferenceService": { file: "serving.kserve.io_inferenceservices.yaml", version: "v1beta1" },
};

type Schema = Record<string, unknown>;
type Json = unknown;

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
ajv.addVocabulary(["x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations", "x-kubernetes-embedded-resource"]);
ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);

const crdSchemas = new Map<string, Schema>();

/** The openAPIV3Schema of a vendored CRD's `version` (parsed once). */
function crdSchema(file: string, version: string): Schema {
  const key = `${file}#${version}`;
  let schema = crdSchemas.get(key);
  if (!schema) {
    const crd = parse(readFileSync(join(ROOT, "test", "fixtures", "kserve", file), "utf8")) as { spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } };
    const served = crd.spec.versions.find((v) => v.name === version);
    if (!served) throw new Error(`${file} has no version ${version}`);
    schema = served.schema.openAPIV3Schema;
    crdSchemas.set(key, schema);
  }
  return schema;
}

const isObject = (value: Json): value is Record<string, Json> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * `schema` cut down to what `values` (the instance values at this schema location) can reach, with
 * undeclared fields refused: `properties` keeps the names some value has (and the required ones), and gains
 * `additionalProperties: false` unless the schema sets additionalProperties or preserves unknown
 * fields; `items`, `additionalProperties` schemas and the combinators are cut with the values they
 * apply to. Other keywords (type, format, required, enum, pattern, bounds) are kept as they are.
 */
function cut(schema: Json, values: Json[]): Json {
  if (!isObject(schema)) return schema;
  const result: Schema = { ...schema };
  const objects = values.filter(isObject);
  if (isObject(schema.properties)) {
    const declared = schema.properties;
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    result.properties = Object.fromEntries(
      Object.entries(declared)
        .map(([name, sub]) => [name, sub, objects.filter((o) => name in o).map((o) => o[name])] as const)
        // A required field that is missing keeps a name (with nothing to check) for `required` to report.
        .filter(([name, , present]) => present.length > 0 || required.has(name))
        .map(([name, sub, present]) => [name, present.length > 0 ? cut(sub, present) : {}]),
    );
    if (schema.additionalProperties === undefined && schema["x-kubernetes-preserve-unknown-fields"] !== true) result.additionalProperties = false;
  }
  if (isObject(schema.additionalProperties)) {
    const declared = isObject(schema.properties) ? schema.properties : {};
    result.additionalProperties = cut(schema.additionalProperties, objects.flatMap((o) => Object.entries(o).filter(([name]) => !(name in declared)).map(([, v]) => v)));
  }
  if (isObject(schema.items)) result.items = cut(schema.items, values.filter(Array.isArray).flat());
  for (const combinator of ["allOf", "anyOf", "oneOf"] as const) {
    if (Array.isArray(schema[combinator])) result[combinator] = (schema[combinator] as Json[]).map((branch) => cut(branch, values));
  }
  if (isObject(schema.not)) result.not = cut(schema.not, values);
  return result;
}

/** ajv errors as "path: message"; kubernetes-models' precompiled validators leave `message` out, so those name the keyword and its parameters. */
const describe = (errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map((e) => {
    const message = e.message ?? `fails ${e.keyword} ${JSON.stringify(e.params)}`;
    return `${e.instancePath || "(root)"}: ${message}${e.keyword === "additionalProperties" && e.message ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : ""}`;
  });

/**
 * Schema errors of one Kubernetes object ("/spec/replicas: must be integer", ...); empty when it
 * conforms. An apiVersion/kind without a schema here is an error too, so nothing goes unchecked.
 */
export function schemaErrors(object: { apiVersion?: unknown; kind?: unknown }): string[] {
  const type = `${String(object.apiVersion)}/${String(object.kind)}`;
  const Model = BUILTIN[type];
  if (Model) {
    try {
      new Model(object as never).validate();
      return [];
    } catch (error) {
      const errors = (error as { errors?: ErrorObject[] }).errors;
      return errors ? describe(errors) : [(error as Error).message];
    }
  }
  const custom = CUSTOM[type];
  if (!custom) return [`no schema for ${type}: add its kind to test/node/deploy/manifest-schemas.ts`];
  const validate = ajv.compile(cut(crdSchema(custom.file, custom.version), [object]) as Schema);
  const errors = validate(object) ? [] : describe(validate.errors);
  const metadata = (object as { metadata?: unknown }).metadata;
  if (!validateObjectMeta(metadata)) errors.push(...describe((validateObjectMeta as unknown as { errors: ErrorObject[] }).errors).map((e) => `/metadata${e.replace("(root)", "")}`));
  return errors;
}
