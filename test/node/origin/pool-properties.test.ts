/**
 * Properties of OriginPoolRunner over random failure scripts (fast-check, fixed seed): whatever the
 * replicas answer, a run settles exactly once, tries each replica at most once, stops at the first
 * failure that is unsafe to retry, and succeeds exactly when some replica it reached answered well.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../../src/models/manifest";
import { unpackBinary } from "../../../src/protocol/oip-binary";
import { OriginPool } from "../../../src/origin/origin-pool";
import { OriginPoolRunner, type AttemptRecord } from "../../../src/origin/origin-pool-runner";

const manifest = parseManifest(
  {
    name: "double", version: "1", source: { package: "-", file: "-", license: "-" }, placement: "origin",
    inputs: [{ name: "x", datatype: "FP32", shape: [-1, 1] }], outputs: [{ name: "y", datatype: "FP32", shape: [-1, 1] }],
    slo: { percentile: 0.99, ms: 1000 }, batching: { maxBatch: 8, windowMs: 1, maxQueueRows: 8, shards: 1, maxRowsPerRequest: 8 },
  },
  "double",
);

type Answer = "ok" | "refuse" | "reset" | "503" | "429" | "500" | "400" | "garbage";
const answers: Answer[] = ["ok", "refuse", "reset", "503", "429", "500", "400", "garbage"];
const isSafe = (a: Answer) => ["refuse", "reset", "503", "429"].includes(a);

function fakeFetch(script: Answer[]) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const replica = Number(/r(\d+)/.exec(String(input))![1]);
    const answer = script[replica]!;
    if (answer === "refuse") throw new TypeError("fetch failed: ECONNREFUSED");
    if (answer === "reset") return new Response(new ReadableStream({ pull: (c) => c.error(new TypeError("other side closed")) }));
    if (answer === "503" || answer === "429") return Response.json({ error: "busy" }, { status: Number(answer), headers: { "Retry-After": "0" } });
    if (answer === "500" || answer === "400") return Response.json({ error: "no" }, { status: Number(answer) });
    if (answer === "garbage") return new Response("{not json");
    const headers = init!.headers as Record<string, string>;
    const { header, payload } = unpackBinary(init!.body as Uint8Array, headers["inference-header-content-length"]);
    const x = new Float32Array(payload.slice().buffer);
    return Response.json({ id: (header as { id: string }).id, outputs: [{ name: "y", datatype: "FP32", shape: [x.length, 1], data: Array.from(x, (v) => v * 2) }] });
  };
}

describe("OriginPoolRunner under random replica failures", () => {
  it("settles once, tries each replica at most once, and never retries an unsafe failure", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...answers), { minLength: 1, maxLength: 5 }), fc.float({ min: 1, max: 4, noNaN: true }), async (script, value) => {
        const pool = new OriginPool(script.map((_, i) => `http://r${i}`), "property-secret-0123456789", { fetch: fakeFetch(script), options: { healthIntervalMs: 1e9 } });
        for (const i of pool.state.dueChecks(Date.now())) pool.state.checked(i, true, Date.now());
        const runner = new OriginPoolRunner(manifest, pool);
        const attempts: AttemptRecord[] = [];
        runner.onAttempt = (a) => attempts.push(a);
        let settled = 0;
        let outcome: "ok" | "failed" = "failed";
        await runner.run([{ name: "x", datatype: "FP32", shape: [1, 1], data: Float32Array.of(value) }], Date.now() + 5000).then(
          (r) => {
            settled++;
            outcome = "ok";
            expect(r.outputs[0]!.data[0]).toBe(Math.fround(value) * 2);
          },
          (e: { status?: number }) => {
            settled++;
            expect([500, 503]).toContain(e.status);
          },
        );
        expect(settled).toBe(1);
        const tried = attempts.map((a) => a.replica);
        expect(new Set(tried).size).toBe(tried.length);
        // Every attempt but the last failed safely; the outcome is ok exactly when the last one answered well.
        tried.slice(0, -1).forEach((r) => expect(isSafe(script[r]!)).toBe(true));
        expect(outcome).toBe(script[tried.at(-1)!] === "ok" ? "ok" : "failed");
        // It stops early only at an unsafe failure or success; otherwise it tries every replica.
        if (isSafe(script[tried.at(-1)!]!)) expect(tried.length).toBe(script.length);
        expect(pool.state.snapshot().every((r) => r.outstanding === 0)).toBe(true);
      }),
      { numRuns: 200, seed: 20261122 },
    );
  });
});
