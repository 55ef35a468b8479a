/**
 * The "direct" placement batches the requests that meet in one Worker isolate, on plain workerd
 * (the deploy bundle, as Cloudflare runs it): ppocr-cls placed direct with a 40 ms window. Each
 * batch runs from one of its own requests and every request is answered in its own context, which
 * needs workerd's cross-request promise resolution (on by the compatibility date; vitest-pool-workers
 * forces it off, so test/edge/direct.test.ts cannot show this). Checked here: concurrent requests
 * are batched, each answered exactly once with its own rows (as when it runs alone), the batch
 * counts agree with the sizes the answers report, a request that cannot meet its deadline alone
 * gets 503 while the others succeed, and workerd logs no cross-request I/O error or hung promise.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPlainWorkerd } from "../../../bench/lib/plain-workerd";
import { freePort, type Started } from "../../../src/cli/processes";
import { binaryBody, clsBody } from "../../fixtures/model-inputs";

const MODEL = "ppocr-cls";
const overrides = { [MODEL]: { placement: "direct", pinned: ["placement", "maxBatch", "windowMs"], batching: { maxBatch: 16, windowMs: 40 } } };

describe("direct placement on plain workerd", () => {
  let edge: Started | undefined;
  let log = "";
  const url = (path: string) => `${edge!.url}${path}`;
  /** One one-row request: in the binary extension, or as JSON when it carries a timeout_ms. */
  const infer = async (seed: number, timeoutMs?: number) => {
    const init = timeoutMs === undefined ? binaryBody("x", [1, 3, 48, 192], seed) : { body: JSON.stringify({ ...clsBody(1, seed), parameters: { timeout_ms: timeoutMs } }), headers: { "content-type": "application/json" } };
    const response = await fetch(url(`/v2/models/${MODEL}/infer`), { method: "POST", ...init });
    return { status: response.status, placement: response.headers.get("x-placement"), batchRows: Number(response.headers.get("x-batch-size")), body: new Uint8Array(await response.arrayBuffer()) };
  };
  const directStats = async () => ((await (await fetch(url(`/v2/models/${MODEL}/stats`))).json()) as { model_stats: Array<{ direct: { rows: number; batches: number } }> }).model_stats[0]!.direct;

  beforeAll(async () => {
    edge = await startPlainWorkerd({ port: await freePort(), stdio: "pipe", vars: { CONTROL_MODE: "static", LOG_REQUESTS: "false", MODEL_OVERRIDES: JSON.stringify(overrides) } });
    edge.process.stdout?.on("data", (chunk) => (log += String(chunk)));
    edge.process.stderr?.on("data", (chunk) => (log += String(chunk)));
    // The first request warms the isolate's session (it takes the buffered path meanwhile).
    for (let i = 0; i < 200 && (await infer(1)).placement !== "direct"; i++);
  }, 120_000);
  afterAll(async () => {
    await edge?.stop(5_000);
  });

  it("batches concurrent requests, each answered exactly once with its own rows", async () => {
    const seeds = Array.from({ length: 16 }, (_, i) => 900 + i);
    const alone = new Map<number, Uint8Array>();
    for (const seed of seeds) alone.set(seed, (await infer(seed)).body);
    const before = await directStats();
    const answers = await Promise.all(seeds.map((seed) => infer(seed)));
    const after = await directStats();
    expect(answers.map((a) => [a.status, a.placement])).toEqual(seeds.map(() => [200, "direct"]));
    answers.forEach((answer, i) => expect(answer.body).toEqual(alone.get(seeds[i]!)));
    // One-row requests: a batch of b rows answers b of them, each told b, so the batches number the sum of 1/b.
    const sizes = answers.map((a) => a.batchRows);
    expect(after.rows - before.rows).toBe(seeds.length);
    expect(after.batches - before.batches).toBeCloseTo(sizes.reduce((sum, b) => sum + 1 / b, 0), 9);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    expect(after.batches - before.batches).toBeLessThan(seeds.length);
  });

  it("answers 503 to a request that cannot meet its deadline, and serves the others", async () => {
    const answers = await Promise.all([...Array.from({ length: 6 }, (_, i) => infer(950 + i)), infer(960, 1)]);
    expect(answers.slice(0, -1).map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(answers.at(-1)!.status).toBe(503);
    expect(JSON.parse(new TextDecoder().decode(answers.at(-1)!.body)).error).toMatch(/deadline|overloaded/);
    // Every request was answered in its own context: nothing cancelled or touched across requests.
    expect(log).not.toMatch(/different request|never complete|canceled/i);
  });
});
