/**
 * The edge's OpenAPI document (src/routes/docs.ts) is a valid OpenAPI 3.0 document (checked with an
 * OpenAPI schema validator), every path parameter is declared, and the protocol part is the
 * upstream description (the bundled JSON equals test/spec/open_inference_rest.yaml).
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { openApiDocument } from "../../../src/routes/docs";
import bundled from "../../../src/protocol/open-inference-rest.json";

const ROOT = resolve(import.meta.dirname, "..", "..", "..");
type Doc = { paths: Record<string, Record<string, unknown> & { parameters?: Array<{ name: string; in: string }> }> };

describe("OpenAPI document", () => {
  it("bundles the Open Inference Protocol's own description unchanged", () => {
    expect(bundled).toEqual(parse(readFileSync(resolve(ROOT, "test", "spec", "open_inference_rest.yaml"), "utf8")));
  });

  it("is a valid OpenAPI 3.0 document (and the validator rejects a broken one)", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(openApiDocument()) as never);
    expect(result.errors, String(JSON.stringify(result.errors)).slice(0, 500)).toBeUndefined();
    expect(result.valid).toBe(true);
    const broken = { ...(openApiDocument() as object), paths: { "/x": { get: { responses: "nope" } } } };
    expect((await new Validator().validate(broken as never)).valid).toBe(false);
  });

  it("declares every path parameter, serves each model route with and without a version", () => {
    const { paths } = openApiDocument() as Doc;
    for (const [path, item] of Object.entries(paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (item.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
      expect([path, declared.sort()]).toEqual([path, names.sort()]);
    }
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(["/v2", "/v2/models/{MODEL_NAME}/infer", "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer", "/v2/models/{MODEL_NAME}/plan/pins", "/openapi.json", "/docs"]));
    expect(Object.keys(paths).some((p) => p.includes("$"))).toBe(false);
  });
});
