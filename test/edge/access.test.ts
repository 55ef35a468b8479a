/**
 * API keys at the edge in real workerd (src/edge/access.ts), with API_KEYS set for these requests
 * only: 401 without or with an unknown key, 403 for a model the key may not use, the key accepted
 * as a bearer token or X-API-Key, health and docs open, and the per-key rate limit of the real
 * rate-limiting binding (wrangler.toml's KEY_RATE_LIMITER, simulated by Miniflare) answered 429
 * with Retry-After.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { keyHash, RATE_LIMIT_PERIOD_S } from "../../src/edge/access";
import worker from "../../src/index";
import { MODEL_INPUTS } from "../fixtures/model-inputs";

const VAD_KEY = "eik_test-vad-only";
const ALL_KEY = "eik_test-all-models";
const LIMITED_KEY = "eik_test-rate-limited";

/** The env with API_KEYS of these keys (by default all three). */
const withKeys = async (names = ["vad-only", "all", "limited"]) => ({
  ...env,
  API_KEYS: JSON.stringify(
    [
      { name: "vad-only", sha256: await keyHash(VAD_KEY), models: ["silero-vad"] },
      { name: "all", sha256: await keyHash(ALL_KEY), models: ["*"] },
      { name: "limited", sha256: await keyHash(LIMITED_KEY), models: ["*"] },
    ].filter((entry) => names.includes(entry.name)),
  ),
});

async function send(path: string, headers: Record<string, string> = {}, body?: unknown, keys?: string[]): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`http://edge.test${path}`, body === undefined ? { headers } : { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const response = await worker.fetch(request, await withKeys(keys), ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("API keys", () => {
  it("refuses model routes without a key (401) or with an unknown one (401), and a model the key may not use (403)", async () => {
    const none = await send("/v2/models/silero-vad");
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: "an API key is required (Authorization: Bearer <key>, or X-API-Key)" });
    expect((await send("/v2/models/silero-vad", { authorization: "Bearer eik_not-a-key" })).status).toBe(401);
    const other = await send("/v2/models/ppocr-cls/infer", { authorization: `Bearer ${VAD_KEY}` }, { inputs: MODEL_INPUTS["ppocr-cls"] });
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: "API key 'vad-only' has no access to model 'ppocr-cls'" });
  });

  it("serves a key's models, as a bearer token or X-API-Key, and leaves health and docs open", async () => {
    const served = await send("/v2/models/silero-vad/infer", { authorization: `Bearer ${VAD_KEY}` }, { inputs: MODEL_INPUTS["silero-vad"] });
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    expect((await send("/v2/models/ppocr-cls", { "x-api-key": ALL_KEY })).status).toBe(200);
    expect((await send("/v2/models/silero-vad/stats", { "x-api-key": VAD_KEY })).status).toBe(200);
    for (const open of ["/v2/health/live", "/v2", "/openapi.json"]) expect([open, (await send(open)).status]).toEqual([open, 200]);
  });

  it("remembers a key that matched for its next requests, still checks its models, and forgets it when API_KEYS no longer holds it", async () => {
    for (let i = 0; i < 3; i++) {
      expect((await send("/v2/models/silero-vad", { authorization: `Bearer ${VAD_KEY}` })).status).toBe(200);
      expect((await send("/v2/models/ppocr-cls", { authorization: `Bearer ${VAD_KEY}` })).status).toBe(403);
      expect((await send("/v2/models/ppocr-cls", { authorization: "Bearer eik_not-a-key" })).status).toBe(401);
    }
    expect((await send("/v2/models/ppocr-cls", { authorization: `Bearer ${ALL_KEY}` })).status).toBe(200);
    // The key revoked (API_KEYS without it): refused at once, though this isolate had admitted it.
    const revoked = await send("/v2/models/ppocr-cls", { authorization: `Bearer ${ALL_KEY}` }, undefined, ["vad-only", "limited"]);
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toEqual({ error: "unknown API key" });
    expect((await send("/v2/models/silero-vad", { authorization: `Bearer ${VAD_KEY}` }, undefined, ["vad-only", "limited"])).status).toBe(200);
  });

  it("limits each key's rate with the rate-limiting binding: 429 with Retry-After, other keys unaffected", async () => {
    let admitted = 0;
    let refused: Response | undefined;
    for (let i = 0; i < 1_300 && !refused; i++) {
      const response = await send("/v2/models/silero-vad", { "x-api-key": LIMITED_KEY });
      if (response.status === 429) refused = response;
      else {
        expect(response.status).toBe(200);
        admitted++;
        await response.arrayBuffer();
      }
    }
    expect(refused).toBeDefined();
    expect(admitted).toBeGreaterThanOrEqual(600); // wrangler.toml: 600 per 60 s (a window may roll over once)
    expect(refused!.headers.get("retry-after")).toBe(String(RATE_LIMIT_PERIOD_S));
    expect(await refused!.json()).toEqual({ error: "rate limit of API key 'limited' exceeded" });
    // Once over its limit, the key's requests wait for the binding's answer: refused, not admitted in the background.
    expect((await send("/v2/models/silero-vad", { "x-api-key": LIMITED_KEY })).status).toBe(429);
    expect((await send("/v2/models/silero-vad", { "x-api-key": ALL_KEY })).status).toBe(200);
  }, 120_000);
});
