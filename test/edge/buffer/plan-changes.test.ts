import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { clsBody } from "../../fixtures/model-inputs";
import { bufferStub, infer, type InferBody } from "../helpers";

// The operator pins plan fields through the API; the Worker and the buffers apply the published plan
// within about a second (src/control/plan-cache.ts). This project runs CONTROL_MODE static, so only
// the pins change the plan.
const MODEL = "ppocr-cls";
const SHARDS = 4;

function pin(update: object, token = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN): Promise<Response> {
  return SELF.fetch(`http://edge.test/v2/models/${MODEL}/plan/pins`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(update) });
}

async function planView(): Promise<{ version: number; plan: { shards: number }; pins: object; decisions: Array<{ reason: string }> }> {
  return (await SELF.fetch(`http://edge.test/v2/models/${MODEL}/plan`)).json();
}

/** Rows run by each of the model's first SHARDS shards. */
async function rowsByShard(): Promise<number[]> {
  return Promise.all(Array.from({ length: SHARDS }, async (_, shard) => (await bufferStub(MODEL, shard).stats()).rows));
}

let nextSeed = 1000;
/** Sends `n` concurrent requests; resolves with (status, echoed id, sent id, shard) per request. */
async function wave(n: number): Promise<Array<{ status: number; id: string | undefined; sent: string; shard: number }>> {
  const seeds = Array.from({ length: n }, () => nextSeed++);
  return Promise.all(
    seeds.map(async (seed) => {
      const response = await infer(MODEL, { id: String(seed), ...clsBody(1, seed) });
      const body = (await response.json()) as InferBody;
      return { status: response.status, id: body.id, sent: String(seed), shard: Number(response.headers.get("x-shard")) };
    }),
  );
}

describe("plan changes under load", () => {
  it("refuses pins without the operator's token, and invalid pins with 400", async () => {
    expect((await pin({ shards: 2 }, "wrong-token-wrong-token")).status).toBe(401);
    const bad = await pin({ shards: 0 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/shards/);
    expect((await pin({ colour: "blue" })).status).toBe(400);
  });

  it("changes the shard count while requests are in flight without losing or duplicating one", async () => {
    expect((await infer(MODEL, clsBody(1, 1))).status).toBe(200); // warm session
    const before = await rowsByShard();
    const versionBefore = (await planView()).version;
    const results: Awaited<ReturnType<typeof wave>> = [];

    expect((await pin({ shards: SHARDS })).status).toBe(200);
    // The Worker learns the plan within about a second: waves until a request reaches another shard.
    for (let i = 0; i < 200 && !results.some((r) => r.shard > 0); i++) results.push(...(await wave(8)));
    expect(results.some((r) => r.shard > 0)).toBe(true);

    // Shrink to one shard while a wave is in flight.
    const inFlight = wave(32);
    expect((await pin({ shards: 1 })).status).toBe(200);
    results.push(...(await inFlight));
    // Until the Worker applies the new plan, requests may still go to the other shards; then only to shard 0.
    let lastWave: Awaited<ReturnType<typeof wave>> = [];
    for (let i = 0; i < 200; i++) {
      lastWave = await wave(8);
      results.push(...lastWave);
      if (lastWave.every((r) => r.shard === 0)) break;
    }
    expect(lastWave.every((r) => r.shard === 0)).toBe(true);

    // Every request answered 200 exactly once, with its own id, and run exactly once.
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.every((r) => r.id === r.sent)).toBe(true);
    expect(new Set(results.map((r) => r.sent)).size).toBe(results.length);
    const after = await rowsByShard();
    expect(after.reduce((s, x) => s + x, 0) - before.reduce((s, x) => s + x, 0)).toBe(results.length);
    expect(new Set(results.map((r) => r.shard)).size).toBeGreaterThan(1);

    const view = await planView();
    expect(view.version).toBe(versionBefore + 2);
    expect(view.plan.shards).toBe(1);
    expect(view.decisions[0]!.reason).toMatch(/pins/);
    expect((await pin({ shards: null })).status).toBe(200);
    expect((await planView()).pins).toEqual({});
  });
});
