import { describe, expect, it } from "vitest";
import { PoolState, type PoolOptions } from "../../../src/origin/pool-state";

const options: PoolOptions = { ejectAfterFailures: 2, baseBackoffMs: 1000, maxBackoffMs: 4000, healthIntervalMs: 5000, maxBusyMs: 1000 };
const urls = ["http://a", "http://b", "http://c"];

describe("PoolState", () => {
  it("picks the admitted replica with the fewest outstanding requests", () => {
    const pool = new PoolState(urls, options);
    pool.started(0);
    pool.started(0);
    pool.started(2);
    expect(pool.pick(0)).toBe(1);
    pool.started(1);
    pool.started(1);
    expect(pool.pick(0)).toBe(2);
  });

  it("rotates among tied replicas instead of always choosing the first", () => {
    const pool = new PoolState(urls, options);
    expect([pool.pick(0), pool.pick(0), pool.pick(0), pool.pick(0)]).toEqual([0, 1, 2, 0]);
  });

  it("skips excluded replicas and returns undefined when none is left", () => {
    const pool = new PoolState(urls, options);
    expect(pool.pick(0, new Set([0, 1]))).toBe(2);
    expect(pool.pick(0, new Set([0, 1, 2]))).toBeUndefined();
  });

  it("ejects a replica after consecutive failures, not after failures separated by a success", () => {
    const pool = new PoolState(urls, options);
    pool.started(0);
    pool.finished(0, { kind: "failed" }, 0);
    pool.started(0);
    pool.finished(0, { kind: "ok", durationMs: 1 }, 1);
    pool.started(0);
    pool.finished(0, { kind: "failed" }, 2);
    expect(pool.snapshot()[0]!.state).toBe("admitted");
    pool.started(0);
    pool.finished(0, { kind: "failed" }, 3);
    expect(pool.snapshot()[0]).toMatchObject({ state: "ejected", ejectedUntilMs: 1003, outstanding: 0 });
    expect(pool.pick(10, new Set([1, 2]))).toBeUndefined();
  });

  it("probes an ejected replica only after its backoff and re-admits it when the probe says ready", () => {
    const pool = new PoolState(urls, options);
    pool.finished(1, { kind: "failed" }, 0);
    pool.finished(1, { kind: "failed" }, 0);
    expect(pool.dueChecks(999)).toEqual([0, 2]); // admitted ones are due their first check; 1 is backing off
    pool.checked(0, true, 999);
    pool.checked(2, true, 999);
    expect(pool.dueChecks(1000)).toEqual([1]);
    expect(pool.snapshot()[1]!.state).toBe("probing");
    expect(pool.dueChecks(1001)).toEqual([]); // already being checked
    pool.checked(1, true, 1005);
    expect(pool.snapshot()[1]).toMatchObject({ state: "admitted", consecutiveFailures: 0 });
  });

  it("doubles the backoff on each ejection up to the maximum and resets it after a success", () => {
    const pool = new PoolState(["http://a"], options);
    const untilAfterEjection = (nowMs: number) => {
      pool.finished(0, { kind: "failed" }, nowMs);
      pool.finished(0, { kind: "failed" }, nowMs);
      return pool.snapshot()[0]!.ejectedUntilMs - nowMs;
    };
    const backoffs = [untilAfterEjection(0)];
    for (const nowMs of [10_000, 20_000, 30_000]) {
      pool.dueChecks(nowMs);
      pool.checked(0, true, nowMs);
      backoffs.push(untilAfterEjection(nowMs));
    }
    expect(backoffs).toEqual([1000, 2000, 4000, 4000]);
    pool.dueChecks(40_000);
    pool.checked(0, true, 40_000);
    pool.finished(0, { kind: "ok", durationMs: 1 }, 40_001);
    expect(untilAfterEjection(50_000)).toBe(1000);
  });

  it("ejects an admitted replica at once when its readiness check fails", () => {
    const pool = new PoolState(urls, options);
    expect(pool.dueChecks(0)).toEqual([0, 1, 2]);
    pool.checked(2, false, 5);
    expect(pool.snapshot()[2]).toMatchObject({ state: "ejected", ejectedUntilMs: 1005 });
    expect(pool.dueChecks(1004)).toEqual([]); // 0 and 1 are still being checked; 2 waits for its backoff
    expect(pool.dueChecks(1005)).toEqual([2]);
  });

  it("passes over a replica that answered 503 until its Retry-After (capped) passes, unless no other is left", () => {
    const pool = new PoolState(["http://a", "http://b"], options);
    pool.started(0);
    pool.finished(0, { kind: "busy", retryAfterMs: 5000 }, 0);
    expect(pool.pick(500)).toBe(1);
    expect(pool.pick(500, new Set([1]))).toBe(0);
    expect([pool.pick(1000), pool.pick(1000)].sort()).toEqual([0, 1]);
  });
});
