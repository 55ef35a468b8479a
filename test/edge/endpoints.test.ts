import { Validator, type Schema } from "@cfworker/json-schema";
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { registryOf } from "../../src/control/model-controller";
import { CATALOG } from "../../src/models/catalog";
import { describe, expect, inject, it } from "vitest";
import { MODEL_INPUTS } from "../fixtures/model-inputs";
import "../fixtures/provided-context";
import { bufferStub, infer } from "./helpers";

/** Validates a body against one of the OIP spec's component schemas (refs resolved in place). */
function conforms(schemaName: string, body: unknown): boolean {
  const schemas = JSON.parse(JSON.stringify(inject("oipSchemas")).replaceAll("#/components/schemas/", "#/$defs/"));
  const result = new Validator({ ...schemas[schemaName], $defs: schemas } as Schema, "2019-09", false).validate(body);
  if (!result.valid) console.error(schemaName, JSON.stringify(result.errors.slice(0, 3)));
  return result.valid;
}

const get = (path: string) => SELF.fetch(`http://edge.test${path}`);

describe("Open Inference Protocol endpoints", () => {
  it("checks responses against the spec for real (a body missing required fields fails)", () => {
    expect(conforms("inference_response", { outputs: [] })).toBe(false);
    expect(conforms("metadata_server_response", { name: "x" })).toBe(false);
  });

  it("reports liveness and readiness", async () => {
    expect((await get("/v2/health/live")).status).toBe(200);
    expect((await get("/v2/health/ready")).status).toBe(200);
  });

  it("warms every edge-placed model's buffer shards on readiness, without counting the warm-up", async () => {
    expect((await get("/v2/health/ready")).status).toBe(200);
    const edgeModels = [...CATALOG.values()].filter((e) => e.manifest.placement === "edge").map((e) => e.manifest.name);
    expect(edgeModels.length).toBeGreaterThan(0);
    for (const model of edgeModels) {
      // The shard remembers its model (it warms it again when it restarts) and ran nothing through its queue.
      const home = await runInDurableObject(bufferStub(model), (_buffer, state) => state.storage.kv.get("home"));
      expect(home).toEqual({ model, shard: 0 });
      expect(await bufferStub(model).stats()).toMatchObject({ admitted: 0, batches: 0 });
    }
  });

  it("gives every answer a request id and its span in the request's trace", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    const continued = await infer("silero-vad", { inputs: MODEL_INPUTS["silero-vad"] }, { headers: { "content-type": "application/json", traceparent: `00-${traceId}-${parent}-01`, "x-request-id": "client-42" } });
    expect(continued.status).toBe(200);
    expect(continued.headers.get("x-request-id")).toBe("client-42");
    const [, echoed, span] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(continued.headers.get("traceparent") ?? "") ?? [];
    expect(echoed).toBe(traceId);
    expect(span).not.toBe(parent);
    // Refusals and other routes too; an invalid traceparent or request id is replaced, not refused.
    const refused = await SELF.fetch("http://edge.test/v2/models/nope/infer", { method: "POST", body: "{}", headers: { traceparent: "garbage", "x-request-id": "has space" } });
    expect(refused.status).toBe(404);
    expect(refused.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(refused.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(refused.headers.get("traceparent")).not.toContain(traceId);
    const health = await get("/v2/health/live");
    expect(health.headers.get("x-request-id")).toBeTruthy();
  });

  it("describes the server", async () => {
    const response = await get("/v2");
    expect(response.status).toBe(200);
    expect(conforms("metadata_server_response", await response.json())).toBe(true);
  });

  for (const model of Object.keys(MODEL_INPUTS)) {
    it(`describes ${model} with and without its version`, async () => {
      const plain = await get(`/v2/models/${model}`);
      expect(plain.status).toBe(200);
      const body = (await plain.json()) as { name: string; versions: string[]; inputs: unknown[] };
      expect(conforms("metadata_model_response", body)).toBe(true);
      expect(body.name).toBe(model);
      const versioned = await get(`/v2/models/${model}/versions/${body.versions[0]}`);
      expect(await versioned.json()).toEqual(body);
      // An origin-placed model has no replica here (ORIGIN_URLS is empty): not ready.
      const status = CATALOG.get(model)!.manifest.placement === "origin" ? 503 : 200;
      expect((await get(`/v2/models/${model}/ready`)).status).toBe(status);
      expect((await get(`/v2/models/${model}/versions/${body.versions[0]}/ready`)).status).toBe(status);
    });
  }

  it("calls an origin-placed model and the pipeline that uses it ready only while the pool has a member", async () => {
    const ready = async (model: string) => {
      const response = await get(`/v2/models/${model}/ready`);
      return { status: response.status, body: (await response.json()) as { name: string; ready: boolean; error?: string } };
    };
    expect(CATALOG.get("ppocr-det")!.manifest.placement).toBe("origin");
    for (const model of ["ppocr-det", "ppocr"]) {
      const { status, body } = await ready(model);
      expect(status).toBe(503);
      expect(body).toEqual({ name: model, ready: false, error: `${model} is not ready: no origin replica has joined the pool` });
    }
    const registry = registryOf(env);
    const url = "http://127.0.0.1:18999";
    expect(await registry.heartbeat(url, 60_000, false, "ready-test-join", Date.now())).toBe(true);
    try {
      for (const model of ["ppocr-det", "ppocr"]) expect(await ready(model)).toEqual({ status: 200, body: { name: model, ready: true } });
    } finally {
      expect(await registry.heartbeat(url, 60_000, true, "ready-test-leave", Date.now())).toBe(true);
    }
    expect((await ready("ppocr")).status).toBe(503);
  });

  it("answers 404 for an unknown model or version, in the error schema", async () => {
    for (const path of ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/ppocr-cls/versions/9", "/v2/models/ppocr-cls/versions/9/ready"]) {
      const response = await get(path);
      expect(response.status, path).toBe(404);
      expect(conforms("metadata_model_error_response", await response.json())).toBe(true);
    }
  });

  it("infers with and without a version, and the response conforms to the spec", async () => {
    for (const path of ["ppocr-cls", "ppocr-cls/versions/1"]) {
      const response = await infer(path, { id: "a", inputs: MODEL_INPUTS["ppocr-cls"] });
      expect(response.status).toBe(200);
      expect(conforms("inference_response", await response.json())).toBe(true);
    }
  });

  it("says how a request was served", async () => {
    const response = await infer("ppocr-cls", { inputs: MODEL_INPUTS["ppocr-cls"] });
    expect(response.headers.get("server-timing")).toMatch(/^queue;dur=[\d.]+, infer;dur=[\d.]+, total;dur=[\d.]+$/);
    expect(Number(response.headers.get("x-batch-size"))).toBeGreaterThanOrEqual(1);
    expect(response.headers.get("x-served-by")).toBe("edge");
    expect(response.headers.get("x-placement")).toBe("edge");
  });

  it("serves per-shard statistics", async () => {
    await infer("ppocr-cls", { inputs: MODEL_INPUTS["ppocr-cls"] });
    const response = await get("/v2/models/ppocr-cls/stats");
    const body = (await response.json()) as { model_stats: Array<{ shards: Array<{ batches: number }> }> };
    expect(body.model_stats[0]!.shards[0]!.batches).toBeGreaterThan(0);
  });
});
