/**
 * The Worker's configuration as the edge validates it at start-up (src/config.ts): every field's
 * error names it, origin-only models cannot be moved to the edge, and the deploy-time settings
 * (location hint, Access service token) are read as documented in docs/deploy.md.
 */
import { describe, expect, it } from "vitest";
import { runtimeConfig } from "../../../src/config";
import { CATALOG } from "../../../src/models/catalog";

const BASE = { MODEL_OVERRIDES: "{}", MAX_BODY_BYTES: "33554432", ORIGIN_URLS: "" };
const config = (vars: Record<string, string>) => runtimeConfig({ ...BASE, ...vars });

describe("runtime configuration", () => {
  it("serves every catalog model with the defaults", () => {
    const c = config({});
    expect([...c.models.keys()]).toEqual([...CATALOG.keys()]);
    expect(c.originHeaders).toEqual({});
    expect(c.bufferLocationHint).toBeUndefined();
  });

  it("names the model and field of a bad override", () => {
    expect(() => config({ MODEL_OVERRIDES: '{"ppocr-cls":{"batching":{"windowMs":-1}}}' })).toThrow(/^MODEL_OVERRIDES\.ppocr-cls: batching\.windowMs: /);
    expect(() => config({ MODEL_OVERRIDES: '{"nope":{}}' })).toThrow("MODEL_OVERRIDES: nope: no such model");
    expect(() => config({ MODEL_OVERRIDES: "{" })).toThrow("MODEL_OVERRIDES: not valid JSON");
  });

  it("keeps origin-only models on the origin: their weights are not deployed to the edge", () => {
    expect(CATALOG.get("ppocr-det")!.originOnly).toBe(true);
    expect(() => config({ MODEL_OVERRIDES: '{"ppocr-det":{"placement":"edge"}}' })).toThrow(/MODEL_OVERRIDES\.ppocr-det: placement: must stay "origin" and pinned/);
    expect(() => config({ MODEL_OVERRIDES: '{"ppocr-det":{"pinned":[]}}' })).toThrow(/must stay "origin" and pinned/);
    // Other fields of an origin-only model may change; an edge model may move anywhere.
    expect(config({ MODEL_OVERRIDES: '{"ppocr-det":{"slo":{"ms":900}},"ppocr-cls":{"placement":"origin"}}' }).models.get("ppocr-det")!.manifest.slo.ms).toBe(900);
  });

  it("reads API keys (hashed) and names the field of a bad entry", () => {
    const sha256 = "a".repeat(64);
    expect(config({ API_KEYS: JSON.stringify([{ name: "team-a", sha256, models: ["ppocr-cls"] }]) }).apiKeys).toEqual([{ name: "team-a", sha256, models: ["ppocr-cls"] }]);
    expect(config({}).apiKeys).toBeUndefined();
    expect(() => config({ API_KEYS: JSON.stringify([{ name: "team-a", sha256: "plain-key", models: ["*"] }]) })).toThrow(/^API_KEYS: 0\.sha256: the key's SHA-256/);
    expect(() => config({ API_KEYS: JSON.stringify([{ name: "team-a", sha256, models: ["nope"] }]) })).toThrow('API_KEYS: 0.models: no such model "nope"');
    expect(() => config({ API_KEYS: JSON.stringify([{ name: "a", sha256, models: ["*"] }, { name: "a", sha256, models: ["*"] }]) })).toThrow("API_KEYS: names must be unique");
  });

  it("logs requests unless LOG_REQUESTS is false, and refuses other values", () => {
    expect(config({}).logRequests).toBe(true);
    expect(config({ LOG_REQUESTS: "false" }).logRequests).toBe(false);
    expect(() => config({ LOG_REQUESTS: "yes" })).toThrow('LOG_REQUESTS: must be "true" or "false"');
  });

  it("reads the buffers' location hint and refuses an unknown one", () => {
    expect(config({ BUFFER_LOCATION_HINT: "weur" }).bufferLocationHint).toBe("weur");
    expect(() => config({ BUFFER_LOCATION_HINT: "mars" })).toThrow(/^BUFFER_LOCATION_HINT: must be one of wnam, enam, /);
  });

  it("sends an Access service token to the origin only when both halves are set", () => {
    expect(config({ ORIGIN_ACCESS_CLIENT_ID: "id.access", ORIGIN_ACCESS_CLIENT_SECRET: "s3cret" }).originHeaders).toEqual({ "CF-Access-Client-Id": "id.access", "CF-Access-Client-Secret": "s3cret" });
    expect(() => config({ ORIGIN_ACCESS_CLIENT_ID: "id.access" })).toThrow(/^ORIGIN_ACCESS_CLIENT_ID: set together with ORIGIN_ACCESS_CLIENT_SECRET/);
  });

  it("requires the hop secret when static origins are configured", () => {
    expect(() => config({ ORIGIN_URLS: "http://127.0.0.1:8801" })).toThrow(/^ORIGIN_SECRET: is required/);
    expect(() => config({ ORIGIN_URLS: "http://127.0.0.1:8801/v2", ORIGIN_SECRET: "0123456789abcdef" })).toThrow(/^ORIGIN_URLS: /);
  });
});
