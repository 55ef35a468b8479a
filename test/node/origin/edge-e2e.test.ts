/**
 * End to end through the real Worker: `wrangler dev` runs the edge (Hono routes, buffer Durable
 * Objects, runnerFor -> OriginPoolRunner) in workerd, in front of three real gpu-origin replicas.
 * ppocr-det (an origin model) must match onnxruntime-node; then silero-vad, moved to the origin by
 * MODEL_OVERRIDES (placement pinned, so the closed loop cannot move it back to the edge under a
 * loaded machine), takes 500 client requests while one replica is killed with SIGKILL: every HTTP
 * request gets exactly one response, and all succeed (their deadlines leave room for a retry).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, startEdge, type Started } from "../../../src/cli/processes";
import { maxAbsDiff, runReference, seededFloats } from "./fixtures";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "./origin-process";

const REQUESTS = 500;
const CONCURRENCY = 16;
const KILL_AFTER = 120;


describe("edge Worker in front of the origin pool", () => {
  let replicas: OriginProcess[] = [];
  let edge: Started | undefined;
  let edgePort: number | undefined;

  beforeAll(async () => {
    replicas = await Promise.all([0, 1, 2].map(() => startOrigin(["--models", "ppocr-det,silero-vad"])));
    await Promise.all(replicas.map((r) => waitReady(r)));
    const overrides = {
      "silero-vad": { placement: "origin", pinned: ["placement"], slo: { ms: 20_000 }, batching: { maxBatch: 8, windowMs: 2, maxQueueRows: 512, shards: 2, maxRowsPerRequest: 8 } },
      "ppocr-det": { slo: { ms: 30_000 } },
    };
    edgePort = await freePort();
    edge = await startEdge({ port: edgePort, vars: { ORIGIN_URLS: replicas.map((r) => r.url).join(","), ORIGIN_SECRET: TEST_SECRET, MODEL_OVERRIDES: JSON.stringify(overrides) } });
  }, 120_000);

  afterAll(async () => {
    await edge?.stop(5_000);
    await Promise.all(replicas.map(stopOrigin));
    // startEdge persists Durable Object state per port; this run's is of no further use.
    if (edgePort !== undefined) rmSync(join(ROOT, ".wrangler", `state-${edgePort}`), { recursive: true, force: true });
  });

  it("serves ppocr-det from an origin replica with outputs that match onnxruntime-node within 1e-4", async () => {
    const x = seededFloats(3 * 64 * 64, 42);
    const response = await fetch(`${edge!.url}/v2/models/ppocr-det/infer`, {
      method: "POST",
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 64, 64], data: Array.from(x) }] }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-placement")).toBe("origin");
    expect(response.headers.get("x-served-by")).toMatch(/^origin\/[012]$/);
    expect(response.headers.get("server-timing")).toMatch(/origin;dur=[\d.]+/);
    const body = (await response.json()) as { outputs: Array<{ shape: number[]; data: number[] }> };
    const reference = await runReference("ppocr-det", [{ name: "x", datatype: "FP32", shape: [1, 3, 64, 64], data: x }]);
    expect(body.outputs[0]!.shape).toEqual([1, 1, 64, 64]);
    expect(maxAbsDiff(body.outputs[0]!.data, reference["sigmoid_0.tmp_0"]!)).toBeLessThanOrEqual(1e-4);
  });

  it("answers each of 500 requests exactly once, all successfully, when a replica is killed under load", async () => {
    const SEEDS = 4;
    const bodies = Array.from({ length: SEEDS }, (_, s) => JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: Array.from(seededFloats(512, s + 1)) }] }));
    const references = await Promise.all(
      Array.from({ length: SEEDS }, (_, s) => runReference("silero-vad", [
        { name: "input", datatype: "FP32", shape: [1, 512], data: seededFloats(512, s + 1) },
        { name: "state", datatype: "FP32", shape: [2, 1, 128], data: new Float32Array(256) },
        { name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.of(16000n) },
      ])),
    );
    const answers = new Array<number>(REQUESTS).fill(0);
    const statuses = new Array<number>(REQUESTS).fill(0);
    const servedBy = new Array<string>(REQUESTS).fill("");
    let next = 0;
    let completed = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const response = await fetch(`${edge!.url}/v2/models/silero-vad/infer`, { method: "POST", body: bodies[i % SEEDS]! });
        const body = (await response.json()) as { outputs?: Array<{ name: string; data: number[] }> };
        statuses[i] = response.status;
        servedBy[i] = response.headers.get("x-served-by") ?? "";
        if (response.status === 200) expect(maxAbsDiff(body.outputs![0]!.data, references[i % SEEDS]!.output!)).toBeLessThanOrEqual(1e-4);
        answers[i]!++;
        if (++completed === KILL_AFTER) replicas[1]!.child.kill("SIGKILL");
      }
    };
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(Array.from({ length: CONCURRENCY }, worker)),
      new Promise((_, reject) => (guard = setTimeout(() => reject(new Error(`lost: ${answers.filter((n) => n === 0).length} unanswered`)), 90_000))),
    ]);
    clearTimeout(guard);
    expect(await replicas[1]!.exited).toBe("SIGKILL");
    expect(answers.every((n) => n === 1)).toBe(true);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(servedBy.filter((s) => !/^origin\/[012]$/.test(s))).toEqual([]);
    expect([...new Set(servedBy.slice(-100))].sort()).toEqual(["origin/0", "origin/2"]);
  }, 120_000);
});
