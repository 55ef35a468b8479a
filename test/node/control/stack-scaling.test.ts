/**
 * The whole local stack as `npm start` runs it (wrangler dev, gpu-origin processes under the local
 * scaler, the pool agent): a plan's pool size reaches real processes, which register with the edge,
 * and requests keep being answered while the pool grows and shrinks.
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, originSecret, ROOT } from "../../../src/cli/processes";
import { startStack, type Stack } from "../../../src/cli/stack";
import { signHop } from "../../../src/origin/hop-signature";

const ADMIN_TOKEN = "stack-test-admin-token-0123";
const MODEL = "silero-vad";


let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    replicas: 1,
    maxReplicas: 2,
    port: await freePort(),
    originPort: (await freePort()) + 100,
    originArgs: ["--models", MODEL],
    // Static plans: only the operator's pins change the pool here.
    vars: { CONTROL_MODE: "static", ADMIN_TOKEN, MODEL_OVERRIDES: JSON.stringify({ [MODEL]: { placement: "origin" } }) },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

async function pool(): Promise<{ desiredReplicas: number; members: Array<{ url: string }> }> {
  const headers = await signHop(originSecret(), { method: "GET", host: new URL(stack.edge.url).host, path: "/v2/pool", body: new Uint8Array(0) }, Date.now());
  return (await fetch(`${stack.edge.url}/v2/pool`, { headers })).json() as never;
}

async function pinPoolSize(poolSize: number): Promise<void> {
  const response = await fetch(`${stack.edge.url}/v2/models/${MODEL}/plan/pins`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ poolSize }) });
  expect(response.status).toBe(200);
}

function vadRequest(seed: number): Promise<Response> {
  const input = Array.from({ length: 512 }, (_, i) => Math.sin((i + seed) / 7) * 0.1);
  return fetch(`${stack.edge.url}/v2/models/${MODEL}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: input }] }),
  });
}

/** Sends requests one after another until `isDone` (bounded); returns their statuses. */
async function trafficUntil(isDone: () => Promise<boolean>, maxRequests = 3000): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < maxRequests; i++) {
    const response = await vadRequest(i);
    await response.arrayBuffer();
    statuses.push(response.status);
    if (i % 10 === 9 && (await isDone())) return statuses;
  }
  throw new Error("condition not reached within the request budget");
}

describe("the local stack", () => {
  it("starts with its replicas registered and serves the origin-placed model through them", async () => {
    expect((await pool()).members.map((m) => m.url)).toEqual(stack.origins().map((o) => o.url));
    const response = await vadRequest(1);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-placement")).toBe("origin");
  });

  it("grows and shrinks the pool to the plan's size with real processes, answering every request meanwhile", async () => {
    await pinPoolSize(2);
    const up = await trafficUntil(async () => (await pool()).members.length === 2 && stack.origins().length === 2);
    expect((await pool()).desiredReplicas).toBe(2);
    await pinPoolSize(1);
    const down = await trafficUntil(async () => (await pool()).members.length === 1 && stack.origins().length === 1);
    expect([...up, ...down].filter((status) => status !== 200)).toEqual([]);
    expect((await pool()).desiredReplicas).toBe(1);
  }, 120_000);

  it("shows the live plan with `npm run plan -- --live`, as the edge serves it", async () => {
    const served = (await (await fetch(`${stack.edge.url}/v2/models/${MODEL}/plan`)).json()) as { version: number; plan: object; decisions: unknown[] };
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", resolve(ROOT, "src/cli/plan.ts"), "--live", stack.edge.url, "--model", MODEL, "--json"], { cwd: ROOT });
    const [view] = JSON.parse(stdout) as Array<{ model: string; version: number; plan: object; decisions: unknown[] }>;
    expect(view!.model).toBe(MODEL);
    expect(view!.version).toBe(served.version);
    expect(view!.plan).toEqual(served.plan);
    // Two pin changes above, each a decision.
    expect(view!.decisions.length).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
