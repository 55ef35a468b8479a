/**
 * Failover under load with real processes: three gpu-origin replicas serve silero-vad; one is
 * killed with SIGKILL while 600 batches flow through OriginPoolRunner (the code the buffer Durable
 * Object runs). Every request must get exactly one answer, and since every deadline leaves room,
 * every one must succeed, the dead replica's share retried on the others, with correct outputs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OriginPool } from "../../../src/origin/origin-pool";
import { OriginPoolRunner, type AttemptRecord } from "../../../src/origin/origin-pool-runner";
import type { RunResult } from "../../../src/runner/model-runner";
import { manifestOf, maxAbsDiff, runReference, vadInputs } from "./fixtures";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "./origin-process";

const REQUESTS = 600;
const CONCURRENCY = 24;
const KILL_AFTER = 150;
const SEEDS = 8;

describe("OriginPoolRunner against real replicas", () => {
  let replicas: OriginProcess[] = [];

  beforeAll(async () => {
    replicas = await Promise.all([0, 1, 2].map(() => startOrigin(["--models", "silero-vad"])));
    await Promise.all(replicas.map((r) => waitReady(r)));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(replicas.map(stopOrigin));
  });

  it("answers every request exactly once and succeeds on the survivors when a replica is killed under load", async () => {
    const references = await Promise.all(Array.from({ length: SEEDS }, (_, seed) => runReference("silero-vad", vadInputs(1, seed + 1))));
    const pool = new OriginPool(replicas.map((r) => r.url), TEST_SECRET, { options: { healthIntervalMs: 250 } });
    const runner = new OriginPoolRunner(manifestOf("silero-vad"), pool);
    const attempts: AttemptRecord[] = [];
    runner.onAttempt = (record) => attempts.push(record);

    const answers = new Array<number>(REQUESTS).fill(0);
    const results: Array<RunResult | Error | undefined> = new Array(REQUESTS);
    let next = 0;
    let completed = 0;
    let killedAtCompleted: number | undefined;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        try {
          results[i] = await runner.run(vadInputs(1, (i % SEEDS) + 1), Date.now() + 10_000);
        } catch (error) {
          results[i] = error as Error;
        }
        answers[i]!++;
        if (++completed === KILL_AFTER) {
          killedAtCompleted = completed;
          replicas[1]!.child.kill("SIGKILL");
        }
      }
    };
    let guard: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(Array.from({ length: CONCURRENCY }, worker)),
      new Promise((_, reject) => (guard = setTimeout(() => reject(new Error(`lost requests: ${answers.filter((n) => n === 0).length} unanswered`)), 60_000))),
    ]);
    clearTimeout(guard);

    expect(killedAtCompleted).toBe(KILL_AFTER);
    expect(await replicas[1]!.exited).toBe("SIGKILL");
    expect(answers.every((n) => n === 1)).toBe(true);
    const failures = results.filter((r) => r instanceof Error);
    expect(failures).toEqual([]);
    results.forEach((r, i) => {
      const reference = references[i % SEEDS]!;
      expect(maxAbsDiff((r as RunResult).outputs[0]!.data as Float32Array, reference.output!)).toBeLessThanOrEqual(1e-4);
    });

    // The kill happened mid-load: replica 1 failed some attempts, those were retried elsewhere, and it was ejected.
    const failedOnKilled = attempts.filter((a) => a.replica === 1 && !a.result.ok);
    expect(failedOnKilled.length).toBeGreaterThan(0);
    expect(failedOnKilled.every((a) => !a.result.ok && a.result.failure.kind === "network")).toBe(true);
    expect(attempts.filter((a) => a.result.ok).length).toBe(REQUESTS);
    const servedBy = new Set(results.slice(-100).map((r) => (r as RunResult).servedBy));
    expect([...servedBy].sort()).toEqual(["origin/0", "origin/2"]);
    expect(pool.state.snapshot()[1]!.state).not.toBe("admitted");
  }, 90_000);
});
