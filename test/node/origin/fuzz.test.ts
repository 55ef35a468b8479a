/**
 * Fuzzing a real gpu-origin process (all four models, --threads 1) with the same generators and
 * oracle as the edge suite (test/fixtures/oip-arbitraries.ts, oip-mutations.ts, oip-fuzz-check.ts):
 * no 5xx, every refusal a 4xx `{"error"}` allowed for its violations, no internals shown, every
 * accepted request's outputs equal to onnxruntime-node's (run here, in-process); the origin stays
 * ready and correct after each property. Every request is signed with the shared secret over the
 * bytes it sends, as src/origin/hop-signature.ts defines it (compressed bodies as compressed; a
 * request with a method other than POST goes without a body, which the origin does not read then). A fixed seed (FUZZ_SEED explores others, FUZZ_SCALE multiplies the runs,
 * FUZZ_SURVEY=1 lists every failure instead of stopping at the first).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signHop } from "../../../src/origin/hop-signature";
import { fuzzModelOf, validRequest, type FuzzContext } from "../../fixtures/oip-arbitraries";
import { fuzzSuite, healthProblems, type FuzzTarget, type ReferenceOutputs } from "../../fixtures/oip-fuzz-check";
import { validCase } from "../../fixtures/oip-fuzz-requests";
import { invalidCase } from "../../fixtures/oip-invalid-case";
import { junkCase, junkRequest } from "../../fixtures/oip-junk";
import { invalidRequest } from "../../fixtures/oip-mutations";
import { fuzzOptions, fuzzReferenceOutputs } from "../../setup/fuzz-references";
import { manifestOf } from "./fixtures";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "./origin-process";

const MODELS = ["ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad"];
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const ctx: FuzzContext = { models: new Map(MODELS.map((name) => [name, fuzzModelOf(manifestOf(name))])), maxBodyBytes: MAX_BODY_BYTES };

let origin: OriginProcess | undefined;
let references = new Map<string, ReferenceOutputs>();

const target: FuzzTarget = {
  async send(request) {
    const url = new URL(request.path, origin!.url);
    const body = request.method === "POST" ? (request.body ?? new Uint8Array(0)) : undefined;
    const headers = await signHop(TEST_SECRET, { method: request.method, host: url.host, path: url.pathname + url.search, body: body ?? new Uint8Array(0), inferenceHeaderLength: request.headers["inference-header-content-length"] }, Date.now());
    return fetch(url, { method: request.method, headers: { ...request.headers, ...headers }, ...(body && { body }) });
  },
  reference: (key) => {
    const outputs = references.get(key);
    if (!outputs) throw new Error(`no onnxruntime-node reference for ${key}`);
    return outputs;
  },
};

const { seed, scale, isSurvey } = fuzzOptions();
const { run, fuzz } = fuzzSuite("origin", { seed, scale, isSurvey });

describe("gpu-origin under fuzzing", () => {
  beforeAll(async () => {
    const started = startOrigin(["--models", MODELS.join(","), "--max-body-bytes", String(MAX_BODY_BYTES)]);
    [origin, references] = await Promise.all([started, fuzzReferenceOutputs()]);
    await waitReady(origin);
  }, 120_000);

  afterAll(() => stopOrigin(origin));

  afterEach(async () => {
    expect(await healthProblems(target, ctx)).toEqual([]);
    expect(origin!.output()).not.toMatch(/unhandled error/);
  });

  it("refuses every invalid request with a 4xx {error} its violations allow", async () => {
    expect(await fuzz("invalid", target, invalidRequest(ctx), (spec) => invalidCase(spec, ctx), run(1_000, 8))).toBeGreaterThanOrEqual(3_600 * scale);
  }, 600_000);

  it("refuses junk (random bytes and JSON, deep nesting, many keys) and answers every route and method", async () => {
    expect(await fuzz("junk", target, junkRequest(ctx), (spec) => junkCase(spec, ctx), run(300, 8))).toBeGreaterThanOrEqual(1_000 * scale);
  }, 600_000);

  it("answers every valid request with onnxruntime-node's outputs, JSON or binary", async () => {
    expect(await fuzz("valid", target, validRequest(ctx), (spec) => validCase(spec, ctx), run(80, 4))).toBeGreaterThanOrEqual(130 * scale);
  }, 600_000);
});
