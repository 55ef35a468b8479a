/**
 * Fuzzing the edge Worker inside real workerd (its fetch handler, real Durable Object buffers and
 * onnxruntime-web): property-based valid, invalid and junk Open Inference Protocol requests, JSON
 * and binary (test/fixtures/oip-arbitraries.ts, oip-mutations.ts, oip-junk.ts), each checked against
 * the validation contract (test/fixtures/oip-fuzz-check.ts): no 5xx, every refusal a 4xx `{"error"}`
 * allowed for its violations, no internals shown, every accepted request's outputs equal to
 * onnxruntime-node's (computed by the global setup); the Worker stays ready and correct after each
 * property. A fixed seed (FUZZ_SEED explores others, FUZZ_SCALE multiplies the runs, FUZZ_SURVEY=1
 * lists every failure instead of stopping at the first); a failure prints fast-check's seed and
 * shrunk counterexample. Valid requests go to the models the edge runs (ppocr-det is origin-only and
 * no origin runs here; its invalid requests are still refused at the edge). The origin pool has one
 * member, a loopback port nothing listens on: ppocr-det is then ready (its readiness asks for a
 * member, test/edge/endpoints.test.ts), and a batch that reached it would fail 503 as with none.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { runtimeConfig } from "../../src/config";
import { registryOf } from "../../src/control/model-controller";
import worker from "../../src/index";
import { fuzzModelOf, validRequest, type FuzzContext } from "../fixtures/oip-arbitraries";
import { fuzzSuite, healthProblems, type FuzzTarget, type ReferenceOutputs } from "../fixtures/oip-fuzz-check";
import { validCase } from "../fixtures/oip-fuzz-requests";
import { invalidCase } from "../fixtures/oip-invalid-case";
import { junkCase, junkRequest } from "../fixtures/oip-junk";
import { invalidRequest } from "../fixtures/oip-mutations";
import "../fixtures/provided-context";

const config = runtimeConfig(env);
const ctx: FuzzContext = { models: new Map([...config.models.values()].map(({ manifest }) => [manifest.name, fuzzModelOf(manifest)])), maxBodyBytes: config.bodyLimits.maxBytes };
const edgeCtx: FuzzContext = { ...ctx, models: new Map([...ctx.models].filter(([name]) => !config.models.get(name)!.originOnly)) };

const encoded = inject("fuzzReferences");
const decoded = new Map<string, ReferenceOutputs>();

/** onnxruntime-node's outputs for a reference case, decoded once. */
function reference(key: string): ReferenceOutputs {
  let outputs = decoded.get(key);
  if (!outputs) {
    const byName = encoded[key];
    if (!byName) throw new Error(`no onnxruntime-node reference for ${key}`);
    outputs = Object.fromEntries(Object.entries(byName).map(([name, { shape, base64 }]) => [name, { shape, data: new Float32Array(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer) }]));
    decoded.set(key, outputs);
  }
  return outputs;
}

/**
 * Calls the Worker's fetch handler in workerd, with the Content-Length a client sends. Not through
 * SELF: vitest-pool-workers 0.23 wraps the entrypoint's prototype in one more Proxy per request
 * (cloudflare/workers-sdk#15092), so thousands of SELF.fetch calls slow down quadratically and end
 * in "Maximum call stack size exceeded".
 */
const target: FuzzTarget = {
  async send(request) {
    const headers = { ...request.headers, ...(request.body && { "content-length": String(request.body.length) }) };
    const executionCtx = createExecutionContext();
    const response = await worker.fetch(new Request(`http://edge.test${request.path}`, { method: request.method, headers, ...(request.body && { body: request.body }) }), env, executionCtx);
    const body = await response.arrayBuffer();
    await waitOnExecutionContext(executionCtx);
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  },
  reference,
};

const { seed, scale, isSurvey } = inject("fuzzOptions");
const { run, fuzz } = fuzzSuite("edge", { seed, scale, isSurvey });

describe("the edge Worker under fuzzing", () => {
  // Each test: the registry keeps heartbeats in memory, and each test starts with fresh objects.
  const member = "http://127.0.0.1:9";
  beforeEach(async () => void (await registryOf(env).heartbeat(member, 3_600_000, false, crypto.randomUUID(), Date.now())));

  afterEach(async () => {
    expect(await healthProblems(target, ctx)).toEqual([]);
  });

  it("refuses every invalid request with a 4xx {error} its violations allow", async () => {
    expect(await fuzz("invalid", target, invalidRequest(ctx), (spec) => invalidCase(spec, ctx), run(1_000, 8))).toBeGreaterThanOrEqual(3_600 * scale);
  }, 600_000);

  it("refuses junk (random bytes and JSON, deep nesting, many keys) and answers every route and method", async () => {
    expect(await fuzz("junk", target, junkRequest(ctx), (spec) => junkCase(spec, ctx), run(400, 8))).toBeGreaterThanOrEqual(1_400 * scale);
  }, 600_000);

  it("answers every valid request with onnxruntime-node's outputs, JSON or binary", async () => {
    expect(await fuzz("valid", target, validRequest(edgeCtx), (spec) => validCase(spec, edgeCtx), run(100, 4))).toBeGreaterThanOrEqual(150 * scale);
  }, 600_000);
});
